//! Parity: Istio's egress tasks give the same results through our agent as
//! through real Envoy 1.40, on the same control plane with the same YAML
//! (issues #4 and #5).
//!
//! One table of scenarios, each run twice: with our agent as the app's
//! sidecar (and egress gateway), then with Envoy. Each sidecar runs as in a
//! pod: in a network namespace of its own, as uid 1337, behind the capture
//! rules `data-plane init` installs there (istio-init's iptables REDIRECT to
//! 15001, the same rules for both). The app is real curl, run as root inside
//! the namespace, so its connections are captured; it reaches the names with
//! `--resolve`, never the system resolver. The "external" servers (HTTP on
//! port 80, HTTPS on 443 with a test CA) and the DNS server listen on the
//! host end of the namespace's veth, and every name resolves to it, so the
//! names share ports 80 and 443 and are told apart by Host and SNI.
//!
//! The egress gateway runs on the host, its node id claiming the host's
//! veth address, so the control plane makes it the endpoint the sidecar
//! reaches `istio-egressgateway.istio-system.svc.cluster.local` at; the
//! external server then sees the gateway's address, not the namespace's.
//!
//! One control plane serves both sidecars. Each scenario's config is written
//! to its hot-reloaded config directory and mesh file; each proxy is polled
//! (`/config_dump`) until it holds that config before curl runs.
//!
//! Each run records the status (or curl's exit code), the error body, the
//! `x-envoy-*` response headers of a 200, what the external server saw
//! (decorator, SNI, which hop connected) and each proxy's access log (code,
//! flags, upstream). The agent's record must equal Envoy's, and both must
//! equal what Istio gives. The table is printed (`--nocapture`) and is part
//! of any failure.
//!
//! Needs root (namespaces, iptables): see `netns::require_root`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use integration_tests::binaries;
use integration_tests::control_plane::{ConfigDir, ControlPlane};
use integration_tests::curl::{Curl, CurlResponse};
use integration_tests::data_plane::{DataPlane, DataPlaneOptions};
use integration_tests::dns::DnsServer;
use integration_tests::envoy::{Envoy, EnvoyOptions};
use integration_tests::fixtures::{
    HTTPBIN_SERVICE_ENTRY, http_via_gateway, https_via_gateway, mesh_config, mutual_tls_via_gateway,
};
use integration_tests::netns::{self, NetNs, PROXY_UID};
use integration_tests::ports::free_port;
use integration_tests::process::{self, eventually};
use integration_tests::tls::TestCa;
use integration_tests::upstream::Upstream;
use serde_json::Value;

/// How long a proxy gets to start, or to take in a config change.
const CONVERGE: Duration = Duration::from_secs(20);
/// How long a proxy gets to write the access log line of a request.
const LOG_WAIT: Duration = Duration::from_secs(5);
/// Every external name; all resolve to the host end of the veth.
const EXTERNAL_NAMES: [&str; 3] = ["httpbin.org", "www.baidu.com", "edition.cnn.com"];
/// The mesh file the control plane watches, in its own directory.
const MESH_FILE: &str = "mesh.yaml";
/// What the external server reports for its peer when the sidecar connected.
const SIDECAR: &str = "sidecar";
/// ...and when the egress gateway did.
const GATEWAY: &str = "gateway";
/// The header the decorator arrives in.
const DECORATOR: &str = "x-envoy-decorator-operation";
/// Envoy's response header with the upstream's time.
const UPSTREAM_SERVICE_TIME: &str = "x-envoy-upstream-service-time";
const GATEWAY_HTTP_CLUSTER: &str =
    "outbound|80|cnn|istio-egressgateway.istio-system.svc.cluster.local";
const GATEWAY_TLS_CLUSTER: &str =
    "outbound|443|cnn|istio-egressgateway.istio-system.svc.cluster.local";

/// The walkthrough's "access an external HTTPS service" ServiceEntry.
const BAIDU_SERVICE_ENTRY: &str = "\
apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata:
  name: baidu
spec:
  hosts:
  - www.baidu.com
  ports:
  - number: 443
    name: https
    protocol: HTTPS
  resolution: DNS
  location: MESH_EXTERNAL
";

/// The walkthrough's route timeout for httpbin.org, shortened from 3s to 1s
/// (and its `/delay/5` to `/delay/2`) to keep the test fast.
const HTTPBIN_TIMEOUT: &str = "\
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata:
  name: httpbin-ext
spec:
  hosts:
    - httpbin.org
  http:
  - timeout: 1s
    route:
      - destination:
          host: httpbin.org
        weight: 100
";

