//! `data-plane proxy`: the agent itself, a sidecar or a gateway fed over ADS.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use data_plane::access_log_service::{
    AccessLogClient, AccessLogQueue, AccessLogStats, QUEUE_CAPACITY,
};
use data_plane::admin::logging::Logging;
use data_plane::admin::{Admin, Surface};
use data_plane::dns::DnsSink;
use data_plane::identity::{CertificateAuthority, SpiffeId};
use data_plane::node::Identity;
use data_plane::proxy::admission::{
    Admission, ConnectionLimits, ISTIO_GLOBAL_DOWNSTREAM_MAX_CONNECTIONS,
};
use data_plane::proxy::busy_poll;
use data_plane::proxy::drain::{DrainSettings, DrainStrategy, ServerDrain, StopAccepting};
use data_plane::proxy::stats::Stats;
use data_plane::proxy::stats::istio::{
    DEFAULT_MAX_UNREGISTERED_DESTINATIONS, IstioStats, SourceWorkload,
};
use data_plane::proxy::{BindPlan, ListenerManager, ListenerSockets, ProxyContext};
use data_plane::store::ConfigStore;
use data_plane::upstream::{DnsConfig, Upstreams};
use data_plane::xds::{AdsClient, ConfigSink};
use shared::node::{NodeId, NodeType};
use tokio::sync::watch;

use super::control_plane::ControlPlaneArgs;
use super::dns::DnsArgs;
use super::node_args::{self, NodeArgs};
use super::proxy_config::ProxyConfig;
use super::signal::stop_requested;

#[derive(Clone, Copy, ValueEnum)]
pub enum Role {
    /// An application's sidecar (outbound capture on 15001).
    Sidecar,
    /// A gateway (listeners from Gateway resources).
    Router,
}

/// When a drain asks the open connections to close (Envoy's
/// `--drain-strategy`).
#[derive(Clone, Copy, ValueEnum)]
pub enum DrainStrategyArg {
    /// Each connection at a random moment of the drain time (Envoy's default).
    Gradual,
    /// Every connection at once (what pilot-agent starts Envoy with).
    Immediate,
}

