//! A real Envoy as an xDS client of our control plane, set up as Istio's
//! pilot-agent sets it up: an Istio-style node identity (with its
//! `SERVICE_ACCOUNT`), ADS over gRPC to a static `xds-grpc` cluster (TLS
//! trusting the mesh root, verifying `istiod.istio-system.svc`, a bearer
//! token in the stream's initial metadata), and its workload certificate
//! from a static `sds-grpc` cluster on a Unix socket served by `data-plane
//! sds` (pilot-agent's SDS server), which the launcher starts before Envoy
//! and stops after it; the same socket is the static
//! `envoy_accesslog_service` cluster, through which the access loggers the
//! control plane configures reach it. CDS and LDS from ADS, names resolved
//! only through the test DNS server, and an admin interface on a port Envoy
//! picks itself (loopback unless told otherwise). It runs on the host, or
//! like a sidecar inside a [`NetNs`] as uid 1337.

use std::collections::BTreeMap;
use std::fs;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use serde_json::{Value, json};
use shared::node::{META_INSTANCE_IPS, META_LABELS, META_NAMESPACE, META_SERVICE_ACCOUNT};
use tempfile::TempDir;

use crate::admin::Admin;
use crate::binaries;
use crate::config_dump::DynamicResources;
use crate::control_channel::{ProxyConnection, ProxyTls};
use crate::curl::CurlResponse;
use crate::netns::{NetNs, SidecarHost};
use crate::process::Process;
use crate::proxy_options::ProxyOptions;

/// The static cluster that reaches the control plane, as Istio names it.
pub const XDS_CLUSTER: &str = "xds-grpc";
/// The static cluster of the local SDS server, as Istio names it.
pub const SDS_CLUSTER: &str = "sds-grpc";
/// The static cluster of the access log service, as Istio names it: the
/// same Unix socket as SDS, where `data-plane sds` (pilot-agent's role)
/// relays Envoy's access log streams to the control plane.
pub const ALS_CLUSTER: &str = "envoy_accesslog_service";
/// Istio's node metadata key saying DNS is proxied.
const META_DNS_CAPTURE: &str = "DNS_CAPTURE";
/// How often Envoy writes out its access logs (its default, 10 s, is
/// longer than a test waits for a line).
const LOG_FLUSH_INTERVAL: Duration = Duration::from_millis(100);
/// How long Envoy gets to bind its admin port, and the SDS server its
/// socket.
const ADMIN_STARTUP: Duration = Duration::from_secs(20);
/// `--log-level`.
const LOG_LEVEL: &str = "info";
/// How pilot-agent has Envoy drain: every connection asked to close at
/// once, for up to 45 s.
const PILOT_AGENT_DRAIN: [&str; 4] = ["--drain-strategy", "immediate", "--drain-time-s", "45"];
/// The SDS server's socket in the proxy's directory.
const SDS_SOCKET: &str = "sds.sock";

/// Envoy's bootstrap for a proxy: its identity and ADS source from
/// [`ProxyOptions`], its connection's files, and Envoy's own settings.
#[derive(Clone)]
pub struct Bootstrap<'a> {
    proxy: &'a ProxyOptions,
    connection: &'a ProxyConnection,
    sds_socket: &'a Path,
    admin_ip: IpAddr,
    initial_fetch_timeout: Option<Duration>,
}

impl<'a> Bootstrap<'a> {
    /// `proxy`'s bootstrap, connecting as `connection` says, its SDS server
    /// on `sds_socket`, its admin interface on loopback.
    pub fn new(
        proxy: &'a ProxyOptions,
        connection: &'a ProxyConnection,
        sds_socket: &'a Path,
    ) -> Self {
        Self {
            proxy,
            connection,
            sds_socket,
            admin_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            initial_fetch_timeout: None,
        }
    }

    /// Where the admin interface listens (on a port Envoy picks); it must
    /// be reachable from the test, so inside a [`NetNs`] its
    /// [`NetNs::ns_ip`].
    pub fn admin_ip(self, admin_ip: IpAddr) -> Self {
        Self { admin_ip, ..self }
    }

    /// How long CDS and LDS wait for a first answer before Envoy goes live
    /// without one (Envoy's default: 15 s).
    pub fn initial_fetch_timeout(self, timeout: Duration) -> Self {
        Self {
            initial_fetch_timeout: Some(timeout),
            ..self
        }
    }