/// The walkthrough's TLS origination for edition.cnn.com, with the test
/// CA added to the DestinationRule (`caCertificates`) so the origination
/// can verify the external server.
fn tls_origination(ca_cert: &Path) -> String {
    format!(
        "\
apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata:
  name: edition-cnn-com
spec:
  hosts:
  - edition.cnn.com
  ports:
  - number: 80
    name: http-port
    protocol: HTTP
  - number: 443
    name: https-port-for-tls-origination
    protocol: HTTPS
  resolution: DNS
---
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata:
  name: edition-cnn-com
spec:
  hosts:
  - edition.cnn.com
  http:
  - match:
    - port: 80
    route:
    - destination:
        host: edition.cnn.com
        subset: tls-origination
        port:
          number: 443
---
apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata:
  name: edition-cnn-com
spec:
  host: edition.cnn.com
  subsets:
  - name: tls-origination
    trafficPolicy:
      loadBalancer:
        simple: ROUND_ROBIN
      portLevelSettings:
      - port:
          number: 443
        tls:
          mode: SIMPLE
          caCertificates: {}
",
        ca_cert.display()
    )
}

/// The egress gateway as an installed Istio declares it: an in-mesh service
/// whose endpoints are the connected proxies labelled istio=egressgateway,
/// listening on the target ports.
fn gateway_service(targets: GatewayPorts) -> String {
    format!(
        "\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: istio-egressgateway
  namespace: istio-system
spec:
  hosts:
  - istio-egressgateway.istio-system.svc.cluster.local
  location: MESH_INTERNAL
  ports:
  - number: 80
    name: http
    protocol: HTTP
    targetPort: {}
  - number: 443
    name: https
    protocol: HTTPS
    targetPort: {}
  resolution: STATIC
  workloadSelector:
    labels:
      istio: egressgateway
",
        targets.http, targets.https
    )
}

/// Where the egress gateway listens on the host for its service's ports
/// 80 and 443: free ports, so no other process on the host is in the way.
#[derive(Debug, Clone, Copy)]
struct GatewayPorts {
    http: u16,
    https: u16,
}

/// One row of the table: a config, a request, and what must come of it.
struct Scenario {
    name: &'static str,
    /// `examples/mesh-config/<mesh>.yaml`: `allow-any` or `registry-only`.
    mesh: &'static str,
    /// The config directory's files (name, YAML); any other file is removed.
    files: Vec<(&'static str, String)>,
    /// What a proxy holds once it has this config.
    ready: Vec<Ready>,
    /// Whether the request goes through an egress gateway.
    gateway: bool,
    request: Request,
    expected: Outcome,
}

/// A curl invocation of the app.
struct Request {
    url: &'static str,
    /// `curl -I` (HEAD), as the walkthrough checks HTTPS services.
    head: bool,
}

impl Request {
    fn get(url: &'static str) -> Self {
        Self { url, head: false }
    }

    fn head(url: &'static str) -> Self {
        Self { url, head: true }
    }
}

/// Something a proxy's config dump shows once it has a scenario's config.
enum Ready {
    /// A cluster, listener or route configuration whose JSON holds the text
    /// (any, for an empty text).
    Has(&'static str, &'static str),
    /// A cluster, listener or route configuration whose JSON lacks the text.
    Lacks(&'static str, &'static str),
    /// The EDS cluster's only endpoint is this side's egress gateway, on
    /// the given port.
    GatewayEndpoint(&'static str, u16),
    /// The EDS cluster has no endpoint (its gateway went away).
    NoEndpoints(&'static str),
}

impl Ready {
    fn needs_gateway(&self) -> bool {
        matches!(self, Ready::GatewayEndpoint(..))
    }

    fn check(&self, view: &ConfigView, gateway_ip: Ipv4Addr) -> Result<()> {
        match self {
            Ready::Has(name, text) | Ready::Lacks(name, text) => {
                let json = view
                    .resources
                    .get(*name)
                    .with_context(|| format!("no resource named {name}"))?;
                let wanted = matches!(self, Ready::Has(..));
                ensure!(
                    json.contains(text) == wanted,
                    "{name} {} {text}: {json}",
                    if wanted { "lacks" } else { "still has" }
                );
            }
            Ready::GatewayEndpoint(cluster, port) => {
                let endpoints = view.endpoints.get(*cluster).cloned().unwrap_or_default();
                ensure!(
                    endpoints == [format!("{gateway_ip}:{port}")],
                    "{cluster} has endpoints {endpoints:?}, not only the gateway at \
                     {gateway_ip}:{port}"
                );
            }
            Ready::NoEndpoints(cluster) => {
                let endpoints = view.endpoints.get(*cluster).cloned().unwrap_or_default();
                ensure!(
                    endpoints.is_empty(),
                    "{cluster} still has endpoints {endpoints:?}"
                );
            }
        }
        Ok(())
    }
}

/// What one run of a scenario produced, as far as Envoy and our agent must
/// agree.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Outcome {
    /// `HTTP <status>`, or `curl exit <code>` when curl got no response.
    result: String,
    /// The body of a response other than 200 (what the proxy said), quoted.
    error_body: String,
    /// The names of the `x-envoy-*` headers of a 200 response.
    x_envoy: BTreeSet<String>,
    /// The decorator header the external server saw.
    decorator: String,
    /// The SNI the external server saw.
    sni: String,
    /// Who connected to the external server: [`SIDECAR`], [`GATEWAY`] or
    /// `-` when nothing reached it.
    peer: String,
    /// The sidecar's access log for the request, a line each: its code,
    /// flags and where it went (see [`Side::log_summary`]).
    sidecar_log: String,
    /// The gateway's, when the request went through one.
    gateway_log: String,
}

impl Outcome {
    fn http(status: u16) -> Self {
        Self::new(format!("HTTP {status}"))
    }

