//! TCP egress as istiod builds it: listeners per service address
//! (`<ip>_<port>`), CIDR ranges as destination matches on the wildcard
//! listener, VirtualService `tcp` routes, and a gateway's TCP server.
//! The docs' YAML (the MongoDB egress blog post, the http-proxy task) is
//! also compared with golden files under `tests/golden/tcp/`.

mod mutual_tls;
mod tls_addresses;
mod tls_source_match;

use std::path::Path;

use serde_json::{Value, json};

use super::super::Proxy;
use super::super::gateway_tcp::gateway_tcp_chain;
use super::super::registry::{GatewayRef, MeshView};
use crate::config::ConfigSnapshot;
use crate::config::load::load_str;
use crate::config::model::OutboundMode;
use crate::test_yaml::{MongoThroughGateway, external_service_entry};
pub(super) use crate::translate::test_proxies::egress_gateway;
use crate::translate::test_proxies::{served_json, sidecar_with};

/// The `sleep` sidecar, labelled `app: sleep`.
pub(super) fn sidecar() -> Proxy {
    sidecar_with(&[("app", "sleep")])
}

fn snapshot(yaml: &str, mode: OutboundMode) -> ConfigSnapshot {
    let mut snapshot =
        load_str(Path::new("cfg.yaml"), yaml).unwrap_or_else(|errors| panic!("loads: {errors}"));
    snapshot.mesh.outbound_traffic_policy.mode = mode;
    snapshot
}

/// Everything `proxy` is sent for `yaml`, as JSON.
pub(super) fn render(yaml: &str, mode: OutboundMode, proxy: &Proxy) -> Value {
    served_json(&snapshot(yaml, mode), &[], proxy)
}

/// The listeners `proxy` is sent for `yaml`, as JSON.
fn listeners(yaml: &str, mode: OutboundMode, proxy: &Proxy) -> Value {
    render(yaml, mode, proxy)["listeners"].clone()
}

pub(super) fn listener<'a>(listeners: &'a Value, name: &str) -> &'a Value {
    listeners
        .as_array()
        .and_then(|all| all.iter().find(|l| l["name"] == name))
        .unwrap_or_else(|| panic!("no listener {name} in {listeners:#}"))
}

pub(super) fn names(listeners: &Value) -> Vec<String> {
    listeners
        .as_array()
        .expect("listeners")
        .iter()
        .map(|l| l["name"].as_str().expect("name").to_string())
        .collect()
}

pub(super) fn cluster_of(chain: &Value) -> &Value {
    &chain["filters"][0]["typedConfig"]["cluster"]
}

pub(super) fn check_golden(name: &str, actual: &Value) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/tcp")
        .join(format!("{name}.json"));
    let rendered = serde_json::to_string_pretty(actual).expect("JSON renders") + "\n";
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().expect("golden dir")).expect("create golden dir");
        std::fs::write(&path, rendered).expect("write golden file");
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run with UPDATE_GOLDEN=1", path.display()));
    assert!(
        expected == rendered,
        "{} differs from the translation; run with UPDATE_GOLDEN=1 and review the diff",
        path.display()
    );
}

#[test]
fn a_single_address_cidr_is_a_listener_on_that_ip() {
    let all = listeners(
        &external_service_entry("mongo", "my-mongo.tcp.svc", "[10.0.0.5/32]", 27017, "TCP"),
        OutboundMode::RegistryOnly,
        &sidecar(),
    );
    assert_eq!(names(&all), ["10.0.0.5_27017", "virtualOutbound"]);
    let l = listener(&all, "10.0.0.5_27017");
    assert_eq!(l["address"]["socketAddress"]["address"], "10.0.0.5");
    assert_eq!(l["bindToPort"], false);
    assert_eq!(l["filterChains"].as_array().unwrap().len(), 1);
    assert_eq!(l["filterChains"][0].get("filterChainMatch"), None);
    assert_eq!(
        cluster_of(&l["filterChains"][0]),
        "outbound|27017||my-mongo.tcp.svc"
    );
    assert_eq!(l.get("defaultFilterChain"), None);
}

#[test]
fn a_cidr_range_is_a_prefix_match_on_the_wildcard_listener_and_the_rest_falls_through() {
    let all = listeners(
        &external_service_entry("db", "db.example.com", "[10.10.0.0/16]", 3306, "TCP"),
        OutboundMode::RegistryOnly,
        &sidecar(),
    );
    let l = listener(&all, "0.0.0.0_3306");
    assert_eq!(
        l["filterChains"][0]["filterChainMatch"]["prefixRanges"],
        json!([{"addressPrefix": "10.10.0.0", "prefixLen": 16}])
    );
    assert_eq!(
        cluster_of(&l["filterChains"][0]),
        "outbound|3306||db.example.com"
    );
    assert_eq!(l["defaultFilterChain"]["name"], "PassthroughFilterChain");
    assert_eq!(cluster_of(&l["defaultFilterChain"]), "BlackHoleCluster");
}

