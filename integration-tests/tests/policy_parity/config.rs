//! The Istio resources of the traffic-policy scenarios: each scenario's
//! service is its own host on port 80 whose STATIC endpoints are named
//! servers of the side (`${HOST}:${PORT_<name>}`), with the
//! DestinationRule and VirtualService the scenario is about, written as
//! JSON (which is YAML).

use integration_tests::policy::Ready;
use serde_json::{Value, json};

/// The Envoy cluster of `host`'s port 80.
pub fn cluster(host: &str) -> String {
    format!("outbound|80||{host}")
}

/// Ready once the sidecar has `host`'s `endpoints` on its side and a
/// virtual host for it on port 80.
pub fn ready(host: &str, endpoints: usize) -> Vec<Ready> {
    vec![
        Ready::endpoints(cluster(host), endpoints),
        Ready::has("80", host),
    ]
}

/// The resource name for `host`: its first label.
fn name(host: &str) -> &str {
    host.split('.').next().unwrap_or(host)
}

/// A MESH_EXTERNAL ServiceEntry for `host` on `port` (`protocol`), with
/// each of `servers` as a STATIC endpoint labelled `server: <name>`.
pub fn service(host: &str, port: u16, protocol: &str, servers: &[&str]) -> (String, String) {
    let endpoints: Vec<(&str, String)> = servers
        .iter()
        .map(|server| (*server, format!("${{PORT_{server}}}")))
        .collect();
    service_on_ports(host, port, protocol, &endpoints)
}

/// A MESH_EXTERNAL ServiceEntry for `host` on `port` (a number, or a
/// server's `${PORT_<name>}`; `protocol`) whose STATIC endpoints are the
/// side's host at each of `endpoints`' ports (the same), labelled
/// `server: <name>`.
pub fn service_on_ports(
    host: &str,
    port: impl std::fmt::Display,
    protocol: &str,
    endpoints: &[(&str, String)],
) -> (String, String) {
    let port_name = protocol.to_ascii_lowercase();
    let endpoints: String = endpoints
        .iter()
        .map(|(label, endpoint_port)| {
            format!(
                "  - address: ${{HOST}}\n    labels:\n      server: {label}\n    \
                 ports:\n      {port_name}: {endpoint_port}\n"
            )
        })
        .collect();
    let yaml = format!(
        "apiVersion: networking.istio.io/v1\n\
         kind: ServiceEntry\n\
         metadata:\n  name: {}\n\
         spec:\n\
         \x20 hosts:\n  - {host}\n\
         \x20 location: MESH_EXTERNAL\n\
         \x20 ports:\n  - number: {port}\n    name: {port_name}\n    protocol: {protocol}\n\
         \x20 resolution: STATIC\n\
         \x20 endpoints:\n{endpoints}",
        name(host)
    );
    (file("se", host), yaml)
}

/// An HTTP ServiceEntry for `host` on port 80 served by `servers`.
pub fn http_service(host: &str, servers: &[&str]) -> (String, String) {
    service(host, 80, "HTTP", servers)
}

/// A DestinationRule for `host` with a subset per server (named as the
/// server, selecting its `server` label).
pub fn server_subsets(host: &str, servers: &[&str]) -> (String, String) {
    let subsets: Vec<Value> = servers
        .iter()
        .map(|server| json!({ "name": server, "labels": { "server": server } }))
        .collect();
    resource(
        "subsets",
        host,
        "DestinationRule",
        json!({ "host": host, "subsets": subsets }),
    )
}

/// A DestinationRule for `host` with `traffic_policy`.
pub fn destination_rule(host: &str, traffic_policy: Value) -> (String, String) {
    resource(
        "dr",
        host,
        "DestinationRule",
        json!({ "host": host, "trafficPolicy": traffic_policy }),
    )
}

/// A VirtualService for `host` with the `http` routes.
pub fn virtual_service(host: &str, http: Value) -> (String, String) {
    resource(
        "vs",
        host,
        "VirtualService",
        json!({ "hosts": [host], "http": http }),
    )
}

/// A route of every request to `host`, with `fields` (timeout, retries,
/// headers, fault, ..) added.
pub fn route_to(host: &str, fields: Value) -> Value {
    let mut route = json!({ "route": [{ "destination": { "host": host } }] });
    if let (Some(route), Some(fields)) = (route.as_object_mut(), fields.as_object()) {
        route.extend(fields.clone());
    }
    route
}

/// An Istio resource of `kind` named for `host` with `spec`, in file
/// `<kind_prefix>-<host>.yaml`.
pub fn resource(kind_prefix: &str, host: &str, kind: &str, spec: Value) -> (String, String) {
    let resource = json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": kind,
        "metadata": { "name": name(host) },
        "spec": spec,
    });
    (
        file(kind_prefix, host),
        serde_json::to_string_pretty(&resource).unwrap_or_default(),
    )
}

/// `<prefix>-<host>.yaml`.
fn file(prefix: &str, host: &str) -> String {
    format!("{prefix}-{host}.yaml")
}