    fn curl_exit(code: i32) -> Self {
        Self::new(format!("curl exit {code}"))
    }

    fn new(result: String) -> Self {
        Self {
            result,
            error_body: "-".into(),
            x_envoy: BTreeSet::new(),
            decorator: "-".into(),
            sni: "-".into(),
            peer: "-".into(),
            sidecar_log: "-".into(),
            gateway_log: "-".into(),
        }
    }

    fn error_body(self, body: &str) -> Self {
        Self {
            error_body: format!("{body:?}"),
            ..self
        }
    }

    fn x_envoy(self, names: &[&str]) -> Self {
        Self {
            x_envoy: names.iter().map(ToString::to_string).collect(),
            ..self
        }
    }

    fn decorator(self, decorator: &str) -> Self {
        Self {
            decorator: decorator.into(),
            ..self
        }
    }

    fn sni(self, sni: &str) -> Self {
        Self {
            sni: sni.into(),
            ..self
        }
    }

    fn peer(self, peer: &str) -> Self {
        Self {
            peer: peer.into(),
            ..self
        }
    }

    fn sidecar_log(self, log: &str) -> Self {
        Self {
            sidecar_log: log.into(),
            ..self
        }
    }

    fn gateway_log(self, log: &str) -> Self {
        Self {
            gateway_log: log.into(),
            ..self
        }
    }