#[test]
fn two_tcp_services_on_one_port_are_told_apart_by_address() {
    let yaml = external_service_entry("db-a", "a.db.example", "[192.0.2.10]", 5432, "TCP")
        + &external_service_entry("db-b", "b.db.example", "[192.0.2.20/32]", 5432, "TCP")
        + &external_service_entry("db-c", "c.db.example", "[198.51.100.0/24]", 5432, "TCP")
        + &external_service_entry("db-any", "any.db.example", "[]", 5432, "TCP");
    let json = render(&yaml, OutboundMode::AllowAny, &sidecar());
    check_golden("databases-by-address/sidecar", &json);
    let all = json["listeners"].clone();
    assert_eq!(
        names(&all),
        [
            "0.0.0.0_5432",
            "192.0.2.10_5432",
            "192.0.2.20_5432",
            "virtualOutbound"
        ]
    );
    assert_eq!(
        cluster_of(&listener(&all, "192.0.2.10_5432")["filterChains"][0]),
        "outbound|5432||a.db.example"
    );
    assert_eq!(
        cluster_of(&listener(&all, "192.0.2.20_5432")["filterChains"][0]),
        "outbound|5432||b.db.example"
    );
    // The range is matched by prefix; the service without addresses takes
    // every other destination on the port, as the default chain.
    let wildcard = listener(&all, "0.0.0.0_5432");
    assert_eq!(
        cluster_of(&wildcard["filterChains"][0]),
        "outbound|5432||c.db.example"
    );
    assert_eq!(
        cluster_of(&wildcard["defaultFilterChain"]),
        "outbound|5432||any.db.example"
    );
}

#[test]
fn of_two_services_on_one_address_and_port_the_first_keeps_it() {
    let yaml = external_service_entry("db-a", "a.db.example", "[192.0.2.10]", 5432, "TCP")
        + &external_service_entry("db-b", "b.db.example", "[192.0.2.10]", 5432, "TCP");
    let all = listeners(&yaml, OutboundMode::AllowAny, &sidecar());
    let l = listener(&all, "192.0.2.10_5432");
    assert_eq!(l["filterChains"].as_array().unwrap().len(), 1);
    assert_eq!(
        cluster_of(&l["filterChains"][0]),
        "outbound|5432||a.db.example"
    );
}

const WEIGHTED: &str = "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: db-split
  namespace: default
spec:
  hosts: [a.db.example]
  tcp:
  - match:
    - port: 5432
      sourceLabels: {app: other}
    route:
    - destination: {host: b.db.example}
  - match:
    - port: 5432
    route:
    - destination: {host: a.db.example}
      weight: 80
    - destination: {host: b.db.example}
      weight: 20
";

#[test]
fn a_tcp_route_splits_by_weight_and_skips_matches_for_other_sources() {
    let yaml = external_service_entry("db-a", "a.db.example", "[192.0.2.10]", 5432, "TCP")
        + &external_service_entry("db-b", "b.db.example", "[192.0.2.20]", 5432, "TCP")
        + WEIGHTED;
    let all = listeners(&yaml, OutboundMode::AllowAny, &sidecar());
    let l = listener(&all, "192.0.2.10_5432");
    assert_eq!(l["filterChains"].as_array().unwrap().len(), 1);
    let proxy = &l["filterChains"][0]["filters"][0]["typedConfig"];
    assert_eq!(proxy["statPrefix"], "db-split.default");
    assert_eq!(l["filterChains"][0]["name"], "outbound|5432||a.db.example");
    assert_eq!(
        proxy["weightedClusters"]["clusters"],
        json!([
            {"name": "outbound|5432||a.db.example", "weight": 80},
            {"name": "outbound|5432||b.db.example", "weight": 20}
        ])
    );
    // The route applies to a.db.example only.
    assert_eq!(
        cluster_of(&listener(&all, "192.0.2.20_5432")["filterChains"][0]),
        "outbound|5432||b.db.example"
    );
}

/// The MongoDB egress blog post, "Direct TCP egress traffic through an
/// egress gateway", as published (with its variables filled in).
fn mongo_through_gateway() -> String {
    MongoThroughGateway {
        gateway_ports: &[
            "{number: 80, name: http, protocol: HTTP}",
            "{number: 7777, name: tcp, protocol: TCP}",
        ],
        hop: (7777, "tcp", "TCP"),
        server_tls: "",
        subset_policy: "",
    }
    .yaml()
}

