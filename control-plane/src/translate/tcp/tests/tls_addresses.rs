//! TLS services with `addresses`, as istiod builds their sidecar listeners:
//! one per address (`<ip>_<port>`, the service's chain taking every
//! connection, or its `tls` routes by SNI), a range as a destination match
//! with the host's SNI on the wildcard listener, beside the SNI chains of
//! TLS services without addresses.

use serde_json::json;

use crate::config::model::OutboundMode;
use crate::test_yaml::external_service_entry;

use super::{check_golden, cluster_of, listener, names, render, sidecar};

/// A MESH_EXTERNAL TLS service on port 443.
fn tls_entry(name: &str, host: &str, addresses: &str) -> String {
    external_service_entry(name, host, addresses, 443, "TLS")
}

/// One service per kind of address on port 443: an IP, a range, none.
fn three_services() -> String {
    [
        tls_entry("by-ip", "db.example.com", "[10.0.0.7]"),
        tls_entry("by-range", "ledger.example.com", "[10.1.0.0/16]"),
        tls_entry("no-address", "api.example.com", "[]"),
    ]
    .concat()
}

#[test]
fn each_address_gets_a_listener_and_ranges_share_the_wildcard() {
    let json = render(&three_services(), OutboundMode::RegistryOnly, &sidecar());
    check_golden("tls-with-addresses/sidecar", &json);
    let all = &json["listeners"];
    assert_eq!(
        names(all),
        ["0.0.0.0_443", "10.0.0.7_443", "virtualOutbound"]
    );

    // Bound to its address: one chain, no SNI needed to tell it apart.
    let by_ip = listener(all, "10.0.0.7_443");
    assert_eq!(by_ip["address"]["socketAddress"]["address"], "10.0.0.7");
    assert_eq!(by_ip["filterChains"].as_array().unwrap().len(), 1);
    assert_eq!(by_ip["filterChains"][0].get("filterChainMatch"), None);
    assert_eq!(by_ip.get("listenerFilters"), None);
    assert_eq!(
        cluster_of(&by_ip["filterChains"][0]),
        "outbound|443||db.example.com"
    );
    // Named for its service, as a plain TCP service's chain: the explicit
    // proxy's CONNECT to the host finds it by that name.
    assert_eq!(
        by_ip["filterChains"][0]["name"],
        "outbound|443||db.example.com"
    );

    // On the wildcard: the unaddressed host by SNI, the range by SNI and
    // destination prefix; anything else falls through.
    let wildcard = listener(all, "0.0.0.0_443");
    let chains = wildcard["filterChains"].as_array().unwrap();
    let chain_for = |host: &str| {
        chains
            .iter()
            .find(|c| c["filterChainMatch"]["serverNames"] == json!([host]))
            .unwrap_or_else(|| panic!("no chain for {host} in {wildcard:#}"))
    };
    assert_eq!(
        cluster_of(chain_for("api.example.com")),
        "outbound|443||api.example.com"
    );
    assert_eq!(
        chain_for("api.example.com")["filterChainMatch"].get("prefixRanges"),
        None
    );
    let ledger = chain_for("ledger.example.com");
    assert_eq!(
        ledger["filterChainMatch"]["prefixRanges"],
        json!([{"addressPrefix": "10.1.0.0", "prefixLen": 16}])
    );
    assert_eq!(cluster_of(ledger), "outbound|443||ledger.example.com");
    assert!(
        !chains
            .iter()
            .any(|c| c["filterChainMatch"]["serverNames"] == json!(["db.example.com"])),
        "the addressed service is not on the wildcard"
    );
    assert_eq!(
        cluster_of(&wildcard["defaultFilterChain"]),
        "BlackHoleCluster"
    );
}

#[test]
fn a_tls_route_for_an_addressed_host_matches_by_sni_on_its_listener() {
    let yaml = tls_entry("by-ip", "db.example.com", "[10.0.0.7]")
        + &tls_entry("replica", "replica.example.com", "[10.0.0.8]")
        + "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: db
  namespace: default
spec:
  hosts: [db.example.com]
  tls:
  - match:
    - port: 443
      sniHosts: [db.example.com]
    route:
    - destination:
        host: replica.example.com
        port: {number: 443}
";
    let json = render(&yaml, OutboundMode::AllowAny, &sidecar());
    let all = &json["listeners"];
    assert_eq!(
        names(all),
        ["10.0.0.7_443", "10.0.0.8_443", "virtualOutbound"]
    );
    let db = listener(all, "10.0.0.7_443");
    assert_eq!(db["filterChains"].as_array().unwrap().len(), 1);
    let chain = &db["filterChains"][0];
    assert_eq!(
        chain["filterChainMatch"]["serverNames"],
        json!(["db.example.com"])
    );
    assert_eq!(cluster_of(chain), "outbound|443||replica.example.com");
    assert_eq!(
        db["listenerFilters"][0]["name"],
        "envoy.filters.listener.tls_inspector"
    );
    assert_eq!(cluster_of(&db["defaultFilterChain"]), "PassthroughCluster");
    // The route's host is not the replica's: its listener keeps its own chain.
    let replica = listener(all, "10.0.0.8_443");
    assert_eq!(
        cluster_of(&replica["filterChains"][0]),
        "outbound|443||replica.example.com"
    );
}

#[test]
fn an_http_service_on_the_port_leaves_the_addressed_listener_alone() {
    let yaml = tls_entry("by-ip", "db.example.com", "[10.0.0.7]")
        + "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: web
  namespace: default
spec:
  hosts: [web.example.com]
  ports:
  - {number: 443, name: http, protocol: HTTP}
  location: MESH_EXTERNAL
  resolution: DNS
";
    let json = render(&yaml, OutboundMode::RegistryOnly, &sidecar());
    assert_eq!(
        names(&json["listeners"]),
        ["0.0.0.0_443", "10.0.0.7_443", "virtualOutbound"]
    );
    let db = listener(&json["listeners"], "10.0.0.7_443");
    assert_eq!(
        cluster_of(&db["filterChains"][0]),
        "outbound|443||db.example.com"
    );
}