    /// The table's columns, in order.
    fn columns(&self) -> [String; 8] {
        let x_envoy = if self.x_envoy.is_empty() {
            "-".to_string()
        } else {
            self.x_envoy.iter().cloned().collect::<Vec<_>>().join(",")
        };
        [
            self.result.clone(),
            self.error_body.clone(),
            x_envoy,
            self.decorator.clone(),
            self.sni.clone(),
            self.peer.clone(),
            self.sidecar_log.clone(),
            self.gateway_log.clone(),
        ]
    }
}

const COLUMNS: [&str; 8] = [
    "result",
    "error body",
    "x-envoy-* (200)",
    "decorator upstream",
    "SNI upstream",
    "upstream peer",
    "sidecar log",
    "gateway log",
];

/// The walkthrough's egress scenarios, in its order.
fn scenarios(targets: GatewayPorts, ca_cert: &Path) -> Vec<Scenario> {
    let httpbin = || ("httpbin-ext.yaml", HTTPBIN_SERVICE_ENTRY.to_string());
    let cnn_via_gateway = || {
        vec![
            ("egressgateway-service.yaml", gateway_service(targets)),
            ("cnn-gateway-http.yaml", http_via_gateway(80)),
        ]
    };
    let http_via_the_gateway = |name| Scenario {
        name,
        mesh: "registry-only",
        files: cnn_via_gateway(),
        ready: vec![
            Ready::Has("80", GATEWAY_HTTP_CLUSTER),
            Ready::GatewayEndpoint(GATEWAY_HTTP_CLUSTER, targets.http),
        ],
        gateway: true,
        request: Request::get("http://edition.cnn.com/politics"),
        expected: Outcome::http(200)
            .x_envoy(&[UPSTREAM_SERVICE_TIME])
            .decorator("edition.cnn.com:80/*")
            .peer(GATEWAY)
            .sidecar_log("200 - -> gateway")
            .gateway_log("200 - -> external"),
    };
    let registry_only = || Ready::Lacks("virtualOutbound", "\"PassthroughCluster\"");
    vec![
        Scenario {
            name: "1 ALLOW_ANY: HTTPS passes through",
            mesh: "allow-any",
            files: vec![],
            ready: vec![Ready::Has("virtualOutbound", "\"PassthroughCluster\"")],
            gateway: false,
            request: Request::head("https://www.baidu.com"),
            expected: Outcome::http(200)
                .sni("www.baidu.com")
                .peer(SIDECAR)
                .sidecar_log("0 - -> external"),
        },
        Scenario {
            name: "2a REGISTRY_ONLY: HTTPS is reset",
            mesh: "registry-only",
            files: vec![httpbin()],
            ready: vec![registry_only(), Ready::Has("outbound|80||httpbin.org", "")],
            gateway: false,
            request: Request::head("https://www.baidu.com"),
            expected: Outcome::curl_exit(35).sidecar_log("0 UH -> -"),
        },
        Scenario {
            name: "2b REGISTRY_ONLY: HTTP to an unknown host",
            mesh: "registry-only",
            files: vec![httpbin()],
            ready: vec![registry_only(), Ready::Has("80", "httpbin.org")],
            gateway: false,
            request: Request::get("http://edition.cnn.com/politics"),
            expected: Outcome::http(502).error_body("").sidecar_log("502 - -> -"),
        },
        Scenario {
            name: "3 ServiceEntry httpbin.org (HTTP)",
            mesh: "registry-only",
            files: vec![httpbin()],
            ready: vec![Ready::Has("80", "outbound|80||httpbin.org")],
            gateway: false,
            request: Request::get("http://httpbin.org/headers"),
            expected: Outcome::http(200)
                .x_envoy(&[UPSTREAM_SERVICE_TIME])
                .decorator("httpbin.org:80/*")
                .peer(SIDECAR)
                .sidecar_log("200 - -> external"),
        },
        Scenario {
            name: "4 ServiceEntry www.baidu.com (HTTPS)",
            mesh: "registry-only",
            files: vec![httpbin(), ("baidu.yaml", BAIDU_SERVICE_ENTRY.to_string())],
            ready: vec![Ready::Has("0.0.0.0_443", "outbound|443||www.baidu.com")],
            gateway: false,
            request: Request::head("https://www.baidu.com"),
            expected: Outcome::http(200)
                .sni("www.baidu.com")
                .peer(SIDECAR)
                .sidecar_log("0 - -> external"),
        },
        Scenario {
            name: "5 VirtualService timeout 1s",
            mesh: "registry-only",
            files: vec![
                httpbin(),
                ("httpbin-timeout.yaml", HTTPBIN_TIMEOUT.to_string()),
            ],
            ready: vec![Ready::Has("80", "\"1s\"")],
            gateway: false,
            request: Request::get("http://httpbin.org/delay/2"),
            expected: Outcome::http(504)
                .error_body("upstream request timeout")
                .decorator("httpbin.org:80/*")
                .peer(SIDECAR)
                .sidecar_log("504 UT -> external"),
        },
        Scenario {
            name: "6 TLS origination",
            mesh: "registry-only",
            files: vec![("edition-cnn-com.yaml", tls_origination(ca_cert))],
            ready: vec![Ready::Has(
                "80",
                "outbound|443|tls-origination|edition.cnn.com",
            )],
            gateway: false,
            request: Request::get("http://edition.cnn.com/politics"),
            expected: Outcome::http(200)
                .x_envoy(&[UPSTREAM_SERVICE_TIME])
                .decorator("edition.cnn.com:443/*")
                .sni("edition.cnn.com")
                .peer(SIDECAR)
                .sidecar_log("200 - -> external"),
        },
        http_via_the_gateway("7 egress gateway: HTTP"),
        Scenario {
            name: "8 egress gateway: HTTPS passthrough",
            mesh: "registry-only",
            files: vec![
                ("egressgateway-service.yaml", gateway_service(targets)),
                ("cnn-gateway-tls.yaml", https_via_gateway(443)),
            ],
            ready: vec![
                Ready::Has("0.0.0.0_443", GATEWAY_TLS_CLUSTER),
                Ready::GatewayEndpoint(GATEWAY_TLS_CLUSTER, targets.https),
            ],
            gateway: true,
            request: Request::get("https://edition.cnn.com/politics"),
            expected: Outcome::http(200)
                .sni("edition.cnn.com")
                .peer(GATEWAY)
                .sidecar_log("0 - -> gateway")
                .gateway_log("0 - -> external"),
        },
        Scenario {
            name: "9 egress gateway: ISTIO_MUTUAL, then TLS origination",
            mesh: "registry-only",
            files: vec![
                ("egressgateway-service.yaml", gateway_service(targets)),
                (
                    "cnn-gateway-mtls.yaml",
                    mutual_tls_via_gateway(443, &ca_cert.display().to_string()),
                ),
            ],
            ready: vec![
                Ready::Has("80", GATEWAY_TLS_CLUSTER),
                Ready::GatewayEndpoint(GATEWAY_TLS_CLUSTER, targets.https),
            ],
            gateway: true,
            request: Request::get("http://edition.cnn.com/politics"),
            expected: Outcome::http(200)
                .x_envoy(&[UPSTREAM_SERVICE_TIME])
                .decorator("edition.cnn.com:443/*")
                .sni("edition.cnn.com")
                .peer(GATEWAY)
                .sidecar_log("200 - -> gateway")
                .gateway_log("200 - -> external"),
        },
        Scenario {
            name: "10 egress gateway gone: HTTP",
            mesh: "registry-only",
            files: cnn_via_gateway(),
            ready: vec![
                Ready::Has("80", GATEWAY_HTTP_CLUSTER),
                Ready::NoEndpoints(GATEWAY_HTTP_CLUSTER),
            ],
            gateway: false,
            request: Request::get("http://edition.cnn.com/politics"),
            expected: Outcome::http(503)
                .error_body("no healthy upstream")
                .sidecar_log("503 UH -> -"),
        },
        http_via_the_gateway("11 egress gateway back: HTTP"),
    ]
}

/// The proxy under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Agent,
    Envoy,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Agent => "agent",
            Kind::Envoy => "envoy",
        }
    }
}

