//! A real Envoy as an xDS client of our control plane: an Istio-style node
//! identity, ADS over gRPC to a static `xds-grpc` cluster, CDS and LDS from
//! ADS, names resolved only through the test DNS server, and an admin
//! interface on a port Envoy picks itself (loopback unless told otherwise).
//! It runs on the host, or like a sidecar inside a [`NetNs`] as uid 1337.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use shared::node::{META_INSTANCE_IPS, META_LABELS, META_NAMESPACE, NodeId, NodeType};
use tempfile::TempDir;

use crate::binaries;
use crate::curl::{Curl, CurlResponse};
use crate::netns::{NetNs, SidecarHost};
use crate::process::Process;

/// The static cluster that reaches the control plane, as Istio names it.
pub const XDS_CLUSTER: &str = "xds-grpc";
/// The workload IP a test proxy claims unless told otherwise
/// ([`EnvoyOptions::ip`]).
const PROXY_IP: &str = "127.0.0.1";
/// How often Envoy writes out its access logs (its default, 10 s, is
/// longer than a test waits for a line).
const LOG_FLUSH_INTERVAL: Duration = Duration::from_millis(100);
/// How long Envoy gets to bind its admin port.
const ADMIN_STARTUP: Duration = Duration::from_secs(20);

/// What the Envoy under test is and where it finds its peers.
#[derive(Debug, Clone)]
pub struct EnvoyOptions {
    pub node: NodeId,
    /// The bootstrap's `node.cluster` (Istio: `<app>.<namespace>`).
    pub cluster: String,
    /// The workload labels sent as `LABELS` metadata.
    pub labels: BTreeMap<String, String>,
    /// The control plane's ADS address.
    pub xds_addr: SocketAddr,
    /// The only DNS server Envoy may use.
    pub dns_addr: SocketAddr,
    /// Where the admin interface listens (on a port Envoy picks); it must
    /// be reachable from the test, so inside a [`NetNs`] use its
    /// [`NetNs::ns_ip`].
    pub admin_ip: IpAddr,
    /// How long CDS and LDS wait for a first answer before Envoy goes live
    /// without one; Envoy's default (15 s) when `None`.
    pub initial_fetch_timeout: Option<Duration>,
    /// `--log-level`.
    pub log_level: String,
}

impl EnvoyOptions {
    /// The sidecar of workload `app` in `namespace`, labelled `app=<app>`.
    pub fn sidecar(app: &str, namespace: &str, xds_addr: SocketAddr, dns_addr: SocketAddr) -> Self {
        Self::new(NodeType::Sidecar, app, namespace, xds_addr, dns_addr)
    }

    /// A gateway named `name` in `namespace`, labelled `app=<name>`; add
    /// e.g. `.label("istio", "egressgateway")` for Istio's egress gateway.
    pub fn router(name: &str, namespace: &str, xds_addr: SocketAddr, dns_addr: SocketAddr) -> Self {
        Self::new(NodeType::Router, name, namespace, xds_addr, dns_addr)
    }

    fn new(
        node_type: NodeType,
        app: &str,
        namespace: &str,
        xds_addr: SocketAddr,
        dns_addr: SocketAddr,
    ) -> Self {
        Self {
            node: NodeId::new(node_type, PROXY_IP, app, namespace),
            cluster: format!("{app}.{namespace}"),
            labels: BTreeMap::from([("app".to_string(), app.to_string())]),
            xds_addr,
            dns_addr,
            admin_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            initial_fetch_timeout: None,
            log_level: "info".to_string(),
        }
    }