    /// The bootstrap configuration, as JSON.
    pub fn json(&self) -> Value {
        let proxy = self.proxy;
        let xds_addr = self.connection.addr;
        let mut subscription = json!({ "ads": {}, "resource_api_version": "V3" });
        if let Some(timeout) = self.initial_fetch_timeout {
            subscription["initial_fetch_timeout"] = json!(format!("{}s", timeout.as_secs_f64()));
        }
        let mut ads_service = json!({ "envoy_grpc": { "cluster_name": XDS_CLUSTER } });
        let mut xds_cluster = json!({
            "name": XDS_CLUSTER,
            "type": "STATIC",
            "connect_timeout": "1s",
            "load_assignment": {
                "cluster_name": XDS_CLUSTER,
                "endpoints": [{ "lb_endpoints": [{ "endpoint": {
                    "address": socket_address(&xds_addr.ip().to_string(), xds_addr.port()),
                } }] }],
            },
            "typed_extension_protocol_options": http2_only(),
        });
        if let Some(tls) = &self.connection.tls {
            ads_service["initial_metadata"] = json!([{
                "key": "authorization",
                "value": format!("Bearer {}", tls.token),
            }]);
            xds_cluster["transport_socket"] = control_plane_tls(tls);
        }
        let mut metadata = json!({
            META_NAMESPACE: proxy.namespace(),
            META_LABELS: proxy.labels,
            META_INSTANCE_IPS: proxy.node.ip,
            META_SERVICE_ACCOUNT: proxy.service_account,
        });
        if proxy.dns_capture {
            metadata[META_DNS_CAPTURE] = json!("true");
        }
        json!({
            "node": {
                "id": proxy.node.to_string(),
                // Istio's `<app>.<namespace>`.
                "cluster": proxy.node.id,
                "metadata": metadata,
            },
            "admin": { "address": socket_address(&self.admin_ip.to_string(), 0) },
            "dynamic_resources": {
                "ads_config": {
                    "api_type": "GRPC",
                    "transport_api_version": "V3",
                    "grpc_services": [ads_service],
                },
                "cds_config": subscription,
                "lds_config": subscription,
            },
            "static_resources": {
                "clusters": [
                    xds_cluster,
                    unix_socket_grpc_cluster(SDS_CLUSTER, self.sds_socket),
                    unix_socket_grpc_cluster(ALS_CLUSTER, self.sds_socket),
                ],
            },
            "typed_dns_resolver_config": {
                "name": "envoy.network.dns_resolver.cares",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.network.dns_resolver.cares.v3.CaresDnsResolverConfig",
                    "resolvers": [socket_address(
                        &proxy.dns_addr.ip().to_string(),
                        proxy.dns_addr.port(),
                    )],
                    "use_resolvers_as_fallback": false,
                    "dns_resolver_options": {
                        "use_tcp_for_dns_lookups": false,
                        "no_default_search_domain": true,
                    },
                },
            },
        })
    }
}

/// A static cluster `name` for a gRPC server on the Unix socket `path`.
fn unix_socket_grpc_cluster(name: &str, path: &Path) -> Value {
    json!({
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{ "lb_endpoints": [{ "endpoint": {
                "address": { "pipe": { "path": path } },
            } }] }],
        },
        "typed_extension_protocol_options": http2_only(),
    })
}

/// HTTP/2 to a cluster, as gRPC needs.
fn http2_only() -> Value {
    json!({
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            "explicit_http_config": { "http2_protocol_options": {} },
        },
    })
}

/// TLS to the control plane: the mesh root as the only trust anchor, the
/// server name as SNI (a DNS name) and as the subject alt name to verify.
fn control_plane_tls(tls: &ProxyTls) -> Value {
    let san_type = if tls.server_name.parse::<IpAddr>().is_ok() {
        "IP_ADDRESS"
    } else {
        "DNS"
    };
    let mut context = json!({
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
        "common_tls_context": {
            "alpn_protocols": ["h2"],
            "validation_context": {
                "trusted_ca": { "filename": tls.root_cert },
                "match_typed_subject_alt_names": [{
                    "san_type": san_type,
                    "matcher": { "exact": tls.server_name },
                }],
            },
        },
    });
    if san_type == "DNS" {
        context["sni"] = json!(tls.server_name);
    }
    json!({ "name": "envoy.transport_sockets.tls", "typed_config": context })
}

