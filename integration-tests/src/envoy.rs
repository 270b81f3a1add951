//! A real Envoy as an xDS client of our control plane: an Istio-style node
//! identity, ADS over gRPC to a static `xds-grpc` cluster, CDS and LDS from
//! ADS, names resolved only through the test DNS server, and an admin
//! interface on a port Envoy picks itself (loopback unless told otherwise).
//! It runs on the host, or like a sidecar inside a [`NetNs`] as uid 1337.

use std::collections::BTreeMap;
use std::fs;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{Value, json};
use shared::node::{META_INSTANCE_IPS, META_LABELS, META_NAMESPACE};
use tempfile::TempDir;

use crate::admin::Admin;
use crate::binaries;
use crate::config_dump::DynamicResources;
use crate::curl::CurlResponse;
use crate::netns::{NetNs, SidecarHost};
use crate::process::Process;
use crate::proxy_options::ProxyOptions;

/// The static cluster that reaches the control plane, as Istio names it.
pub const XDS_CLUSTER: &str = "xds-grpc";
/// How often Envoy writes out its access logs (its default, 10 s, is
/// longer than a test waits for a line).
const LOG_FLUSH_INTERVAL: Duration = Duration::from_millis(100);
/// How long Envoy gets to bind its admin port.
const ADMIN_STARTUP: Duration = Duration::from_secs(20);
/// `--log-level`.
const LOG_LEVEL: &str = "info";

/// Envoy's bootstrap for a proxy: its identity and ADS source from
/// [`ProxyOptions`], and Envoy's own settings.
#[derive(Debug, Clone)]
pub struct Bootstrap<'a> {
    proxy: &'a ProxyOptions,
    admin_ip: IpAddr,
    initial_fetch_timeout: Option<Duration>,
}

impl<'a> Bootstrap<'a> {
    /// `proxy`'s bootstrap, its admin interface on loopback.
    pub fn new(proxy: &'a ProxyOptions) -> Self {
        Self {
            proxy,
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
        let namespace = proxy.node.namespace().unwrap_or_default();
        let mut subscription = json!({ "ads": {}, "resource_api_version": "V3" });
        if let Some(timeout) = self.initial_fetch_timeout {
            subscription["initial_fetch_timeout"] = json!(format!("{}s", timeout.as_secs_f64()));
        }
        json!({
            "node": {
                "id": proxy.node.to_string(),
                // Istio's `<app>.<namespace>`.
                "cluster": proxy.node.id,
                "metadata": {
                    META_NAMESPACE: namespace,
                    META_LABELS: proxy.labels,
                    META_INSTANCE_IPS: proxy.node.ip,
                },
            },
            "admin": { "address": socket_address(&self.admin_ip.to_string(), 0) },
            "dynamic_resources": {
                "ads_config": {
                    "api_type": "GRPC",
                    "transport_api_version": "V3",
                    "grpc_services": [{ "envoy_grpc": { "cluster_name": XDS_CLUSTER } }],
                },
                "cds_config": subscription,
                "lds_config": subscription,
            },
            "static_resources": {
                "clusters": [{
                    "name": XDS_CLUSTER,
                    "type": "STATIC",
                    "connect_timeout": "1s",
                    "load_assignment": {
                        "cluster_name": XDS_CLUSTER,
                        "endpoints": [{ "lb_endpoints": [{ "endpoint": {
                            "address": socket_address(
                                &proxy.xds_addr.ip().to_string(),
                                proxy.xds_addr.port(),
                            ),
                        } }] }],
                    },
                    "typed_extension_protocol_options": {
                        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                            "explicit_http_config": { "http2_protocol_options": {} },
                        },
                    },
                }],
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

fn socket_address(address: &str, port: u16) -> Value {
    json!({ "socket_address": { "address": address, "port_value": port } })
}

/// A running Envoy; killed on drop, its files removed.
pub struct Envoy {
    process: Process,
    admin: Admin,
    _dir: TempDir,
}

impl Envoy {
    /// Starts Envoy as `options` on this host.
    pub fn start(options: &ProxyOptions) -> Result<Self> {
        Self::start_bootstrap(&Bootstrap::new(options).json())
    }

    /// Starts Envoy as `options` inside `netns` as uid
    /// [`crate::netns::PROXY_UID`], as Istio runs a sidecar (outbound
    /// capture rules leave its own connections alone), with its admin
    /// interface on the namespace's address.
    pub fn start_in(netns: &NetNs, options: &ProxyOptions) -> Result<Self> {
        let bootstrap = Bootstrap::new(options).admin_ip(IpAddr::V4(netns.ns_ip()));
        Self::launch(&bootstrap.json(), Some(netns))
    }

    /// Starts Envoy as `options` on `host`: in its namespace (as
    /// [`Envoy::start_in`]) or on this host (as [`Envoy::start`]).
    pub fn start_sidecar(host: &SidecarHost, options: &ProxyOptions) -> Result<Self> {
        match host.netns() {
            None => Self::start(options),
            Some(netns) => Self::start_in(netns, options),
        }
    }

    /// Writes `bootstrap` (e.g. a [`Bootstrap`] with static resources
    /// added) and starts Envoy with one worker thread, hot restart disabled
    /// (so any number can run side by side) and access logs written out
    /// within 100 ms, then waits until its admin interface answers.
    pub fn start_bootstrap(bootstrap: &Value) -> Result<Self> {
        Self::launch(bootstrap, None)
    }

    fn launch(bootstrap: &Value, netns: Option<&NetNs>) -> Result<Self> {
        let binary = binaries::envoy()?;
        let dir = tempfile::tempdir().context("creating Envoy's temp dir")?;
        let bootstrap_path = dir.path().join("bootstrap.json");
        fs::write(&bootstrap_path, serde_json::to_string_pretty(bootstrap)?)
            .with_context(|| format!("writing {}", bootstrap_path.display()))?;
        let admin_path = dir.path().join("admin-address");
        let mut command = match netns {
            None => Command::new(binary),
            Some(netns) => netns.proxy_command(&binary, dir.path())?,
        };
        command
            .arg("-c")
            .arg(&bootstrap_path)
            .args(["--concurrency", "1", "--disable-hot-restart"])
            .arg("--file-flush-interval-msec")
            .arg(LOG_FLUSH_INTERVAL.as_millis().to_string())
            .arg("--admin-address-path")
            .arg(&admin_path)
            .args(["--log-level", LOG_LEVEL]);
        let mut process = Process::spawn("envoy", command, dir.path())?;
        let admin_addr = wait_for_admin_address(&mut process, &admin_path)?;
        Ok(Self {
            process,
            admin: Admin::new("envoy", admin_addr),
            _dir: dir,
        })
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