    /// Adds (or replaces) a workload label.
    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.insert(key.to_string(), value.to_string());
        self
    }

    /// The workload IP, in the node id and the `INSTANCE_IPS` metadata: the
    /// address other proxies reach it at when a service selects it (a
    /// gateway's in-mesh service).
    pub fn ip(mut self, ip: IpAddr) -> Self {
        self.node.ip = ip.to_string();
        self
    }

    /// The bootstrap configuration, as JSON.
    pub fn bootstrap(&self) -> Value {
        let namespace = self.node.namespace().unwrap_or_default();
        let mut subscription = json!({ "ads": {}, "resource_api_version": "V3" });
        if let Some(timeout) = self.initial_fetch_timeout {
            subscription["initial_fetch_timeout"] = json!(format!("{}s", timeout.as_secs_f64()));
        }
        json!({
            "node": {
                "id": self.node.to_string(),
                "cluster": self.cluster,
                "metadata": {
                    META_NAMESPACE: namespace,
                    META_LABELS: self.labels,
                    META_INSTANCE_IPS: self.node.ip,
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
                                &self.xds_addr.ip().to_string(),
                                self.xds_addr.port(),
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
                        &self.dns_addr.ip().to_string(),
                        self.dns_addr.port(),
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
    admin_addr: SocketAddr,
    _dir: TempDir,
}

impl Envoy {
    /// Starts Envoy with `options.bootstrap()`.
    pub fn start(options: &EnvoyOptions) -> Result<Self> {
        Self::start_bootstrap(&options.bootstrap(), &options.log_level)
    }

    /// Starts Envoy with `options.bootstrap()` inside `netns` as uid
    /// [`crate::netns::PROXY_UID`], as Istio runs a sidecar: outbound
    /// capture rules ([`NetNs::capture_outbound`]) leave its own connections
    /// alone.
    pub fn start_in(netns: &NetNs, options: &EnvoyOptions) -> Result<Self> {
        Self::launch(&options.bootstrap(), &options.log_level, Some(netns))
    }

    /// Starts Envoy with `options.bootstrap()` on `host`: in its namespace
    /// (as [`Envoy::start_in`], admin interface on the namespace's address)
    /// or on this host (as [`Envoy::start`]).
    pub fn start_sidecar(host: &SidecarHost, options: &EnvoyOptions) -> Result<Self> {
        match host.netns() {
            None => Self::start(options),
            Some(netns) => {
                let options = EnvoyOptions {
                    admin_ip: IpAddr::V4(netns.ns_ip()),
                    ..options.clone()
                };
                Self::start_in(netns, &options)
            }
        }
    }

    /// Writes `bootstrap` (e.g. an [`EnvoyOptions::bootstrap`] with static
    /// resources added) and starts Envoy with one worker thread, hot
    /// restart disabled (so any number can run side by side) and access logs
    /// written out within 100 ms, then waits until its admin interface
    /// answers.
    pub fn start_bootstrap(bootstrap: &Value, log_level: &str) -> Result<Self> {
        Self::launch(bootstrap, log_level, None)
    }

    fn launch(bootstrap: &Value, log_level: &str, netns: Option<&NetNs>) -> Result<Self> {
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
            .args(["--log-level", log_level]);
        let mut process = Process::spawn("envoy", command, dir.path())?;
        let admin_addr = wait_for_admin_address(&mut process, &admin_path)?;
        Ok(Self {
            process,
            admin_addr,
            _dir: dir,
        })
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
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
        Curl::get(format!("http://{}{path}", self.admin_addr))
            .max_time(Duration::from_secs(10))
            .run()
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
        Ok(self.admin_ok("/stats")?.body)
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

    /// What `/config_dump` says Envoy holds from xDS.
    pub fn dynamic_resources(&self) -> Result<DynamicResources> {
        DynamicResources::from_config_dump(&self.config_dump()?)
    }

    /// Waits until `/ready` says `LIVE`: initialization is over (the first
    /// CDS and LDS answers arrived, or their initial fetch timed out).
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.process.exit_status()? {
                bail!(
                    "envoy exited ({status}) before it was ready\n{}",
                    self.logs()
                );
            }
            let ready = self.admin_get("/ready")?;
            if ready.status == 200 && ready.body.trim() == "LIVE" {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "envoy not ready after {timeout:?}: /ready answered {} {:?}\n{}",
                    ready.status,
                    ready.body.trim(),
                    self.logs()
                );
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    fn admin_ok(&self, path: &str) -> Result<CurlResponse> {
        let response = self.admin_get(path)?;
        response
            .ensure_status(200)
            .with_context(|| format!("envoy admin {path}"))?;
        Ok(response)
    }

    fn admin_json(&self, path: &str) -> Result<Value> {
        self.admin_ok(path)?.json()
    }
}

/// The xDS resources in a config dump, by name.
#[derive(Debug, Clone, Default)]
pub struct DynamicResources {
    /// Active clusters.
    pub clusters: BTreeSet<String>,
    /// Listeners in service (`active_state`), by name.
    pub listeners: BTreeMap<String, Value>,
    /// Route configurations.
    pub routes: BTreeSet<String>,
    /// The `error_state` of any resource whose last update Envoy rejected.
    pub errors: Vec<Value>,
}

impl DynamicResources {
    fn from_config_dump(dump: &Value) -> Result<Self> {
        let configs = dump["configs"]
            .as_array()
            .with_context(|| format!("config dump without configs: {dump}"))?;
        let mut found = Self::default();
        for config in configs {
            let items = |field: &str| config[field].as_array().cloned().unwrap_or_default();
            match config["@type"].as_str().unwrap_or_default() {
                "type.googleapis.com/envoy.admin.v3.ClustersConfigDump" => {
                    for item in items("dynamic_active_clusters") {
                        found.clusters.extend(name(&item["cluster"]));
                        found.errors.extend(error_state(&item));
                    }
                    for item in items("dynamic_warming_clusters") {
                        found.errors.extend(error_state(&item));
                    }
                }
                "type.googleapis.com/envoy.admin.v3.ListenersConfigDump" => {
                    for item in items("dynamic_listeners") {
                        let listener = &item["active_state"]["listener"];
                        if let Some(name) = name(listener) {
                            found.listeners.insert(name, listener.clone());
                        }
                        found.errors.extend(error_state(&item));
                    }
                }
                "type.googleapis.com/envoy.admin.v3.RoutesConfigDump" => {
                    for item in items("dynamic_route_configs") {
                        found.routes.extend(name(&item["route_config"]));
                    }
                }
                _ => {}
            }
        }
        Ok(found)
    }
}

fn name(resource: &Value) -> Option<String> {
    resource["name"].as_str().map(str::to_string)
}

fn error_state(item: &Value) -> Option<Value> {
    Some(item.get("error_state")?.clone())
}

/// Envoy writes its admin address once the admin listener is bound.
fn wait_for_admin_address(process: &mut Process, path: &Path) -> Result<SocketAddr> {
    let deadline = Instant::now() + ADMIN_STARTUP;
    loop {
        if let Some(status) = process.exit_status()? {
            bail!("envoy exited ({status}) during startup\n{}", process.logs());
        }
        if let Ok(addr) = fs::read_to_string(path).unwrap_or_default().trim().parse() {
            return Ok(addr);
        }
        if Instant::now() >= deadline {
            bail!(
                "envoy wrote no admin address to {} within {ADMIN_STARTUP:?}\n{}",
                path.display(),
                process.logs()
            );
        }
        thread::sleep(Duration::from_millis(50));
    }
}
