//! Istio config the tests serve, written as Istio's egress tasks write it,
//! and the repository's example MeshConfig files.

use std::path::{Path, PathBuf};

/// Istio's "Access an external HTTP service" ServiceEntry.
pub const HTTPBIN_SERVICE_ENTRY: &str = "\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: httpbin-ext
spec:
  hosts:
  - httpbin.org
  ports:
  - number: 80
    name: http
    protocol: HTTP
  resolution: DNS
  location: MESH_EXTERNAL
";

/// Istio's TLS origination task's starting point, trimmed to its TLS port:
/// `edition.cnn.com:443` passed through by SNI.
pub const CNN_TLS_SERVICE_ENTRY: &str = "\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: edition-cnn-com
spec:
  hosts:
  - edition.cnn.com
  ports:
  - number: 443
    name: tls
    protocol: TLS
  resolution: DNS
";

/// The walkthrough's HTTP egress gateway config, on port `port`.
pub fn http_via_gateway(port: u16) -> String {
    format!(
        "apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata:
  name: cnn
spec:
  hosts: [edition.cnn.com]
  ports:
  - {{number: {port}, name: http-port, protocol: HTTP}}
  resolution: DNS
---
apiVersion: networking.istio.io/v1alpha3
kind: Gateway
metadata:
  name: istio-egressgateway
spec:
  selector:
    istio: egressgateway
  servers:
  - port: {{number: {port}, name: http, protocol: HTTP}}
    hosts: [edition.cnn.com]
---
apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata:
  name: egressgateway-for-cnn
spec:
  host: istio-egressgateway.istio-system.svc.cluster.local
  subsets:
  - name: cnn
---
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata:
  name: direct-cnn-through-egress-gateway
spec:
  hosts: [edition.cnn.com]
  gateways: [istio-egressgateway, mesh]
  http:
  - match:
    - gateways: [mesh]
      port: {port}
    route:
    - destination:
        host: istio-egressgateway.istio-system.svc.cluster.local
        subset: cnn
        port: {{number: {port}}}
      weight: 100
  - match:
    - gateways: [istio-egressgateway]
      port: {port}
    route:
    - destination:
        host: edition.cnn.com
        port: {{number: {port}}}
      weight: 100
"
    )
}

/// Istio's documented HTTPS (SNI passthrough) egress gateway config.
pub fn https_via_gateway(port: u16) -> String {
    format!(
        "apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata:
  name: cnn
spec:
  hosts: [edition.cnn.com]
  ports:
  - {{number: {port}, name: tls, protocol: TLS}}
  resolution: DNS
---
apiVersion: networking.istio.io/v1alpha3
kind: Gateway
metadata:
  name: istio-egressgateway
spec:
  selector:
    istio: egressgateway
  servers:
  - port: {{number: {port}, name: tls, protocol: TLS}}
    hosts: [edition.cnn.com]
    tls: {{mode: PASSTHROUGH}}
---
apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata:
  name: egressgateway-for-cnn
spec:
  host: istio-egressgateway.istio-system.svc.cluster.local
  subsets:
  - name: cnn
---
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata:
  name: direct-cnn-through-egress-gateway
spec:
  hosts: [edition.cnn.com]
  gateways: [mesh, istio-egressgateway]
  tls:
  - match:
    - {{gateways: [mesh], port: {port}, sniHosts: [edition.cnn.com]}}
    route:
    - destination: {{host: istio-egressgateway.istio-system.svc.cluster.local, subset: cnn, port: {{number: {port}}}}}
  - match:
    - {{gateways: [istio-egressgateway], port: {port}, sniHosts: [edition.cnn.com]}}
    route:
    - destination: {{host: edition.cnn.com, port: {{number: {port}}}}}
      weight: 100
"
    )
}

/// Istio's "egress gateway with TLS origination" task: the app sends plain
/// HTTP, the sidecar originates mutual TLS (ISTIO_MUTUAL, certificates
/// from the control plane's CA over SDS) to the gateway, and the gateway
/// originates TLS to the external server. `cnn_port` is the external
/// server's HTTPS port.
pub fn mutual_tls_via_gateway(cnn_port: u16, ca_cert: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata:
  name: cnn
spec:
  hosts: [edition.cnn.com]
  ports:
  - {{number: 80, name: http, protocol: HTTP}}
  - {{number: {cnn_port}, name: https, protocol: HTTPS}}
  resolution: DNS
---
apiVersion: networking.istio.io/v1alpha3
kind: Gateway
metadata:
  name: istio-egressgateway
spec:
  selector:
    istio: egressgateway
  servers:
  - port: {{number: 443, name: https, protocol: HTTPS}}
    hosts: [edition.cnn.com]
    tls: {{mode: ISTIO_MUTUAL}}
---
apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata:
  name: egressgateway-for-cnn
spec:
  host: istio-egressgateway.istio-system.svc.cluster.local
  subsets:
  - name: cnn
    trafficPolicy:
      loadBalancer:
        simple: ROUND_ROBIN
      portLevelSettings:
      - port:
          number: 443
        tls:
          mode: ISTIO_MUTUAL
          sni: edition.cnn.com
---
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata:
  name: direct-cnn-through-egress-gateway
spec:
  hosts: [edition.cnn.com]
  gateways: [istio-egressgateway, mesh]
  http:
  - match:
    - gateways: [mesh]
      port: 80
    route:
    - destination:
        host: istio-egressgateway.istio-system.svc.cluster.local
        subset: cnn
        port: {{number: 443}}
      weight: 100
  - match:
    - gateways: [istio-egressgateway]
      port: 443
    route:
    - destination:
        host: edition.cnn.com
        port: {{number: {cnn_port}}}
      weight: 100
---
apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata:
  name: originate-tls-for-edition-cnn-com
spec:
  host: edition.cnn.com
  trafficPolicy:
    loadBalancer:
      simple: ROUND_ROBIN
    portLevelSettings:
    - port:
        number: {cnn_port}
      tls:
        mode: SIMPLE
        caCertificates: {ca_cert}
"
    )
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