#[derive(Args)]
pub struct ProxyArgs {
    #[arg(value_enum)]
    pub role: Role,
    #[command(flatten)]
    pub control_plane: ControlPlaneArgs,
    /// Connect without TLS and without a token, to the control plane's
    /// plaintext port: no certificates, so ISTIO_MUTUAL cannot work. The
    /// TLS and identity flags have no meaning with it and are refused.
    #[arg(long, conflicts_with_all = ["ca_addr", "ca_root", "token", "xds_server_name", "trust_domain"])]
    pub plaintext: bool,
    #[command(flatten)]
    pub node: NodeArgs,
    /// Istio's ProxyConfig, YAML or JSON, as injection sets it: its
    /// discoveryAddress, proxyAdminPort, statusPort, concurrency,
    /// drainDuration, terminationDrainDuration, proxyMetadata and the
    /// connection limits of runtimeValues apply where no flag says
    /// otherwise; any other field or runtime key is refused.
    #[arg(long, env = "PROXY_CONFIG", value_name = "YAML")]
    pub proxy_config: Option<String>,
    /// The admin interface (config_dump, stats, ready) [default:
    /// 127.0.0.1:15000, or the ProxyConfig's proxyAdminPort on loopback].
    #[arg(long)]
    pub admin_addr: Option<SocketAddr>,
    /// Envoy's Prometheus listener, as Istio's bootstrap adds it: only
    /// `/stats/prometheus`, Envoy's stats and Istio's standard metrics.
    #[arg(long, default_value_t = SocketAddr::from((Ipv4Addr::LOCALHOST, shared::ports::PROXY_METRICS)))]
    pub metrics_addr: SocketAddr,
    /// pilot-agent's status port: `/stats/prometheus` (the proxy's and the
    /// agent's metrics merged) and `/healthz/ready` [default:
    /// 127.0.0.1:15020, or the ProxyConfig's statusPort on loopback].
    #[arg(long)]
    pub status_addr: Option<SocketAddr>,
    /// Istio's health port: `/healthz/ready` only (the status port's
    /// answer), as the listener Istio's bootstrap adds on 15021 forwards
    /// it; what a load balancer or the kubelet probes.
    #[arg(long, default_value_t = SocketAddr::from((Ipv4Addr::LOCALHOST, shared::ports::HEALTH)))]
    pub health_addr: SocketAddr,
    /// Where a sidecar's outbound listener (`virtualOutbound`: captured
    /// traffic and the explicit proxy) binds, whatever address the control
    /// plane gives it: loopback by default, so the explicit proxy relays
    /// only for this host's apps. Another port lets several sidecars share
    /// a host (`data-plane init --proxy-port` to match).
    #[arg(long, default_value_t = SocketAddr::from((Ipv4Addr::LOCALHOST, shared::ports::OUTBOUND_CAPTURE)))]
    pub outbound_addr: SocketAddr,
    /// DNS server (host:port) for DNS clusters and, with --dns-capture,
    /// for the names the DNS proxy forwards; default /etc/resolv.conf.
    #[arg(long)]
    pub dns_server: Option<SocketAddr>,
    #[command(flatten)]
    pub dns: DnsArgs,
    /// Proxy worker threads; 0 is one per CPU [default: the ProxyConfig's
    /// concurrency, else 2].
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Keep the workers polling their sockets, instead of sleeping, until
    /// this long (e.g. 1ms) has passed without a new connection, request or
    /// response: lower latency where idle CPUs wake slowly (virtual
    /// machines), at the cost of CPU time while traffic flows. Off by default.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub busy_poll: Option<std::time::Duration>,
    /// How many distinct unregistered destinations (no ServiceEntry) get a
    /// metric series of their own; the others are counted as
    /// `destination_service="other"`.
    #[arg(long, default_value_t = DEFAULT_MAX_UNREGISTERED_DESTINATIONS)]
    pub max_unregistered_destinations: usize,
    /// How long a drain lasts, in seconds (Envoy's `--drain-time-s`; the
    /// default is the mesh's `drainDuration`, which pilot-agent passes):
    /// on SIGTERM the listeners stop accepting, open connections are asked
    /// to close, and the agent exits when they are done or this has passed.
    /// A listener an update removes drains as long. [default: the
    /// ProxyConfig's drainDuration, else 45]
    #[arg(long = "drain-time-s")]
    pub drain_time_s: Option<u64>,
    /// How long the agent drains on SIGTERM before it exits, if less than
    /// the drain time (pilot-agent's terminationDrainDuration) [default:
    /// the ProxyConfig's terminationDrainDuration, else the drain time].
    #[arg(long, value_parser = humantime::parse_duration)]
    pub termination_drain_duration: Option<std::time::Duration>,
    /// When a drain asks the open connections to close.
    #[arg(long, value_enum, default_value = "immediate")]
    pub drain_strategy: DrainStrategyArg,
    /// The most downstream connections open at once over every listener
    /// (Envoy's overload manager `global_downstream_max_connections`). A
    /// connection past it is closed at once, counted in
    /// `downstream_global_cx_overflow`. Envoy advises less than half the
    /// open file limit. [default: the ProxyConfig's runtimeValues
    /// `overload.global_downstream_max_connections` ("" for none), else
    /// 2147483647, what Istio's bootstrap sets]
    #[arg(long, env = "GLOBAL_DOWNSTREAM_MAX_CONNECTIONS")]
    pub global_downstream_max_connections: Option<u64>,
    /// The most connections each listener keeps open (Envoy's runtime
    /// `envoy.resource_limits.listener.<name>.connection_limit`, for
    /// every listener). A connection past it is closed at once, counted
    /// in `downstream_cx_overflow`. [default: for a listener the
    /// ProxyConfig's runtimeValues name, that limit; else none]
    #[arg(long, env = "LISTENER_CONNECTION_LIMIT")]
    pub listener_connection_limit: Option<u64>,
}

