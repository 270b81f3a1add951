//! YAML fixtures the unit tests share: mesh-external ServiceEntries, the egress gateway's service and the MongoDB egress blog post's resources; a config checked from YAML documents, and labels from pairs.

use std::path::Path;

use crate::config::ConfigSnapshot;
use crate::config::load::load_str;
use crate::config::model::Labels;

/// The config of YAML `documents`, loaded and checked, every resource valid.
pub(crate) fn checked_config(documents: &[&str]) -> ConfigSnapshot {
    let snapshot = load_str(Path::new("cfg.yaml"), &documents.join("---\n"))
        .unwrap_or_else(|errors| panic!("loads: {errors}"));
    let checked = crate::config::check(snapshot);
    assert!(checked.errors.is_empty(), "{:?}", checked.errors);
    checked.snapshot
}

/// Labels of `(key, value)` pairs.
pub(crate) fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A MESH_EXTERNAL ServiceEntry `default/<name>` for `host` at `addresses`
/// (a YAML flow list) with one port of `protocol`, resolution NONE; ends
/// with a document separator.
pub(crate) fn external_service_entry(
    name: &str,
    host: &str,
    addresses: &str,
    port: u32,
    protocol: &str,
) -> String {
    let port_name = protocol.to_lowercase();
    format!(
        "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: {name}
  namespace: default
spec:
  hosts: [{host}]
  addresses: {addresses}
  ports:
  - {{number: {port}, name: {port_name}, protocol: {protocol}}}
  location: MESH_EXTERNAL
  resolution: NONE
---
"
    )
}

/// The egress gateway's own ServiceEntry, selecting the pods labelled
/// `istio: egressgateway`, with `ports` (YAML flow mappings, one a line).
pub(crate) fn egress_gateway_service(ports: &[&str]) -> String {
    let ports: String = ports.iter().map(|p| format!("  - {p}\n")).collect();
    format!(
        "apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata:
  name: istio-egressgateway
  namespace: istio-system
spec:
  hosts: [istio-egressgateway.istio-system.svc.cluster.local]
  location: MESH_INTERNAL
  ports:
{ports}  resolution: STATIC
  workloadSelector:
    labels: {{istio: egressgateway}}
"
    )
}

/// The MongoDB egress blog post's resources (its variables filled in): the
/// database at 203.0.113.7:27017, the egress gateway's service, Gateway
/// and DestinationRules, and the VirtualService sending the database's
/// tcp traffic through the gateway on one port.
pub(crate) struct MongoThroughGateway<'a> {
    /// The egress gateway service's ports.
    pub gateway_ports: &'a [&'a str],
    /// The gateway server's port number, name and protocol.
    pub hop: (u32, &'a str, &'a str),
    /// The gateway server's `tls:` block (indented four spaces), or "".
    pub server_tls: &'a str,
    /// The `mongo` subset's `trafficPolicy:` block (indented four
    /// spaces), or "".
    pub subset_policy: &'a str,
}

impl MongoThroughGateway<'_> {
    /// The resources as one YAML stream.
    pub(crate) fn yaml(&self) -> String {
        let (hop, hop_name, hop_protocol) = self.hop;
        let (server_tls, subset_policy) = (self.server_tls, self.subset_policy);
        let gateway_service = egress_gateway_service(self.gateway_ports);
        format!(
            "apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata:
  name: mongo
spec:
  hosts:
  - my-mongo.tcp.svc
  addresses:
  - 203.0.113.7/32
  ports:
  - number: 27017
    name: tcp
    protocol: TCP
  location: MESH_EXTERNAL
  resolution: STATIC
  endpoints:
  - address: 203.0.113.7
---
{gateway_service}---
apiVersion: networking.istio.io/v1alpha3
kind: Gateway
metadata:
  name: istio-egressgateway
spec:
  selector:
    istio: egressgateway
  servers:
  - port:
      number: {hop}
      name: {hop_name}
      protocol: {hop_protocol}
    hosts:
    - my-mongo.tcp.svc
{server_tls}---
apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata:
  name: egressgateway-for-mongo
spec:
  host: istio-egressgateway.istio-system.svc.cluster.local
  subsets:
  - name: mongo
{subset_policy}---
apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata:
  name: mongo
spec:
  host: my-mongo.tcp.svc
---
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata:
  name: direct-mongo-through-egress-gateway
spec:
  hosts:
  - my-mongo.tcp.svc
  gateways:
  - mesh
  - istio-egressgateway
  tcp:
  - match:
    - gateways:
      - mesh
      destinationSubnets:
      - 203.0.113.7/32
      port: 27017
    route:
    - destination:
        host: istio-egressgateway.istio-system.svc.cluster.local
        subset: mongo
        port:
          number: {hop}
  - match:
    - gateways:
      - istio-egressgateway
      port: {hop}
    route:
    - destination:
        host: my-mongo.tcp.svc
        port:
          number: 27017
      weight: 100
"
        )
    }
}
