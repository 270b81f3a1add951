//! Istio config the tests serve, written as Istio's egress tasks write it:
//! the YAML files of `integration-tests/fixtures/` (some with `${NAME}`
//! placeholders for ports and paths), the repository's examples, and its
//! example MeshConfig files.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use serde_yaml::{Mapping, Value};
use shared::access_log::ISTIO_TEXT_FORMAT;

/// Istio's "Access an external HTTP service" ServiceEntry.
pub const HTTPBIN_SERVICE_ENTRY: &str = include_str!("../fixtures/httpbin-serviceentry.yaml");

/// Istio's TLS origination task's starting point, trimmed to its TLS port:
/// `edition.cnn.com:443` passed through by SNI.
pub const CNN_TLS_SERVICE_ENTRY: &str = include_str!("../fixtures/cnn-tls-serviceentry.yaml");

/// Istio's "access an external HTTPS service" ServiceEntry for
/// `www.baidu.com`, as the examples have it.
pub const BAIDU_SERVICE_ENTRY: &str = include_str!("../../examples/mesh/baidu.yaml");

/// Istio's route timeout for httpbin.org, shortened from 3s to 1s.
pub const HTTPBIN_TIMEOUT: &str = include_str!("../fixtures/httpbin-timeout.yaml");

/// The egress gateway's Kubernetes Service as Istio's install creates it
/// (`examples/kubernetes/istio-egressgateway-service.yaml`).
pub const ISTIO_EGRESS_GATEWAY_SERVICE: &str =
    include_str!("../../examples/kubernetes/istio-egressgateway-service.yaml");

/// The egress gateway's in-mesh service as the examples have it; tests
/// take it with their own ports ([`egress_gateway_service`]).
const EGRESS_GATEWAY_SERVICE: &str = include_str!("../../examples/mesh/egressgateway-service.yaml");

const CNN_TLS_ORIGINATION: &str = include_str!("../fixtures/cnn-tls-origination.yaml");
const CNN_VIA_GATEWAY_HTTP: &str = include_str!("../fixtures/cnn-via-gateway-http.yaml");
const CNN_VIA_GATEWAY_TLS: &str = include_str!("../fixtures/cnn-via-gateway-tls.yaml");
const CNN_VIA_GATEWAY_MUTUAL_TLS: &str =
    include_str!("../fixtures/cnn-via-gateway-mutual-tls.yaml");

/// Istio's TLS origination task for edition.cnn.com, the DestinationRule
/// trusting `ca_cert` (`caCertificates`) so the origination can verify the
/// external server.
pub fn tls_origination(ca_cert: &Path) -> String {
    render(
        CNN_TLS_ORIGINATION,
        &[("CA_CERT", ca_cert.display().to_string())],
    )
}

/// The walkthrough's HTTP egress gateway config, on port `port`.
pub fn http_via_gateway(port: u16) -> String {
    render(CNN_VIA_GATEWAY_HTTP, &[("PORT", port.to_string())])
}

/// Istio's documented HTTPS (SNI passthrough) egress gateway config.
pub fn https_via_gateway(port: u16) -> String {
    render(CNN_VIA_GATEWAY_TLS, &[("PORT", port.to_string())])
}

/// Istio's "egress gateway with TLS origination" task: the app sends plain
/// HTTP, the sidecar originates mutual TLS (ISTIO_MUTUAL, certificates
/// from the control plane's CA over SDS) to the gateway, and the gateway
/// originates TLS to the external server. `cnn_port` is the external
/// server's HTTPS port.
pub fn mutual_tls_via_gateway(cnn_port: u16, ca_cert: &str) -> String {
    render(
        CNN_VIA_GATEWAY_MUTUAL_TLS,
        &[
            ("CNN_PORT", cnn_port.to_string()),
            ("CA_CERT", ca_cert.to_string()),
        ],
    )
}

/// `template` with each `${NAME}` replaced by its value.
fn render(template: &str, values: &[(&str, String)]) -> String {
    values
        .iter()
        .fold(template.to_string(), |yaml, (name, value)| {
            yaml.replace(&format!("${{{name}}}"), value)
        })
}

/// A port of the egress gateway's in-mesh service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatewayPort {
    pub number: u16,
    /// `HTTP`, `HTTPS` or `TLS`; in lower case, the port's name.
    pub protocol: &'static str,
    /// Where the gateway listens for it; `number` itself when `None`.
    pub target_port: Option<u16>,
}

impl GatewayPort {
    pub fn new(number: u16, protocol: &'static str) -> Self {
        Self {
            number,
            protocol,
            target_port: None,
        }
    }

    /// The gateway listens for this port on `target_port`.
    pub fn target(self, target_port: u16) -> Self {
        Self {
            target_port: Some(target_port),
            ..self
        }
    }

    fn to_yaml(self) -> Value {
        let mut port = Mapping::new();
        port.insert("number".into(), self.number.into());
        port.insert("name".into(), self.protocol.to_ascii_lowercase().into());
        port.insert("protocol".into(), self.protocol.into());
        if let Some(target_port) = self.target_port {
            port.insert("targetPort".into(), target_port.into());
        }
        Value::Mapping(port)
    }
}