fn socket_address(address: &str, port: u16) -> Value {
    json!({ "socket_address": { "address": address, "port_value": port } })
}

/// A running Envoy and, over TLS, its SDS server; both killed on drop
/// (Envoy first), their files removed.
pub struct Envoy {
    process: Process,
    _sds: Option<Process>,
    admin: Admin,
    _dir: TempDir,
}

impl Envoy {
    /// Starts Envoy as `options` on this host.
    pub fn start(options: &ProxyOptions) -> Result<Self> {
        Self::start_bootstrap(options, |bootstrap| bootstrap.json())
    }

    /// Starts Envoy as `options` inside `netns` as uid
    /// [`crate::netns::PROXY_UID`], as Istio runs a sidecar (outbound
    /// capture rules leave its own connections alone), with its admin
    /// interface on the namespace's address.
    pub fn start_in(netns: &NetNs, options: &ProxyOptions) -> Result<Self> {
        let admin_ip = IpAddr::V4(netns.ns_ip());
        Self::launch(options, Some(netns), |bootstrap| {
            bootstrap.admin_ip(admin_ip).json()
        })
    }

    /// Starts Envoy as `options` on `host`: in its namespace (as
    /// [`Envoy::start_in`]) or on this host (as [`Envoy::start`]).
    pub fn start_sidecar(host: &SidecarHost, options: &ProxyOptions) -> Result<Self> {
        match host.netns() {
            None => Self::start(options),
            Some(netns) => Self::start_in(netns, options),
        }
    }

    /// Starts Envoy as `options` on this host with the bootstrap `write`
    /// makes of its [`Bootstrap`] (e.g. with static resources added), one
    /// worker thread, hot restart disabled (so any number can run side by
    /// side) and access logs written out within 100 ms, then waits until
    /// its admin interface answers.
    pub fn start_bootstrap(
        options: &ProxyOptions,
        write: impl FnOnce(Bootstrap<'_>) -> Value,
    ) -> Result<Self> {
        Self::launch(options, None, write)
    }

    fn launch(
        options: &ProxyOptions,
        netns: Option<&NetNs>,
        write: impl FnOnce(Bootstrap<'_>) -> Value,
    ) -> Result<Self> {
        ensure!(
            options.max_unregistered_destinations.is_none(),
            "Envoy has no Istio stats filter: max_unregistered_destinations is our agent's"
        );
        ensure!(
            options.outbound_addr.is_none() && options.admin_addr.is_none(),
            "Envoy binds the control plane's outbound address and its bootstrap's admin: outbound_addr and admin_addr are our agent's"
        );
        let dir = tempfile::tempdir().context("creating Envoy's temp dir")?;
        let connection = options.connection(dir.path())?;
        let sds_socket = dir.path().join(SDS_SOCKET);
        let sds = match &connection.tls {
            None => None,
            Some(_) => Some(start_sds(
                options,
                &connection,
                &sds_socket,
                netns,
                dir.path(),
            )?),
        };
        let bootstrap = write(Bootstrap::new(options, &connection, &sds_socket));
        let bootstrap_path = dir.path().join("bootstrap.json");
        fs::write(&bootstrap_path, serde_json::to_string_pretty(&bootstrap)?)
            .with_context(|| format!("writing {}", bootstrap_path.display()))?;
        let admin_path = dir.path().join("admin-address");
        let binary = binaries::envoy()?;
        let mut command = match netns {
            None => Command::new(binary),
            Some(netns) => netns.proxy_command(&binary, dir.path())?,
        };
        options.set_system_roots(&mut command);
        command
            .arg("-c")
            .arg(&bootstrap_path)
            .args(["--concurrency", "1", "--disable-hot-restart"])
            .args(PILOT_AGENT_DRAIN)
            .arg("--file-flush-interval-msec")
            .arg(LOG_FLUSH_INTERVAL.as_millis().to_string())
            .arg("--admin-address-path")
            .arg(&admin_path)
            .args(["--log-level", LOG_LEVEL]);
        let mut process = Process::spawn("envoy", command, dir.path())?;
        let admin_addr = wait_for_admin_address(&mut process, &admin_path)?;
        Ok(Self {
            process,
            _sds: sds,
            admin: Admin::new("envoy", admin_addr),
            _dir: dir,
        })
    }

    /// Waits up to `timeout` for the Envoy to exit (after
    /// `/quitquitquit`, say); kills it and fails if it does not.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<std::process::ExitStatus> {
        self.process.wait_with_timeout(timeout)
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin.addr()
    }

    /// Envoy's stdout and stderr so far.
    pub fn logs(&self) -> String {
        self.process.logs()
    }

    /// Every access log line written so far (the control plane's stdout
    /// access loggers), oldest first.
    pub fn access_log(&self) -> Vec<String> {
        self.process.stdout().lines().map(str::to_string).collect()
    }

    /// GET `path` (e.g. `/clusters?format=json`) on the admin interface.
    pub fn admin_get(&self, path: &str) -> Result<CurlResponse> {
        self.admin.get(path)
    }

    /// Drains every listener as pilot-agent has Envoy drain when its pod
    /// stops (`POST /drain_listeners?graceful`): connections are asked to
    /// close, requests in flight finish.
    pub fn drain_listeners(&self) -> Result<()> {
        self.admin.post("/drain_listeners?graceful")?;
        Ok(())
    }

    /// `/server_info`, which includes `state` (`LIVE`, `INITIALIZING`, ..).
    pub fn server_info(&self) -> Result<Value> {
        self.admin_json("/server_info")
    }

    /// `/config_dump`.
    pub fn config_dump(&self) -> Result<Value> {
        self.admin_json("/config_dump")
    }

    /// `/stats` as text, one `name: value` a line.
    pub fn stats(&self) -> Result<String> {
        Ok(self.admin.ok("/stats")?.body)
    }

    /// The value of counter or gauge `name`; `None` if Envoy has no such
    /// stat.
    pub fn stat(&self, name: &str) -> Result<Option<u64>> {
        Ok(self.counters()?.remove(name))
    }

    /// Every counter and gauge, by name.
    pub fn counters(&self) -> Result<BTreeMap<String, u64>> {
        Ok(self
            .stats()?
            .lines()
            .filter_map(|line| {
                let (key, value) = line.split_once(": ")?;
                Some((key.to_string(), value.trim().parse().ok()?))
            })
            .collect())
    }

    /// What `/config_dump?include_eds` says Envoy holds from xDS.
    pub fn dynamic_resources(&self) -> Result<DynamicResources> {
        DynamicResources::parse(&self.admin_json("/config_dump?include_eds")?)
    }

    /// Waits until `/ready` says `LIVE`: initialization is over (the first
    /// CDS and LDS answers arrived, or their initial fetch timed out).
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let admin = self.admin;
        self.process
            .wait_until("ready", timeout, || admin.ensure_live())
    }