/// A running sidecar or gateway of either kind.
enum Proxy {
    Agent(DataPlane),
    Envoy(Envoy),
}

impl Proxy {
    /// The `sleep` app's sidecar, inside `netns` as uid 1337, claiming the
    /// namespace's address.
    fn sidecar(kind: Kind, netns: &NetNs, xds: SocketAddr, dns: SocketAddr) -> Result<Self> {
        let ip = IpAddr::V4(netns.ns_ip());
        Ok(match kind {
            Kind::Agent => Proxy::Agent(DataPlane::start_in(
                netns,
                &DataPlaneOptions::sidecar("sleep", "default", xds, dns).ip(ip),
            )?),
            Kind::Envoy => {
                let mut options = EnvoyOptions::sidecar("sleep", "default", xds, dns).ip(ip);
                options.admin_ip = ip;
                let mut envoy = Envoy::start_in(netns, &options)?;
                envoy.wait_ready(CONVERGE)?;
                Proxy::Envoy(envoy)
            }
        })
    }

    /// Istio's egress gateway (labelled istio=egressgateway) on the host,
    /// claiming `ip`.
    fn gateway(kind: Kind, ip: Ipv4Addr, xds: SocketAddr, dns: SocketAddr) -> Result<Self> {
        let (name, namespace) = ("istio-egressgateway", "istio-system");
        let ip = IpAddr::V4(ip);
        Ok(match kind {
            Kind::Agent => Proxy::Agent(DataPlane::start(
                &DataPlaneOptions::router(name, namespace, xds, dns)
                    .label("istio", "egressgateway")
                    .ip(ip),
            )?),
            Kind::Envoy => {
                let mut envoy = Envoy::start(
                    &EnvoyOptions::router(name, namespace, xds, dns)
                        .label("istio", "egressgateway")
                        .ip(ip),
                )?;
                envoy.wait_ready(CONVERGE)?;
                Proxy::Envoy(envoy)
            }
        })
    }

    /// `/config_dump?include_eds`, read the same way for both kinds.
    fn config(&self) -> Result<ConfigView> {
        let path = "/config_dump?include_eds";
        let response = match self {
            Proxy::Agent(agent) => agent.admin_get(path)?,
            Proxy::Envoy(envoy) => envoy.admin_get(path)?,
        };
        response.ensure_status(200).context("GET /config_dump")?;
        ConfigView::parse(&response.json()?)
    }

    fn access_log(&self) -> Vec<String> {
        match self {
            Proxy::Agent(agent) => agent.access_log(),
            Proxy::Envoy(envoy) => envoy.access_log(),
        }
    }

    fn logs(&self) -> String {
        match self {
            Proxy::Agent(agent) => agent.logs(),
            Proxy::Envoy(envoy) => envoy.logs(),
        }
    }

    /// The access log lines after the first `seen`, once there is one
    /// (none if nothing comes within [`LOG_WAIT`]).
    fn access_log_after(&self, seen: usize) -> Vec<String> {
        eventually(LOG_WAIT, || {
            let lines = self.access_log();
            ensure!(lines.len() > seen, "no new access log line");
            Ok(lines[seen..].to_vec())
        })
        .unwrap_or_default()
    }
}

/// The xDS resources a proxy's config dump holds. Both name the fields as
/// the protos do (`dynamic_active_clusters`); JSON names are read too.
#[derive(Debug, Default)]
struct ConfigView {
    /// Active clusters, listeners and route configurations by name, as
    /// compact JSON.
    resources: BTreeMap<String, String>,
    /// EDS endpoints (`ip:port`) by cluster.
    endpoints: BTreeMap<String, Vec<String>>,
}

impl ConfigView {
    fn parse(dump: &Value) -> Result<Self> {
        let configs = dump["configs"]
            .as_array()
            .with_context(|| format!("config dump without configs: {dump}"))?;
        let mut view = Self::default();
        for config in configs {
            let items = |name: &str| field(config, name).as_array().cloned().unwrap_or_default();
            let resources = items("dynamic_active_clusters")
                .iter()
                .map(|item| field(item, "cluster").clone())
                .chain(
                    items("dynamic_listeners")
                        .iter()
                        .map(|item| field(field(item, "active_state"), "listener").clone()),
                )
                .chain(
                    items("dynamic_route_configs")
                        .iter()
                        .map(|item| field(item, "route_config").clone()),
                )
                .collect::<Vec<_>>();
            for resource in resources {
                if let Some(name) = resource["name"].as_str() {
                    view.resources
                        .insert(name.to_string(), resource.to_string());
                }
            }
            for item in items("dynamic_endpoint_configs") {
                let assignment = field(&item, "endpoint_config");
                let Some(cluster) = field(assignment, "cluster_name").as_str() else {
                    continue;
                };
                view.endpoints
                    .insert(cluster.to_string(), endpoint_addresses(assignment));
            }
        }
        Ok(view)
    }
}

