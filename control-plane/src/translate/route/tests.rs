//! Sidecar route configurations as istiod builds them: a mesh VirtualService's hosts that name no HTTP service of a port get virtual hosts on port 80.

use std::path::Path;

use serde_json::Value;
use shared::type_url;

use crate::config::load::load_str;
use crate::translate::test_proxies::sidecar_with;
use crate::translate::{Proxy, to_json, translate};

fn sidecar() -> Proxy {
    sidecar_with(&[])
}

/// my-nginx speaks TLS on 443 only; api and app speak HTTP on 80 and 8080,
/// so the sidecar has routes `80` and `8080`. The VirtualService sends
/// my-nginx's port-80 requests to the egress gateway.
const CONFIG: &str = "\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: my-nginx, namespace: mesh-external}
spec:
  hosts: [my-nginx.mesh-external.svc.cluster.local]
  ports: [{number: 443, name: tls, protocol: TLS}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api}
spec:
  hosts: [api.example.com]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: app}
spec:
  hosts: [app.example.com]
  ports: [{number: 8080, name: http, protocol: HTTP}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: direct-nginx}
spec:
  hosts: [my-nginx.mesh-external.svc.cluster.local]
  gateways: [mesh]
  http:
  - match:
    - {port: 80}
    route:
    - destination: {host: api.example.com, port: {number: 80}}
";

/// The virtual hosts of the sidecar's route `name`.
fn virtual_hosts(name: &str) -> Vec<Value> {
    let snapshot = load_str(Path::new("routes.yaml"), CONFIG).expect("loads");
    let resources = translate(&snapshot, &[], &sidecar()).into_typed();
    let json = to_json(&resources, &[type_url::ROUTE]).expect("converts");
    let route = json["routes"]
        .as_array()
        .expect("routes")
        .iter()
        .find(|route| route["name"] == name)
        .unwrap_or_else(|| panic!("route {name}"))
        .clone();
    route["virtualHosts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn named<'v>(hosts: &'v [Value], name: &str) -> Option<&'v Value> {
    hosts.iter().find(|host| host["name"] == name)
}

#[test]
fn a_virtual_service_host_without_an_http_service_gets_a_port_80_virtual_host() {
    let hosts = virtual_hosts("80");
    let nginx = named(&hosts, "my-nginx.mesh-external.svc.cluster.local:80")
        .unwrap_or_else(|| panic!("no my-nginx virtual host in {hosts:?}"));
    assert_eq!(
        nginx["domains"],
        serde_json::json!([
            "my-nginx.mesh-external.svc.cluster.local",
            "my-nginx.mesh-external.svc.cluster.local:80"
        ])
    );
    assert_eq!(
        nginx["routes"][0]["route"]["cluster"],
        "outbound|80||api.example.com"
    );
    assert!(named(&hosts, "api.example.com:80").is_some(), "{hosts:?}");
}

#[test]
fn other_ports_get_no_virtual_host_for_it() {
    let hosts = virtual_hosts("8080");
    let names: Vec<&str> = hosts.iter().filter_map(|h| h["name"].as_str()).collect();
    assert_eq!(names, ["app.example.com:8080", "allow_any"]);
}
