//! Hash policies as istiod puts them on routes and TCP proxies: from the
//! consistent hash of the destination's DestinationRule (subset and
//! port-level settings first), on the default route of a service without
//! VirtualService, on each weighted destination; source-IP hashing, the
//! idle timeout and the connection duration on TCP proxies.

use std::path::Path;

use serde_json::{Value, json};
use shared::type_url;

use crate::config::load::load_str;
use crate::translate::test_proxies::sidecar_with;
use crate::translate::{to_json, translate};

/// api.example.com (HTTP 80, TCP 3306) and its DestinationRule, whose spec
/// goes on with `rule`; then `more` documents.
fn served(rule: &str, more: &str) -> Value {
    let text = format!(
        "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: api}}
spec:
  hosts: [api.example.com]
  location: MESH_EXTERNAL
  ports:
  - {{number: 80, name: http, protocol: HTTP}}
  - {{number: 3306, name: tcp, protocol: TCP}}
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: api}}
spec:
  host: api.example.com
{rule}{more}"
    );
    let snapshot = load_str(Path::new("api.yaml"), &text).expect("loads");
    let resources = translate(&snapshot, &[], &sidecar_with(&[])).into_typed();
    to_json(&resources, &[type_url::ROUTE, type_url::LISTENER]).expect("converts")
}

/// The route action of the first route of virtual host api.example.com:80.
fn action(served: &Value) -> Value {
    let config = served["routes"]
        .as_array()
        .expect("routes")
        .iter()
        .find(|r| r["name"] == "80")
        .expect("route 80");
    let host = config["virtualHosts"]
        .as_array()
        .expect("virtual hosts")
        .iter()
        .find(|h| h["name"] == "api.example.com:80")
        .expect("the service's virtual host");
    host["routes"][0]["route"].clone()
}

/// The TCP proxy of the chain for api.example.com:3306.
fn tcp_proxy(served: &Value) -> Value {
    let text = served["listeners"].to_string();
    let listeners: Value = serde_json::from_str(&text).expect("json");
    listeners
        .as_array()
        .expect("listeners")
        .iter()
        .flat_map(|l| l["filterChains"].as_array().cloned().unwrap_or_default())
        .find(|chain| chain["name"] == "outbound|3306||api.example.com")
        .map(|chain| chain["filters"][0]["typedConfig"].clone())
        .expect("the service's TCP chain")
}

const VS: &str = "---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api}
spec:
  hosts: [api.example.com]
  http:
  - route:
    - destination: {host: api.example.com, port: {number: 80}, subset: v1}
";

#[test]
fn each_hash_key_becomes_its_envoy_hash_policy_on_the_default_route() {
    for (key, policy) in [
        (
            "{httpHeaderName: x-user}",
            json!({"header": {"headerName": "x-user"}}),
        ),
        (
            "{httpCookie: {name: user, path: /, ttl: 60s}}",
            json!({"cookie": {"name": "user", "path": "/", "ttl": "60s"}}),
        ),
        (
            "{httpCookie: {name: user, ttl: 0s}}",
            json!({"cookie": {"name": "user", "ttl": "0s"}}),
        ),
        (
            "{useSourceIp: true}",
            json!({"connectionProperties": {"sourceIp": true}}),
        ),
        (
            "{httpQueryParameterName: u}",
            json!({"queryParameter": {"name": "u"}}),
        ),
    ] {
        let rule = format!("  trafficPolicy:\n    loadBalancer:\n      consistentHash: {key}\n");
        assert_eq!(
            action(&served(&rule, ""))["hashPolicy"],
            json!([policy]),
            "{key}"
        );
    }
    // No key: a ring hash cluster, and no hash policy (Envoy picks at random).
    let rule = "  trafficPolicy:\n    loadBalancer:\n      consistentHash: {ringHash: {}}\n";
    assert!(action(&served(rule, "")).get("hashPolicy").is_none());
}

#[test]
fn the_default_route_takes_the_port_level_hash_first() {
    let rule = "  trafficPolicy:\n    loadBalancer:\n      consistentHash: {httpHeaderName: top}\n    portLevelSettings:\n    - port: {number: 80}\n      loadBalancer:\n        consistentHash: {httpHeaderName: port}\n";
    assert_eq!(
        action(&served(rule, ""))["hashPolicy"],
        json!([{"header": {"headerName": "port"}}])
    );
    // The default route keeps Istio's default retry policy with its
    // previous-hosts predicate.
    assert!(action(&served(rule, ""))["retryPolicy"]["retryHostPredicate"].is_array());
}