    fn admin_json(&self, path: &str) -> Result<Value> {
        self.admin.ok(path)?.json()
    }
}

/// Envoy writes its admin address once the admin listener is bound.
fn wait_for_admin_address(process: &mut Process, path: &Path) -> Result<SocketAddr> {
    process.wait_until("serving its admin interface", ADMIN_STARTUP, || {
        let written = fs::read_to_string(path).unwrap_or_default();
        written
            .trim()
            .parse()
            .with_context(|| format!("no admin address in {}", path.display()))
    })
}

/// `data-plane sds --socket PATH` for `options`' identity, as Envoy's uid
/// and where Envoy runs; returns once the socket exists.
fn start_sds(
    options: &ProxyOptions,
    connection: &ProxyConnection,
    socket: &Path,
    netns: Option<&NetNs>,
    dir: &Path,
) -> Result<Process> {
    let binary = binaries::data_plane()?;
    let mut command = match netns {
        None => Command::new(binary),
        Some(netns) => netns.proxy_command(&binary, dir)?,
    };
    command
        .arg("sds")
        .arg("--socket")
        .arg(socket)
        .args(connection.agent_args())
        .args(["--namespace", options.namespace()])
        .args(["--service-account", &options.service_account]);
    if std::env::var_os("RUST_LOG").is_none() {
        command.env("RUST_LOG", "info");
    }
    command.env("NO_COLOR", "1");
    let mut process = Process::spawn("data-plane-sds", command, dir)?;
    let socket: PathBuf = socket.to_path_buf();
    process.wait_until("serving SDS", ADMIN_STARTUP, || {
        ensure!(socket.exists(), "no socket at {}", socket.display());
        Ok(())
    })?;
    Ok(process)
}