pub fn run(args: ProxyArgs, set_log_level: data_plane::admin::SetLogLevel) -> anyhow::Result<()> {
    let node_type = match args.role {
        Role::Sidecar => NodeType::Sidecar,
        Role::Router => NodeType::Router,
    };
    let proxy_config = ProxyConfig::parse(args.proxy_config.as_deref().unwrap_or_default())?;
    let settings = Settings::new(&args, &proxy_config);
    let metadata = node_args::node_metadata(
        &proxy_config.proxy_metadata,
        node_args::environment(),
        &args.node.node_metadata,
    )?;
    let labels: BTreeMap<String, String> = match (&args.node.labels, metadata.labels) {
        (Some(labels), _) => shared::node::parse_labels(labels)?,
        (None, labels) => labels.unwrap_or_default(),
    };
    let mut identity = Identity::new(
        node_type,
        args.node.node_id.clone(),
        &args.node.ip,
        &args.node.pod,
        &args.node.namespace,
        labels,
        &args.node.service_account,
    )?;
    identity.dns_capture = args.dns.dns_capture || metadata.dns_capture;
    identity.metadata = metadata.fields;
    if identity.dns_capture && node_type == NodeType::Router {
        anyhow::bail!(
            "DNS capture answers an app's DNS; a gateway has no app and gets no name table: drop --dns-capture (ISTIO_META_DNS_CAPTURE)"
        );
    }
    let node_id: NodeId = identity.node_id.parse()?;
    let source_workload =
        SourceWorkload::of_pod(node_id.pod(), &identity.namespace, &identity.labels).with_metadata(
            identity.metadata_text(shared::node::META_WORKLOAD_NAME),
            identity.metadata_text(shared::node::META_CLUSTER_ID),
        );
    let control_plane = args
        .control_plane
        .connection(args.plaintext, proxy_config.discovery_address.as_deref())?;
    tracing::info!(node = %identity.node_id, xds = %control_plane.address(), "starting");
    super::open_files::raise_to_hard_limit();
    let admission = Arc::new(Admission::new(settings.limits.clone()));
    let authority = if control_plane.is_authenticated() {
        Some(CertificateAuthority::new(
            args.control_plane.ca_connection(&control_plane)?,
            SpiffeId {
                trust_domain: args.control_plane.trust_domain.clone(),
                namespace: identity.namespace.clone(),
                service_account: identity.service_account.clone(),
            },
        ))
    } else {
        tracing::warn!(
            "--plaintext: this proxy has no workload identity; ISTIO_MUTUAL clusters and listeners cannot work"
        );
        None
    };

    // One worker: a current-thread runtime (driven by this thread), which
    // skips the multi-thread scheduler's cross-thread bookkeeping.
    let workers = if settings.concurrency <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(settings.concurrency);
        builder
    }
    .thread_name("proxy-worker")
    .on_thread_park(super::memory::on_worker_park)
    .enable_all()
    .build()
    .context("start the proxy runtime")?;
    let upstreams = Arc::new(workers.block_on(async {
        Upstreams::new(DnsConfig {
            server: args.dns_server,
        })
    }));
    let dns = super::dns::start(identity.dns_capture, &args.dns, args.dns_server, &workers)?;
    let hook_upstreams = upstreams.clone();
    let sockets = Arc::new(ListenerSockets::new(BindPlan {
        outbound: Some(args.outbound_addr),
    }));
    let hook_sockets = sockets.clone();
    let store = Arc::new(ConfigStore::new(Box::new(move |config| {
        hook_sockets.prepare(config)?;
        hook_upstreams.update(config);
        Ok(())
    })));
    let activity = args
        .busy_poll
        .map(|_| Arc::new(busy_poll::Activity::default()));
    let access_log_stats = Arc::new(AccessLogStats::default());
    let (access_log_queue, access_log_entries) =
        AccessLogQueue::new(QUEUE_CAPACITY, access_log_stats.clone());
    let access_log_client = if control_plane.is_authenticated() {
        Some(AccessLogClient::new(
            control_plane.clone(),
            identity.to_node(),
            access_log_entries,
            access_log_stats.clone(),
        ))
    } else {
        tracing::info!(
            "--plaintext: the control plane serves no access log service there; gRPC access loggers are not reported"
        );
        None
    };
    let context = Arc::new(ProxyContext {
        store: store.clone(),
        upstreams: upstreams.clone(),
        stats: Arc::new(Stats::new(IstioStats::new(
            &source_workload,
            args.max_unregistered_destinations,
        ))),
        activity: activity.clone(),
        access_log_service: access_log_client.is_some().then_some(access_log_queue),
    });

    let drain = Arc::new(ServerDrain::new(
        DrainSettings {
            time: settings.drain_time,
            strategy: match args.drain_strategy {
                DrainStrategyArg::Gradual => DrainStrategy::Gradual,
                DrainStrategyArg::Immediate => DrainStrategy::Immediate,
            },
        },
        context.stats.clone(),
    ));

    let (listeners_ready_tx, listeners_ready) = watch::channel(false);
    let (xds_warm_tx, xds_warm) = watch::channel(false);
    let (ready_tx, ready) = watch::channel(false);
    // With DNS capture, the name table is one more type the client applies.
    let sink: Arc<dyn ConfigSink> = match &dns {
        Some(dns) => Arc::new(DnsSink::new(store.clone(), dns.proxy.clone())),
        None => store.clone(),
    };
    let (sink, give_back_memory) = super::memory::releasing(super::memory::Sources {
        inner: sink,
        admission: admission.clone(),
        workers: workers.handle().clone(),
        concurrency: settings.concurrency,
    });
    let client = AdsClient::new(control_plane, identity.to_node(), sink, xds_warm_tx);
    let quit = Arc::new(tokio::sync::Notify::new());
    let admin = Arc::new(Admin {
        store: store.clone(),
        stats: context.stats.clone(),
        xds_stats: client.stats(),
        access_log_stats,
        upstreams,
        ready,
        logging: Logging::new(set_log_level, std::env::var("RUST_LOG").ok().as_deref()),
        quit: quit.clone(),
        drain: drain.clone(),
        dumps: Arc::default(),
        accept_failures: admission.accept_failures(),
    });
    let http_listeners = [
        (Surface::Admin, settings.admin_addr, "--admin-addr"),
        (Surface::Metrics, args.metrics_addr, "--metrics-addr"),
        (Surface::Status, settings.status_addr, "--status-addr"),
        (Surface::Health, args.health_addr, "--health-addr"),
    ]
    .map(|(surface, addr, flag)| bind_http(surface, addr, flag).map(|socket| (surface, socket)));
    let http_listeners = http_listeners
        .into_iter()
        .collect::<anyhow::Result<Vec<_>>>()?;

    // Admin, metrics and status run on a thread of their own (config
    // dumps on its blocking pool), and xDS on another: a config dump or a
    // stats scrape never takes time from the proxy workers or from
    // applying config.
    std::thread::Builder::new()
        .name("admin".into())
        .spawn(move || -> anyhow::Result<()> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("start the admin runtime")?;
            runtime.block_on(async move {
                let mut servers = tokio::task::JoinSet::new();
                for (surface, socket) in http_listeners {
                    let listener = tokio::net::TcpListener::from_std(socket)
                        .with_context(|| format!("register the {} socket", surface.name()))?;
                    servers.spawn(admin.clone().serve(listener, surface));
                }
                servers.join_all().await;
                Ok(())
            })
        })
        .context("start the admin thread")?;
    let control = std::thread::Builder::new()
        .name("control".into())
        .spawn(move || -> anyhow::Result<()> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("start the control runtime")?;
            runtime.block_on(async move {
                tokio::spawn(readiness(xds_warm, listeners_ready, ready_tx));
                tokio::spawn(give_back_memory);
                if let Some(access_log_client) = access_log_client {
                    tokio::spawn(access_log_client.run());
                }
                // As pilot-agent: the certificate first, then the config
                // that uses it.
                if let Some(authority) = authority {
                    let certificates = authority.start().await;
                    tokio::spawn(async move { store.follow_identity(certificates).await });
                }
                client.run().await;
                Ok(())
            })
        })
        .context("start the control thread")?;

    workers.block_on(async move {
        if let (Some(window), Some(activity)) = (args.busy_poll, activity) {
            for _ in 0..settings.concurrency.max(1) {
                tokio::spawn(busy_poll::poll(activity.clone(), window));
            }
        }
        tokio::spawn(
            ListenerManager::new(
                context,
                sockets,
                listeners_ready_tx,
                (drain.clone(), admission),
            )
            .run(),
        );
        if let Some(dns) = dns {
            tokio::spawn(dns.listeners.serve(dns.proxy));
        }
        tokio::select! {
            _ = tokio::signal::ctrl_c() => tracing::info!("shutting down"),
            () = stop_requested(&quit) => {
                tracing::info!("stop requested; draining");
                drain.start(StopAccepting::Now);
                let termination = DrainSettings {
                    time: settings.termination_drain,
                    ..drain.settings
                };
                tokio::select! {
                    () = drain.scope.done(termination) => tracing::info!(
                        still_open = drain.scope.active(),
                        "drain over; shutting down"
                    ),
                    _ = tokio::signal::ctrl_c() => tracing::info!("shutting down"),
                }
            }
        }
    });
    drop(control);
    data_plane::proxy::access_log::flush();
    Ok(())
}