#[test]
fn a_virtual_service_destination_takes_the_subset_port_level_hash_first() {
    let layers = [
        (
            "top",
            "  trafficPolicy:\n    loadBalancer: {consistentHash: {httpHeaderName: top}}\n",
        ),
        (
            "top-port",
            "    portLevelSettings:\n    - port: {number: 80}\n      loadBalancer: {consistentHash: {httpHeaderName: top-port}}\n",
        ),
        (
            "subset",
            "  subsets:\n  - name: v1\n    trafficPolicy:\n      loadBalancer: {consistentHash: {httpHeaderName: subset}}\n",
        ),
        (
            "subset-port",
            "      portLevelSettings:\n      - port: {number: 80}\n        loadBalancer: {consistentHash: {httpHeaderName: subset-port}}\n",
        ),
    ];
    let mut rule = String::new();
    for (expected, layer) in layers {
        rule.push_str(layer);
        let subset = if rule.contains("subsets:") {
            String::new()
        } else {
            "  subsets:\n  - {name: v1}\n".to_string()
        };
        let action = action(&served(&format!("{rule}{subset}"), VS));
        assert_eq!(
            action["hashPolicy"],
            json!([{"header": {"headerName": expected}}]),
            "{rule}"
        );
        // A single destination hashed consistently retries without the
        // previous-hosts predicate.
        assert!(action["retryPolicy"].get("retryHostPredicate").is_none());
        assert_eq!(action["retryPolicy"]["numRetries"], 2);
    }
}

#[test]
fn weighted_destinations_each_add_their_hash_policy() {
    let rule = "  subsets:\n  - name: v1\n    trafficPolicy:\n      loadBalancer: {consistentHash: {httpHeaderName: one}}\n  - name: v2\n    trafficPolicy:\n      loadBalancer: {consistentHash: {useSourceIp: true}}\n  - name: v3\n    trafficPolicy:\n      loadBalancer: {consistentHash: {httpHeaderName: three}}\n";
    let vs = "---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api}
spec:
  hosts: [api.example.com]
  http:
  - route:
    - {destination: {host: api.example.com, subset: v1}, weight: 50}
    - {destination: {host: api.example.com, subset: v2}, weight: 50}
    - {destination: {host: api.example.com, subset: v3}, weight: 0}
";
    let action = action(&served(rule, vs));
    assert_eq!(
        action["hashPolicy"],
        json!([
            {"header": {"headerName": "one"}},
            {"connectionProperties": {"sourceIp": true}}
        ])
    );
    // Weighted routes keep the previous-hosts predicate.
    assert!(action["retryPolicy"]["retryHostPredicate"].is_array());
}

#[test]
fn tcp_proxies_hash_by_source_ip_and_take_the_rule_timeouts() {
    let rule = "  trafficPolicy:\n    connectionPool:\n      tcp: {idleTimeout: 30s, maxConnectionDuration: 1h}\n    loadBalancer:\n      consistentHash: {useSourceIp: true}\n";
    let proxy = tcp_proxy(&served(rule, ""));
    assert_eq!(proxy["hashPolicy"], json!([{"sourceIp": {}}]));
    assert_eq!(proxy["idleTimeout"], "30s");
    assert_eq!(proxy["maxDownstreamConnectionDuration"], "3600s");
    // A header hash is no TCP hash; without a rule setting it, Envoy's
    // default idle timeout (1h) applies.
    let rule = "  trafficPolicy:\n    loadBalancer:\n      consistentHash: {httpHeaderName: x}\n";
    let proxy = tcp_proxy(&served(rule, ""));
    assert!(proxy.get("hashPolicy").is_none());
    assert!(proxy.get("idleTimeout").is_none());
    assert!(proxy.get("maxDownstreamConnectionDuration").is_none());
}

#[test]
fn a_subset_load_balancer_replaces_the_rule_source_ip_hash_on_tcp() {
    let rule = "  trafficPolicy:\n    loadBalancer:\n      consistentHash: {useSourceIp: true}\n  subsets:\n  - name: v1\n    trafficPolicy:\n      loadBalancer: {simple: RANDOM}\n";
    let vs = "---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api}
spec:
  hosts: [api.example.com]
  tcp:
  - route:
    - destination: {host: api.example.com, port: {number: 3306}, subset: v1}
";
    let proxy = tcp_proxy(&served(rule, vs));
    assert_eq!(proxy["cluster"], "outbound|3306|v1|api.example.com");
    assert!(proxy.get("hashPolicy").is_none());
}
