//! `data-plane`: the agent. `data-plane proxy sidecar|router` subscribes to
//! the control plane over ADS and runs the proxy it describes.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use data_plane::admin::{Admin, LogLevelError};
use data_plane::capture::{self, CapturePlan};
use data_plane::identity::{CertificateAuthority, SpiffeId};
use data_plane::node::Identity;
use data_plane::proxy::busy_poll;
use data_plane::proxy::stats::Stats;
use data_plane::proxy::{ListenerManager, ListenerSockets, ProxyContext};
use data_plane::sds::SdsListener;
use data_plane::store::ConfigStore;
use data_plane::upstream::{DnsConfig, Upstreams};
use data_plane::xds::{AdsClient, ControlPlane, TlsSettings};
use shared::identity::CONTROL_PLANE_SERVER_NAME;
use shared::identity::DEFAULT_TRUST_DOMAIN;
use shared::node::NodeType;
use tokio::sync::watch;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, reload};

/// mimalloc: the proxy allocates and frees small buffers on every request;
/// glibc's malloc spent about a tenth of the agent's CPU time on them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "data-plane",
    version,
    about = "The mesh agent: a sidecar or egress gateway fed over ADS"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxy.
    Proxy(Box<ProxyArgs>),
    /// Set up transparent capture (iptables REDIRECT to 15001), like istio-init.
    Init(InitArgs),
    /// Remove the capture rules `init` added.
    Cleanup,
    /// Serve this proxy's certificate to a local Envoy over SDS on a Unix
    /// socket, as pilot-agent does: `default` and `ROOTCA`, from a key made
    /// here and a certificate from the control plane, renewed at half life.
    Sds(SdsArgs),
}

#[derive(Args)]
struct SdsArgs {
    /// The Unix socket to serve on (mode 0600), which Envoy's `sds-grpc`
    /// cluster points at.
    #[arg(long)]
    socket: PathBuf,
    #[command(flatten)]
    control_plane: ControlPlaneArgs,
    /// The proxy's namespace, in its SPIFFE id; it must be the token's.
    #[arg(long, default_value = "default")]
    namespace: String,
    /// The proxy's service account, in its SPIFFE id; it must be the token's.
    #[arg(long, default_value = "default")]
    service_account: String,
}

#[derive(Args)]
struct InitArgs {
    /// Outbound ranges to capture: `*` or CIDRs (Istio's includeOutboundIPRanges).
    #[arg(long, default_value = "*")]
    include_outbound_ip_ranges: String,
    /// Outbound ranges never captured (Istio's excludeOutboundIPRanges).
    #[arg(long, default_value = "")]
    exclude_outbound_ip_ranges: String,
    /// Destination ports never captured (the control plane's xDS ports,
    /// TLS and plaintext).
    #[arg(long, value_delimiter = ',', default_value = "15012,15010")]
    exclude_outbound_ports: Vec<u16>,
    /// The uid the agent runs as; its own traffic is not captured.
    #[arg(long, default_value_t = 1337)]
    proxy_uid: u32,
    #[arg(long, default_value_t = 1337)]
    proxy_gid: u32,
    #[arg(long, default_value_t = shared::ports::OUTBOUND_CAPTURE)]
    proxy_port: u16,
    /// Print the iptables commands instead of running them.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum Role {
    /// An application's sidecar (outbound capture on 15001).
    Sidecar,
    /// A gateway (listeners from Gateway resources).
    Router,
}

/// Where the control plane is and how this proxy proves who it is.
#[derive(Args)]
struct ControlPlaneArgs {
    /// The control plane's xDS address, host:port or a URL [default:
    /// 127.0.0.1:15012, its TLS port; 127.0.0.1:15010 with `proxy
    /// --plaintext`].
    #[arg(long)]
    xds_addr: Option<String>,
    /// The root certificate(s), PEM, that sign the control plane's
    /// certificate (`root-cert.pem` in its --ca-dir): the only roots
    /// trusted. Required, except with `proxy --plaintext`.
    #[arg(long)]
    ca_root: Option<PathBuf>,
    /// This proxy's token: a JWT from `control-plane token create`, or a
    /// Kubernetes service-account token. Read again for every connection,
    /// so a rotated token is picked up. Required, except with `proxy
    /// --plaintext`.
    #[arg(long)]
    token: Option<PathBuf>,
    /// The name the control plane's certificate must be valid for.
    #[arg(long, default_value = CONTROL_PLANE_SERVER_NAME)]
    xds_server_name: String,
    /// The mesh's trust domain: this proxy's SPIFFE id is
    /// spiffe://<trust domain>/ns/<namespace>/sa/<service account>.
    #[arg(long, default_value = DEFAULT_TRUST_DOMAIN)]
    trust_domain: String,
}