/// What the flags and the ProxyConfig say together, the flags winning.
struct Settings {
    admin_addr: SocketAddr,
    status_addr: SocketAddr,
    concurrency: usize,
    drain_time: Duration,
    termination_drain: Duration,
    limits: ConnectionLimits,
}

impl Settings {
    fn new(args: &ProxyArgs, config: &ProxyConfig) -> Self {
        let admin_addr = args.admin_addr.unwrap_or_else(|| {
            let port = config
                .proxy_admin_port
                .unwrap_or(shared::ports::AGENT_ADMIN);
            SocketAddr::from((Ipv4Addr::LOCALHOST, port))
        });
        let status_addr = args.status_addr.unwrap_or_else(|| {
            let port = config.status_port.unwrap_or(shared::ports::AGENT_STATUS);
            SocketAddr::from((Ipv4Addr::LOCALHOST, port))
        });
        let concurrency = match args.concurrency.or(config.concurrency).unwrap_or(2) {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        let drain_time = args
            .drain_time_s
            .map(Duration::from_secs)
            .or(config.drain_duration)
            .unwrap_or(DEFAULT_DRAIN_TIME);
        let termination_drain = args
            .termination_drain_duration
            .or(config.termination_drain_duration)
            .map_or(drain_time, |termination| termination.min(drain_time));
        let runtime = &config.runtime;
        let limits = ConnectionLimits {
            global: match args.global_downstream_max_connections {
                Some(limit) => Some(limit),
                None => runtime
                    .global_downstream_max_connections
                    .unwrap_or(Some(ISTIO_GLOBAL_DOWNSTREAM_MAX_CONNECTIONS)),
            },
            per_listener: args.listener_connection_limit,
            by_listener: runtime.listener_connection_limits.clone(),
        };
        Self {
            admin_addr,
            status_addr,
            concurrency,
            drain_time,
            termination_drain,
            limits,
        }
    }
}

/// Binds one of the agent's HTTP ports; the error names the port and the
/// flag that moves it.
fn bind_http(
    surface: Surface,
    addr: SocketAddr,
    flag: &str,
) -> anyhow::Result<std::net::TcpListener> {
    let socket = std::net::TcpListener::bind(addr).with_context(|| {
        format!(
            "bind the {} port {addr}: is another agent on this host using it? Give this one another with {flag}",
            surface.name()
        )
    })?;
    socket
        .set_nonblocking(true)
        .with_context(|| format!("make the {} socket non-blocking", surface.name()))?;
    Ok(socket)
}

/// pilot-agent's drainDuration.
const DEFAULT_DRAIN_TIME: Duration = Duration::from_secs(45);

/// Ready once the config is warm and the listeners are bound.
async fn readiness(
    mut warm: watch::Receiver<bool>,
    mut listeners: watch::Receiver<bool>,
    ready: watch::Sender<bool>,
) {
    loop {
        let now = *warm.borrow_and_update() && *listeners.borrow_and_update();
        if now && !*ready.borrow() {
            tracing::info!("ready");
        }
        ready.send_replace(now);
        tokio::select! {
            changed = warm.changed() => if changed.is_err() { return },
            changed = listeners.changed() => if changed.is_err() { return },
        }
    }
}

#[cfg(test)]
mod tests;