/// `ip:port` of every endpoint of a ClusterLoadAssignment.
fn endpoint_addresses(assignment: &Value) -> Vec<String> {
    let list =
        |value: &Value, name: &str| field(value, name).as_array().cloned().unwrap_or_default();
    list(assignment, "endpoints")
        .iter()
        .flat_map(|locality| list(locality, "lb_endpoints"))
        .map(|lb_endpoint| {
            let address = field(
                field(field(&lb_endpoint, "endpoint"), "address"),
                "socket_address",
            );
            format!(
                "{}:{}",
                address["address"].as_str().unwrap_or_default(),
                field(address, "port_value")
            )
        })
        .collect()
}

/// Field `snake_name` of a JSON object, or its camelCase spelling; null if
/// neither is there.
fn field<'a>(value: &'a Value, snake_name: &str) -> &'a Value {
    if let Some(found) = value.get(snake_name) {
        return found;
    }
    let mut camel = String::new();
    let mut upper = false;
    for c in snake_name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            camel.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            camel.push(c);
        }
    }
    value.get(&camel).unwrap_or(&Value::Null)
}

/// The config directory and mesh file the control plane watches.
struct ConfigFiles {
    config: ConfigDir,
    mesh: ConfigDir,
    files: BTreeSet<String>,
}

impl ConfigFiles {
    fn new() -> Result<Self> {
        Ok(Self {
            config: ConfigDir::new()?,
            mesh: ConfigDir::new()?,
            files: BTreeSet::new(),
        })
    }

    fn mesh_file(&self) -> PathBuf {
        self.mesh.path().join(MESH_FILE)
    }

    /// Makes the directory hold exactly `scenario`'s files (removing first,
    /// so no two versions of one resource are ever served at once).
    fn apply(&mut self, scenario: &Scenario) -> Result<()> {
        let mesh = mesh_config(scenario.mesh);
        let mesh =
            fs::read_to_string(&mesh).with_context(|| format!("reading {}", mesh.display()))?;
        self.mesh.write(MESH_FILE, &mesh)?;
        let wanted: BTreeSet<String> = scenario
            .files
            .iter()
            .map(|(file, _)| file.to_string())
            .collect();
        for stale in self.files.difference(&wanted) {
            self.config.remove(stale)?;
        }
        for (file, yaml) in &scenario.files {
            self.config.write(file, yaml)?;
        }
        self.files = wanted;
        Ok(())
    }
}

/// Everything one kind's runs need: the sidecar in its namespace, the
/// external servers and DNS on the host end of the veth, and during a
/// gateway scenario the gateway. Fields drop in order, the namespace last.
struct Side {
    kind: Kind,
    gateway: Option<Proxy>,
    sidecar: Proxy,
    http: Upstream,
    https: Upstream,
    dns: DnsServer,
    xds: SocketAddr,
    netns: NetNs,
}

/// How far the records went before a run: what came after is its own.
struct Marks {
    http: usize,
    https: usize,
    hellos: usize,
    sidecar_log: usize,
}

impl Side {
    fn start(kind: Kind, xds_port: u16, ca: &TestCa) -> Result<Self> {
        let netns = NetNs::new()?;
        let host = netns.host_ip();
        let http = Upstream::http_on(SocketAddr::from((host, 80)))?;
        let https = Upstream::https_on(SocketAddr::from((host, 443)), ca, &EXTERNAL_NAMES)?;
        let dns = DnsServer::start_on(host, EXTERNAL_NAMES.map(|name| (name, host)))?;
        capture(&netns, xds_port)?;
        let xds = SocketAddr::from((host, xds_port));
        let sidecar = Proxy::sidecar(kind, &netns, xds, dns.addr())?;
        Ok(Self {
            kind,
            gateway: None,
            sidecar,
            http,
            https,
            dns,
            xds,
            netns,
        })
    }

    /// Waits for the scenario's config, starts its gateway if it has one,
    /// runs its request and reads what came of it; the gateway is gone
    /// afterwards.
    fn run(&mut self, scenario: &Scenario, ca_cert: &Path) -> Result<Outcome> {
        self.wait_ready(scenario, false)?;
        if scenario.gateway {
            let gateway =
                Proxy::gateway(self.kind, self.netns.host_ip(), self.xds, self.dns.addr())
                    .context("starting the egress gateway")?;
            self.gateway = Some(gateway);
            self.wait_ready(scenario, true)?;
        }
        let marks = Marks {
            http: self.http.requests().len(),
            https: self.https.requests().len(),
            hellos: self.https.tls_hellos().len(),
            sidecar_log: self.sidecar.access_log().len(),
        };
        let response = self.curl(&scenario.request, ca_cert).run()?;
        let outcome = self.outcome(&response, &marks);
        self.gateway = None;
        Ok(outcome)
    }