#[derive(Args)]
struct ProxyArgs {
    #[arg(value_enum)]
    role: Role,
    #[command(flatten)]
    control_plane: ControlPlaneArgs,
    /// Connect without TLS and without a token, to the control plane's
    /// plaintext port: no certificates, so ISTIO_MUTUAL cannot work. The
    /// TLS and identity flags have no meaning with it and are refused.
    #[arg(long, conflicts_with_all = ["ca_root", "token", "xds_server_name", "trust_domain"])]
    plaintext: bool,
    /// The full node id; otherwise built from --ip, --pod and --namespace.
    #[arg(long)]
    node_id: Option<String>,
    #[arg(long, default_value = "127.0.0.1")]
    ip: String,
    #[arg(long, default_value = "app")]
    pod: String,
    #[arg(long, default_value = "default")]
    namespace: String,
    /// Workload labels, k=v,k2=v2.
    #[arg(long, default_value = "")]
    labels: String,
    /// The service account this proxy runs as (node metadata
    /// SERVICE_ACCOUNT); it must be the token's.
    #[arg(long, default_value = "default")]
    service_account: String,
    /// The admin interface (config_dump, stats, ready).
    #[arg(long, default_value = "127.0.0.1:15000")]
    admin_addr: SocketAddr,
    /// DNS server for DNS clusters (host:port); default /etc/resolv.conf.
    #[arg(long)]
    dns_server: Option<SocketAddr>,
    /// Proxy worker threads.
    #[arg(long, default_value_t = 2)]
    concurrency: usize,
    /// Keep the workers polling their sockets, instead of sleeping, until
    /// this long (e.g. 1ms) has passed without a new connection, request or
    /// response: lower latency where idle CPUs wake slowly (virtual
    /// machines), at the cost of CPU time while traffic flows. Off by default.
    #[arg(long, value_parser = humantime::parse_duration)]
    busy_poll: Option<std::time::Duration>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (filter, filter_handle) = reload::Layer::new(filter);
    tracing_subscriber::registry()
        .with(filter)
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .init();
    let set_log_level = Box::new(move |level: &str| {
        let filter = EnvFilter::try_new(level).map_err(|source| LogLevelError::Invalid {
            level: level.to_string(),
            source,
        })?;
        Ok(filter_handle.reload(filter)?)
    });
    let result = match cli.command {
        Command::Proxy(args) => run(*args, set_log_level),
        Command::Init(args) => init(&args),
        Command::Cleanup => capture::apply(&CapturePlan::cleanup_rules()).map_err(Into::into),
        Command::Sds(args) => sds(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: ProxyArgs, set_log_level: data_plane::admin::SetLogLevel) -> anyhow::Result<()> {
    let node_type = match args.role {
        Role::Sidecar => NodeType::Sidecar,
        Role::Router => NodeType::Router,
    };
    let labels: BTreeMap<String, String> = shared::node::parse_labels(&args.labels)?;
    let identity = Identity::new(
        node_type,
        args.node_id.clone(),
        &args.ip,
        &args.pod,
        &args.namespace,
        labels,
        &args.service_account,
    )?;
    let control_plane = args.control_plane.connection(args.plaintext)?;
    tracing::info!(node = %identity.node_id, xds = %control_plane.address(), "starting");
    let authority = if control_plane.is_authenticated() {
        Some(CertificateAuthority::new(
            control_plane.clone(),
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
    let workers = if args.concurrency <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(args.concurrency);
        builder
    }
    .thread_name("proxy-worker")
    .enable_all()
    .build()
    .context("start the proxy runtime")?;
    let upstreams = Arc::new(workers.block_on(async {
        Upstreams::new(DnsConfig {
            server: args.dns_server,
        })
    }));
    let hook_upstreams = upstreams.clone();
    let sockets = Arc::new(ListenerSockets::default());
    let hook_sockets = sockets.clone();
    let store = Arc::new(ConfigStore::new(Box::new(move |config| {
        hook_sockets.prepare(config)?;
        hook_upstreams.update(config);
        Ok(())
    })));
    let activity = args
        .busy_poll
        .map(|_| Arc::new(busy_poll::Activity::default()));
    let context = Arc::new(ProxyContext {
        store: store.clone(),
        upstreams: upstreams.clone(),
        stats: Arc::new(Stats::default()),
        activity: activity.clone(),
    });

    let (listeners_ready_tx, listeners_ready) = watch::channel(false);
    let (xds_warm_tx, xds_warm) = watch::channel(false);
    let (ready_tx, ready) = watch::channel(false);
    let client = AdsClient::new(
        control_plane,
        identity.to_node(),
        store.clone(),
        xds_warm_tx,
    );
    let admin = Arc::new(Admin {
        store: store.clone(),
        stats: context.stats.clone(),
        xds_stats: client.stats(),
        upstreams,
        ready,
        set_log_level,
    });
    let admin_listener = workers
        .block_on(tokio::net::TcpListener::bind(args.admin_addr))
        .with_context(|| {
            format!(
                "bind the admin address {} (is another agent running?)",
                args.admin_addr
            )
        })?;
    let admin_listener = admin_listener
        .into_std()
        .context("detach the admin socket")?;

    // xDS and admin run on their own thread, so a config dump or a stats
    // scrape never takes time from the proxy workers.
    let control = std::thread::Builder::new()
        .name("control".into())
        .spawn(move || -> anyhow::Result<()> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("start the control runtime")?;
            runtime.block_on(async move {
                let admin_listener = tokio::net::TcpListener::from_std(admin_listener)
                    .context("register the admin socket")?;
                tokio::spawn(admin.serve(admin_listener));
                tokio::spawn(readiness(xds_warm, listeners_ready, ready_tx));
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
            for _ in 0..args.concurrency.max(1) {
                tokio::spawn(busy_poll::poll(activity.clone(), window));
            }
        }
        tokio::spawn(ListenerManager::new(context, sockets, listeners_ready_tx).run());
        tokio::select! {
            _ = tokio::signal::ctrl_c() => tracing::info!("shutting down"),
            _ = terminated() => tracing::info!("terminated; shutting down"),
        }
    });
    drop(control);
    data_plane::proxy::access_log::flush();
    Ok(())
}

impl ControlPlaneArgs {
    /// The connection these flags describe: TLS with a token, or plaintext.
    fn connection(&self, plaintext: bool) -> anyhow::Result<ControlPlane> {
        if plaintext {
            let address = self.xds_addr.as_deref().unwrap_or("127.0.0.1:15010");
            return Ok(ControlPlane::plaintext(address)?);
        }
        let address = self.xds_addr.as_deref().unwrap_or("127.0.0.1:15012");
        let ca_root = self.ca_root.clone().context(
            "--ca-root is required: the root certificate of the control plane \
             (root-cert.pem in its --ca-dir); `proxy --plaintext` for its plaintext port",
        )?;
        let token = self.token.clone().context(
            "--token is required: a file with this proxy's token \
             (control-plane token create, or a Kubernetes service-account token)",
        )?;
        let settings = TlsSettings {
            ca_root,
            server_name: self.xds_server_name.clone(),
            token,
        };
        Ok(ControlPlane::tls(address, &settings)?)
    }
}

fn sds(args: &SdsArgs) -> anyhow::Result<()> {
    let control_plane = args.control_plane.connection(false)?;
    let authority = CertificateAuthority::new(
        control_plane,
        SpiffeId {
            trust_domain: args.control_plane.trust_domain.clone(),
            namespace: args.namespace.clone(),
            service_account: args.service_account.clone(),
        },
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("start the runtime")?;
    runtime.block_on(async {
        let listener = SdsListener::bind(&args.socket)?;
        let serve = async {
            let certificates = authority.start().await;
            listener.serve(certificates).await
        };
        let result = tokio::select! {
            result = serve => result.map_err(Into::into),
            _ = tokio::signal::ctrl_c() => Ok(()),
            _ = terminated() => Ok(()),
        };
        if let Err(error) = std::fs::remove_file(&args.socket) {
            tracing::warn!(socket = %args.socket.display(), %error, "cannot remove the SDS socket");
        }
        result
    })
}

fn init(args: &InitArgs) -> anyhow::Result<()> {
    let plan = CapturePlan {
        proxy_port: args.proxy_port,
        proxy_uid: args.proxy_uid,
        proxy_gid: args.proxy_gid,
        include: capture::parse_ranges(&args.include_outbound_ip_ranges)?,
        exclude: capture::parse_ranges(&args.exclude_outbound_ip_ranges)?,
        exclude_ports: args.exclude_outbound_ports.clone(),
    };
    let rules = plan.rules();
    if args.dry_run {
        for rule in &rules {
            println!("iptables -t nat {}", rule.join(" "));
        }
        return Ok(());
    }
    capture::apply(&rules)?;
    Ok(())
}

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

async fn terminated() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut signal) => {
            signal.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use clap::error::ErrorKind;

    use super::Cli;

    fn proxy(flags: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(["data-plane", "proxy", "sidecar"].iter().chain(flags))
    }

    #[test]
    fn plaintext_refuses_the_tls_flags_it_would_ignore() {
        for flag in [
            ["--ca-root", "root-cert.pem"],
            ["--token", "token"],
            ["--xds-server-name", "istiod.example"],
            ["--trust-domain", "example.org"],
        ] {
            let error = proxy(&["--plaintext", flag[0], flag[1]])
                .err()
                .unwrap_or_else(|| panic!("--plaintext with {} is refused", flag[0]));
            assert_eq!(error.kind(), ErrorKind::ArgumentConflict, "{error}");
        }
        assert!(proxy(&["--plaintext"]).is_ok(), "defaults do not conflict");
        assert!(
            proxy(&[
                "--xds-server-name",
                "istiod.example",
                "--trust-domain",
                "example.org"
            ])
            .is_ok()
        );
    }
}