/// The egress gateway as an installed Istio declares it
/// (`examples/mesh/egressgateway-service.yaml`): an in-mesh service whose
/// endpoints are the connected proxies labelled istio=egressgateway, here
/// with `ports` for its ports.
pub fn egress_gateway_service(ports: &[GatewayPort]) -> Result<String> {
    let mut service: Value = serde_yaml::from_str(EGRESS_GATEWAY_SERVICE)
        .context("parsing the example egress gateway service")?;
    let spec = service
        .get_mut("spec")
        .and_then(Value::as_mapping_mut)
        .context("the example egress gateway service has no spec")?;
    ensure!(
        spec.contains_key("ports"),
        "the example egress gateway service has no ports"
    );
    spec.insert(
        "ports".into(),
        Value::Sequence(ports.iter().map(|port| port.to_yaml()).collect()),
    );
    serde_yaml::to_string(&service).context("writing the egress gateway service")
}

/// A MeshConfig of `REGISTRY_ONLY` whose access log line is Istio's with
/// the client's identity as the proxy saw it appended
/// (`%DOWNSTREAM_PEER_URI_SAN%`, `-` for a client without a certificate).
pub fn peer_identity_mesh_config() -> Result<String> {
    let format = format!(
        "{} %DOWNSTREAM_PEER_URI_SAN%\n",
        ISTIO_TEXT_FORMAT.trim_end_matches('\n')
    );
    let mut policy = Mapping::new();
    policy.insert("mode".into(), "REGISTRY_ONLY".into());
    let mut mesh = Mapping::new();
    mesh.insert("outboundTrafficPolicy".into(), Value::Mapping(policy));
    mesh.insert("accessLogFile".into(), "/dev/stdout".into());
    mesh.insert("accessLogFormat".into(), format.into());
    serde_yaml::to_string(&mesh).context("writing the mesh config")
}

/// `examples/mesh-config/<name>.yaml` (`allow-any`, `registry-only`).
pub fn mesh_config(name: &str) -> PathBuf {
    repo_root()
        .join("examples/mesh-config")
        .join(format!("{name}.yaml"))
}

/// `examples/mesh`: the egress walkthrough's config as one directory.
pub fn example_mesh() -> PathBuf {
    repo_root().join("examples/mesh")
}

fn repo_root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// `count` TLS hosts on port 443 (`host-<i>.example.com`), one ServiceEntry
/// each, as a mesh that lists its external services one by one has them
/// (resolution NONE: the agent resolves nothing for them).
pub fn many_tls_hosts(count: usize) -> String {
    let mut yaml = String::with_capacity(count * 300);
    for i in 0..count {
        let _ = write!(
            yaml,
            "---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\n\
             metadata:\n  name: host-{i}\n  namespace: default\n\
             spec:\n  hosts:\n  - host-{i}.example.com\n  ports:\n  \
             - number: 443\n    name: tls\n    protocol: TLS\n  \
             resolution: NONE\n  location: MESH_EXTERNAL\n"
        );
    }
    yaml
}

/// A ServiceEntry `name` for `host` on HTTP port 80, resolved by DNS.
pub fn http_dns_service_entry(name: &str, host: &str) -> String {
    dns_service_entry(name, host, 80, "HTTP")
}

/// A ServiceEntry `name` for `host` on port `port` of `protocol` (`HTTP`,
/// `TLS`, ...), resolved by DNS.
pub fn dns_service_entry(name: &str, host: &str, port: u16, protocol: &str) -> String {
    let port_name = protocol.to_ascii_lowercase();
    format!(
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n\
         metadata:\n  name: {name}\n  namespace: default\n\
         spec:\n  hosts:\n  - {host}\n  ports:\n  \
         - number: {port}\n    name: {port_name}\n    protocol: {protocol}\n  \
         resolution: DNS\n  location: MESH_EXTERNAL\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_have_every_placeholder_filled() {
        let ca = Path::new("/tmp/ca.pem");
        for yaml in [
            tls_origination(ca),
            http_via_gateway(80),
            https_via_gateway(443),
            mutual_tls_via_gateway(8443, "/tmp/ca.pem"),
        ] {
            assert!(!yaml.contains("${"), "{yaml}");
            for document in yaml.split("\n---\n") {
                serde_yaml::from_str::<Value>(document)
                    .unwrap_or_else(|error| panic!("{error}: {document}"));
            }
        }
        let mutual = mutual_tls_via_gateway(8443, "/tmp/ca.pem");
        assert!(mutual.contains("number: 8443"), "{mutual}");
        assert!(mutual.contains("caCertificates: /tmp/ca.pem"), "{mutual}");
    }

    #[test]
    fn the_egress_gateway_service_takes_the_given_ports() {
        let yaml = egress_gateway_service(&[
            GatewayPort::new(80, "HTTP").target(8080),
            GatewayPort::new(443, "TLS"),
        ])
        .unwrap();
        let service: Value = serde_yaml::from_str(&yaml).unwrap();
        let expected: Value = serde_yaml::from_str(
            "[{number: 80, name: http, protocol: HTTP, targetPort: 8080},
              {number: 443, name: tls, protocol: TLS}]",
        )
        .unwrap();
        assert_eq!(service["spec"]["ports"], expected);
        assert_eq!(service["metadata"]["name"], "istio-egressgateway");
        assert_eq!(service["metadata"]["namespace"], "istio-system");
        assert_eq!(service["spec"]["location"], "MESH_INTERNAL");
        assert_eq!(service["spec"]["resolution"], "STATIC");
        assert_eq!(
            service["spec"]["workloadSelector"]["labels"]["istio"],
            "egressgateway"
        );
    }
}