    /// Polls the sidecar's config dump until it shows the scenario's config
    /// (with `gateway`, also the gateway as the endpoint).
    fn wait_ready(&self, scenario: &Scenario, gateway: bool) -> Result<()> {
        let gateway_ip = self.netns.host_ip();
        eventually(CONVERGE, || {
            let view = self.sidecar.config()?;
            for ready in &scenario.ready {
                if gateway || !ready.needs_gateway() {
                    ready.check(&view, gateway_ip)?;
                }
            }
            Ok(())
        })
        .with_context(|| {
            format!(
                "the {} sidecar never took the config of {:?}\n{}",
                self.kind.name(),
                scenario.name,
                self.sidecar.logs()
            )
        })
    }

    /// The app's curl, inside the namespace (so it is captured), the URL's
    /// host resolved to the external servers.
    fn curl(&self, request: &Request, ca_cert: &Path) -> Curl {
        let (scheme, rest) = request
            .url
            .split_once("://")
            .unwrap_or(("http", request.url));
        let host = rest.split('/').next().unwrap_or(rest);
        let https = scheme == "https";
        let mut curl = Curl::get(request.url)
            .resolve(
                host,
                if https { 443 } else { 80 },
                IpAddr::V4(self.netns.host_ip()),
            )
            .in_netns(&self.netns);
        if https {
            curl = curl.cacert(ca_cert);
        }
        if request.head {
            curl = curl.arg("-I");
        }
        curl
    }