#[test]
fn mongo_through_the_egress_gateway_sidecar_hop() {
    let json = render(
        &mongo_through_gateway(),
        OutboundMode::RegistryOnly,
        &sidecar(),
    );
    check_golden("mongo-through-gateway/sidecar", &json);
    let all = &json["listeners"];
    let l = listener(all, "203.0.113.7_27017");
    // The `mesh` route matches the address and goes to the gateway; the
    // service's own chain stays as the default, as istiod keeps it when
    // the subnets differ from the service's (none: it has its own listener).
    assert_eq!(
        l["filterChains"][0]["filterChainMatch"]["prefixRanges"],
        json!([{"addressPrefix": "203.0.113.7", "prefixLen": 32}])
    );
    assert_eq!(
        cluster_of(&l["filterChains"][0]),
        "outbound|7777|mongo|istio-egressgateway.istio-system.svc.cluster.local"
    );
    assert_eq!(
        cluster_of(&l["defaultFilterChain"]),
        "outbound|27017||my-mongo.tcp.svc"
    );
    // Both chains are named for the service they were built for, whatever
    // cluster they reach: the agent's explicit proxy finds them by it.
    assert_eq!(
        l["filterChains"][0]["name"],
        "outbound|27017||my-mongo.tcp.svc"
    );
    assert_eq!(
        l["defaultFilterChain"]["name"],
        "outbound|27017||my-mongo.tcp.svc"
    );
}

#[test]
fn mongo_through_the_egress_gateway_gateway_hop() {
    let json = render(
        &mongo_through_gateway(),
        OutboundMode::RegistryOnly,
        &egress_gateway(),
    );
    check_golden("mongo-through-gateway/gateway", &json);
    let l = listener(&json["listeners"], "0.0.0.0_7777");
    assert_eq!(l["filterChains"].as_array().unwrap().len(), 1);
    assert_eq!(l["filterChains"][0].get("filterChainMatch"), None);
    assert_eq!(
        cluster_of(&l["filterChains"][0]),
        "outbound|27017||my-mongo.tcp.svc"
    );
    // A MONGO server is served as TCP.
    let mongo = mongo_through_gateway().replace(
        "      name: tcp\n      protocol: TCP",
        "      name: mongo\n      protocol: MONGO",
    );
    assert_ne!(mongo, mongo_through_gateway());
    let json = render(&mongo, OutboundMode::RegistryOnly, &egress_gateway());
    assert_eq!(
        cluster_of(&listener(&json["listeners"], "0.0.0.0_7777")["filterChains"][0]),
        "outbound|27017||my-mongo.tcp.svc"
    );
}

#[test]
fn a_gateway_tcp_chain_needs_a_route_for_its_port_and_hosts() {
    let snapshot = snapshot(&mongo_through_gateway(), OutboundMode::RegistryOnly);
    let proxy = egress_gateway();
    let view = MeshView::new(&snapshot, &[], &proxy);
    let gateway = GatewayRef::Gateway {
        namespace: "default".to_string(),
        name: "istio-egressgateway".to_string(),
    };
    let chain = gateway_tcp_chain(&view, &gateway, 7777, |host, _| host == "my-mongo.tcp.svc")
        .expect("the gateway route applies on 7777");
    assert_eq!(chain.filter_chain_match, None);
    let json = proto::to_json("envoy.config.listener.v3.FilterChain", &chain).expect("JSON");
    assert_eq!(cluster_of(&json), "outbound|27017||my-mongo.tcp.svc");
    assert!(
        gateway_tcp_chain(&view, &gateway, 7778, |_, _| true).is_none(),
        "no route for another port"
    );
    assert!(
        gateway_tcp_chain(&view, &gateway, 7777, |_, _| false).is_none(),
        "no route for hosts the server does not admit"
    );
}

/// The http-proxy task's ServiceEntry for the corporate proxy, as published.
const HTTP_PROXY_TASK: &str = "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: proxy
spec:
  hosts:
  - my-company-proxy.com # ignored
  addresses:
  - 10.104.2.166/32
  ports:
  - number: 3128
    name: tcp
    protocol: TCP
  location: MESH_EXTERNAL
";

#[test]
fn the_http_proxy_task_gets_a_listener_on_the_proxy_address() {
    let json = render(HTTP_PROXY_TASK, OutboundMode::RegistryOnly, &sidecar());
    check_golden("http-proxy/sidecar", &json);
    let l = listener(&json["listeners"], "10.104.2.166_3128");
    assert_eq!(
        cluster_of(&l["filterChains"][0]),
        "outbound|3128||my-company-proxy.com"
    );
}