    /// `<code> <flags> -> <upstream>` for each access log line, the
    /// upstream being `external` (a server on port 80 or 443), `gateway`
    /// (the gateway's target ports) or `-` (none): fields that Envoy's
    /// default format and Istio's, the agent's, both have: the two after the
    /// quoted request line, and the last quoted address.
    fn log_summary(&self, lines: &[String]) -> String {
        if lines.is_empty() {
            return "none".to_string();
        }
        let host = IpAddr::V4(self.netns.host_ip());
        lines
            .iter()
            .map(|line| {
                let quoted: Vec<&str> = line.split('"').collect();
                let code_and_flags = quoted.get(2).copied().unwrap_or_default();
                let code_and_flags: Vec<&str> = code_and_flags.split_whitespace().take(2).collect();
                let upstream = quoted
                    .iter()
                    .skip(1)
                    .step_by(2)
                    .filter_map(|field| field.parse::<SocketAddr>().ok())
                    .next_back();
                let upstream = match upstream {
                    None => "-".to_string(),
                    Some(addr) if addr.ip() == host && [80, 443].contains(&addr.port()) => {
                        "external".to_string()
                    }
                    Some(addr) if addr.ip() == host => GATEWAY.to_string(),
                    Some(addr) => addr.to_string(),
                };
                format!("{} -> {upstream}", code_and_flags.join(" "))
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn outcome(&self, response: &CurlResponse, marks: &Marks) -> Outcome {
        let mut outcome = if response.exit_code == 0 {
            Outcome::http(response.status)
        } else {
            Outcome::curl_exit(response.exit_code)
        };
        if response.exit_code == 0 && response.status != 200 {
            outcome.error_body = format!("{:?}", response.body.trim());
        }
        if response.status == 200 {
            outcome.x_envoy = response
                .headers
                .iter()
                .map(|(name, _)| name.to_ascii_lowercase())
                .filter(|name| name.starts_with("x-envoy-"))
                .collect();
        }
        let requests: Vec<_> = self.http.requests()[marks.http..]
            .iter()
            .chain(&self.https.requests()[marks.https..])
            .cloned()
            .collect();
        let hellos = self.https.tls_hellos()[marks.hellos..].to_vec();
        if let Some(decorator) = requests
            .last()
            .and_then(|request| request.header(DECORATOR))
        {
            outcome.decorator = decorator.to_string();
        }
        if let Some(sni) = hellos.last().and_then(|hello| hello.sni.clone()) {
            outcome.sni = sni;
        }
        let peer = requests
            .last()
            .map(|request| request.peer)
            .or_else(|| hellos.last().map(|hello| hello.peer));
        if let Some(peer) = peer {
            outcome.peer = if peer.ip() == IpAddr::V4(self.netns.ns_ip()) {
                SIDECAR.to_string()
            } else if peer.ip() == IpAddr::V4(self.netns.host_ip()) {
                GATEWAY.to_string()
            } else {
                peer.to_string()
            };
        }
        outcome.sidecar_log = self.log_summary(&self.sidecar.access_log_after(marks.sidecar_log));
        if let Some(gateway) = &self.gateway {
            outcome.gateway_log = self.log_summary(&gateway.access_log_after(0));
        }
        outcome
    }
}

/// istio-init's capture in `netns`, by our `data-plane init`: outbound TCP
/// to 15001, except uid/gid 1337's and the control plane's port.
fn capture(netns: &NetNs, xds_port: u16) -> Result<()> {
    let mut command = netns.command(binaries::data_plane()?);
    command
        .args(["init", "--include-outbound-ip-ranges", "*"])
        .arg("--exclude-outbound-ports")
        .arg(xds_port.to_string())
        .arg("--proxy-uid")
        .arg(PROXY_UID.to_string())
        .arg("--proxy-gid")
        .arg(PROXY_UID.to_string());
    let output = process::run("data-plane-init", command, CONVERGE)?;
    output.ensure_success().context("data-plane init")?;
    Ok(())
}

/// The comparison table: a row per scenario and kind, and whether the
/// kinds agree (`same`) and match what Istio's tasks expect (`expected`).
fn table(rows: &[(&Scenario, Outcome, Outcome)]) -> String {
    let header = ["scenario", "proxy"]
        .into_iter()
        .chain(COLUMNS)
        .chain(["verdict"])
        .map(str::to_string)
        .collect();
    let mut lines: Vec<Vec<String>> = vec![header];
    for (scenario, agent, envoy) in rows {
        for (kind, outcome) in [(Kind::Agent, agent), (Kind::Envoy, envoy)] {
            let verdict = match (agent == envoy, outcome == &scenario.expected) {
                (true, true) => "same, expected",
                (true, false) => "same, UNEXPECTED",
                (false, true) => "DIFFERS, expected",
                (false, false) => "DIFFERS, UNEXPECTED",
            };
            let name = if kind == Kind::Agent {
                scenario.name
            } else {
                ""
            };
            let mut line = vec![name.to_string(), kind.name().to_string()];
            line.extend(outcome.columns());
            line.push(verdict.to_string());
            lines.push(line);
        }
    }
    let mut widths = vec![0; lines[0].len()];
    for line in &lines {
        for (width, cell) in widths.iter_mut().zip(line) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for line in &lines {
        let cells: Vec<String> = line
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:width$}"))
            .collect();
        let _ = writeln!(out, "{}", cells.join(" | ").trim_end());
    }
    out
}

/// Every field in which `outcome` differs from `reference`.
fn differences(outcome: &Outcome, reference: &Outcome) -> Vec<String> {
    outcome
        .columns()
        .iter()
        .zip(reference.columns())
        .zip(COLUMNS)
        .filter(|((got, wanted), _)| *got != wanted)
        .map(|((got, wanted), column)| format!("{column}: {got:?} vs {wanted:?}"))
        .collect()
}

#[test]
fn agent_and_envoy_agree_on_the_egress_tasks() -> Result<()> {
    if !netns::require_root("agent_and_envoy_agree_on_the_egress_tasks") {
        return Ok(());
    }
    let started = Instant::now();
    let ca = TestCa::new()?;
    let targets = GatewayPorts {
        http: free_port()?,
        https: free_port()?,
    };
    let scenarios = scenarios(targets, ca.cert_path());
    let mut config = ConfigFiles::new()?;
    config.apply(&scenarios[0])?;
    // On every address, so the proxies of both namespaces reach it at the
    // host end of their own veth.
    let control_plane = ControlPlane::start_on(
        config.config.path(),
        Some(&config.mesh_file()),
        IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    )?;
    let xds_port = control_plane.xds_addr().port();
    let mut agent = Side::start(Kind::Agent, xds_port, &ca)?;
    let mut envoy = Side::start(Kind::Envoy, xds_port, &ca)?;

    let mut rows = Vec::new();
    for scenario in &scenarios {
        config.apply(scenario)?;
        let agent_outcome = agent.run(scenario, ca.cert_path())?;
        let envoy_outcome = envoy.run(scenario, ca.cert_path())?;
        rows.push((scenario, agent_outcome, envoy_outcome));
    }
    println!("{}", table(&rows));
    println!("runtime: {:.1?}", started.elapsed());

    let mut failures = Vec::new();
    for (scenario, agent_outcome, envoy_outcome) in &rows {
        let differ = differences(agent_outcome, envoy_outcome);
        if !differ.is_empty() {
            failures.push(format!(
                "{}: agent and Envoy differ (agent vs envoy): {}",
                scenario.name,
                differ.join("; ")
            ));
        }
        for (kind, outcome) in [(Kind::Agent, agent_outcome), (Kind::Envoy, envoy_outcome)] {
            let unexpected = differences(outcome, &scenario.expected);
            if !unexpected.is_empty() {
                failures.push(format!(
                    "{}: {} is not as expected (got vs expected): {}",
                    scenario.name,
                    kind.name(),
                    unexpected.join("; ")
                ));
            }
        }
    }
    // A panic, so that every process prints its logs.
    assert!(
        failures.is_empty(),
        "{}\n\n{}",
        failures.join("\n"),
        table(&rows)
    );
    Ok(())
}
