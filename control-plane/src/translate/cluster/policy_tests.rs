//! A DestinationRule's traffic policy on the clusters, field by field, as
//! istiod writes it (cluster_traffic_policy.go): connection pool,
//! outlier detection, load balancer, and the merge of the top level, the
//! subsets and the port-level settings.

use std::path::Path;

use serde_json::{Value, json};
use shared::type_url;

use crate::config::load::load_str;
use crate::translate::test_proxies::sidecar_with;
use crate::translate::{to_json, translate};

/// api.example.com on 80 (HTTP) and 8443 (HTTP2), DNS resolved.
const SERVICE_ENTRY: &str = "\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api}
spec:
  hosts: [api.example.com]
  location: MESH_EXTERNAL
  ports:
  - {number: 80, name: http, protocol: HTTP}
  - {number: 8443, name: h2, protocol: HTTP2}
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: api}
spec:
  host: api.example.com
";

/// The clusters a sidecar gets when the DestinationRule's spec goes on
/// with `rule` (YAML lines under `spec:`), by name.
fn clusters(rule: &str) -> serde_json::Map<String, Value> {
    let text = format!("{SERVICE_ENTRY}{rule}");
    let snapshot = load_str(Path::new("api.yaml"), &text).expect("loads");
    let resources = translate(&snapshot, &[], &sidecar_with(&[])).into_typed();
    let json = to_json(&resources, &[type_url::CLUSTER]).expect("converts");
    json["clusters"]
        .as_array()
        .expect("clusters")
        .iter()
        .map(|c| (c["name"].as_str().expect("name").to_string(), c.clone()))
        .collect()
}

fn cluster(rule: &str, name: &str) -> Value {
    clusters(rule)
        .remove(name)
        .unwrap_or_else(|| panic!("no cluster {name}"))
}

const HTTP: &str = "outbound|80||api.example.com";
const H2: &str = "outbound|8443||api.example.com";

/// The cluster's lb_policy; protobuf JSON leaves out ROUND_ROBIN, the
/// enum's default.
fn lb_policy(cluster: &Value) -> &str {
    cluster["lbPolicy"].as_str().unwrap_or("ROUND_ROBIN")
}

fn protocol_options(cluster: &Value) -> &Value {
    &cluster["typedExtensionProtocolOptions"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
}

#[test]
fn connection_pool_limits_become_the_circuit_breaker_thresholds() {
    let c = cluster(
        "  trafficPolicy:\n    connectionPool:\n      tcp: {maxConnections: 1, connectTimeout: 250ms}\n      http: {http1MaxPendingRequests: 2, http2MaxRequests: 3, maxRetries: 4}\n",
        HTTP,
    );
    assert_eq!(
        c["circuitBreakers"],
        json!({"thresholds": [{"maxConnections": 1, "maxPendingRequests": 2, "maxRequests": 3, "maxRetries": 4, "trackRemaining": true}]})
    );
    assert_eq!(c["connectTimeout"], "0.250s");
    // Zero is Istio's "unset": the unlimited default stays.
    let c = cluster(
        "  trafficPolicy:\n    connectionPool:\n      tcp: {maxConnections: 0}\n",
        HTTP,
    );
    assert_eq!(
        c["circuitBreakers"]["thresholds"][0]["maxConnections"],
        u32::MAX
    );
    assert_eq!(c["connectTimeout"], "10s");
}

#[test]
fn tcp_keepalive_sets_the_upstream_socket_options_in_seconds() {
    let c = cluster(
        "  trafficPolicy:\n    connectionPool:\n      tcp:\n        tcpKeepalive: {probes: 3, time: 7200s, interval: 75s}\n",
        HTTP,
    );
    assert_eq!(
        c["upstreamConnectionOptions"],
        json!({"tcpKeepalive": {"keepaliveProbes": 3, "keepaliveTime": 7200, "keepaliveInterval": 75}})
    );
    // An empty keepalive is SO_KEEPALIVE with the OS defaults.
    let c = cluster(
        "  trafficPolicy:\n    connectionPool:\n      tcp:\n        tcpKeepalive: {}\n",
        HTTP,
    );
    assert_eq!(c["upstreamConnectionOptions"], json!({"tcpKeepalive": {}}));
    assert!(cluster("", HTTP).get("upstreamConnectionOptions").is_none());
}

#[test]
fn pool_timeouts_and_per_connection_limits_are_common_http_protocol_options() {
    let c = cluster(
        "  trafficPolicy:\n    connectionPool:\n      tcp: {idleTimeout: 5s, maxConnectionDuration: 1m}\n      http: {maxRequestsPerConnection: 10}\n",
        HTTP,
    );
    assert_eq!(
        *protocol_options(&c),
        json!({
            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            "commonHttpProtocolOptions": {"idleTimeout": "5s", "maxConnectionDuration": "60s", "maxRequestsPerConnection": 10},
            "explicitHttpConfig": {"httpProtocolOptions": {}}
        })
    );
    // http.idleTimeout wins over tcp.idleTimeout.
    let c = cluster(
        "  trafficPolicy:\n    connectionPool:\n      tcp: {idleTimeout: 5s}\n      http: {idleTimeout: 7s}\n",
        HTTP,
    );
    assert_eq!(
        protocol_options(&c)["commonHttpProtocolOptions"]["idleTimeout"],
        "7s"
    );
    // No options at all on a plain HTTP/1.1 port without a pool.
    assert!(
        cluster("", HTTP)
            .get("typedExtensionProtocolOptions")
            .is_none()
    );
}

#[test]
fn max_concurrent_streams_applies_to_an_http2_cluster_only() {
    let pool = "  trafficPolicy:\n    connectionPool:\n      http: {maxConcurrentStreams: 9}\n";
    let all = clusters(pool);
    assert_eq!(
        protocol_options(&all[H2])["explicitHttpConfig"],
        json!({"http2ProtocolOptions": {"maxConcurrentStreams": 9}})
    );
    assert_eq!(
        protocol_options(&all[HTTP])["explicitHttpConfig"],
        json!({"httpProtocolOptions": {}})
    );
}

#[test]
fn h2_upgrade_policy_and_use_client_protocol_choose_the_upstream_protocol() {
    let c = cluster(
        "  trafficPolicy:\n    connectionPool:\n      http: {h2UpgradePolicy: UPGRADE}\n",
        HTTP,
    );
    assert_eq!(
        protocol_options(&c)["explicitHttpConfig"],
        json!({"http2ProtocolOptions": {}})
    );
    let c = cluster(
        "  trafficPolicy:\n    connectionPool:\n      http: {h2UpgradePolicy: DO_NOT_UPGRADE}\n",
        HTTP,
    );
    assert!(c.get("typedExtensionProtocolOptions").is_none());
    // useClientProtocol wins over the port's HTTP/2.
    let c = cluster(
        "  trafficPolicy:\n    connectionPool:\n      http: {useClientProtocol: true}\n",
        H2,
    );
    let options = protocol_options(&c);
    assert_eq!(
        options["useDownstreamProtocolConfig"],
        json!({"httpProtocolOptions": {}, "http2ProtocolOptions": {}})
    );
    assert!(options.get("explicitHttpConfig").is_none());
}

#[test]
fn outlier_detection_is_enforced_as_istiod_writes_it() {
    let c = cluster(
        "  trafficPolicy:\n    outlierDetection:\n      consecutive5xxErrors: 5\n      consecutiveGatewayErrors: 0\n      interval: 10s\n      baseEjectionTime: 30s\n      maxEjectionPercent: 50\n      minHealthPercent: 20\n",
        HTTP,
    );
    assert_eq!(
        c["outlierDetection"],
        json!({
            "consecutive5xx": 5,
            "enforcingConsecutive5xx": 100,
            "consecutiveGatewayFailure": 0,
            "enforcingConsecutiveGatewayFailure": 0,
            "interval": "10s",
            "baseEjectionTime": "30s",
            "maxEjectionPercent": 50,
            "enforcingSuccessRate": 0
        })
    );
    assert_eq!(
        c["commonLbConfig"],
        json!({"healthyPanicThreshold": {"value": 20.0}})
    );
    // Without minHealthPercent, istiod turns the panic threshold off: a
    // threshold of 0% (protobuf JSON leaves the zero out).
    let c = cluster(
        "  trafficPolicy:\n    outlierDetection: {consecutive5xxErrors: 1}\n",
        HTTP,
    );
    assert_eq!(c["commonLbConfig"], json!({"healthyPanicThreshold": {}}));
    let c = cluster("", HTTP);
    assert!(c.get("outlierDetection").is_none());
    assert!(c.get("commonLbConfig").is_none());
}

#[test]
fn simple_load_balancers_are_istios() {
    for (simple, policy) in [
        ("ROUND_ROBIN", "ROUND_ROBIN"),
        ("RANDOM", "RANDOM"),
        ("LEAST_CONN", "LEAST_REQUEST"),
        ("LEAST_REQUEST", "LEAST_REQUEST"),
        ("UNSPECIFIED", "LEAST_REQUEST"),
    ] {
        let c = cluster(
            &format!("  trafficPolicy:\n    loadBalancer: {{simple: {simple}}}\n"),
            HTTP,
        );
        assert_eq!(lb_policy(&c), policy, "{simple}");
    }
    let c = cluster(
        "  trafficPolicy:\n    loadBalancer: {simple: PASSTHROUGH}\n",
        HTTP,
    );
    assert_eq!(c["type"], "ORIGINAL_DST");
    assert_eq!(c["lbPolicy"], "CLUSTER_PROVIDED");
    assert!(c.get("loadAssignment").is_none());
}

#[test]
fn consistent_hash_is_ring_hash_or_maglev() {
    let lb = |lb: &str| {
        let c = cluster(
            &format!("  trafficPolicy:\n    loadBalancer:\n      consistentHash: {lb}\n"),
            HTTP,
        );
        (
            c["lbPolicy"].clone(),
            c.get("ringHashLbConfig").cloned(),
            c.get("maglevLbConfig").cloned(),
        )
    };
    assert_eq!(
        lb("{httpHeaderName: x-user}"),
        (
            json!("RING_HASH"),
            Some(json!({"minimumRingSize": "1024"})),
            None
        )
    );
    assert_eq!(
        lb("{httpHeaderName: x-user, minimumRingSize: 2048}"),
        (
            json!("RING_HASH"),
            Some(json!({"minimumRingSize": "2048"})),
            None
        )
    );
    assert_eq!(
        lb("{useSourceIp: true, ringHash: {minimumRingSize: 64}}"),
        (
            json!("RING_HASH"),
            Some(json!({"minimumRingSize": "64"})),
            None
        )
    );
    assert_eq!(
        lb("{useSourceIp: true, ringHash: {}}"),
        (json!("RING_HASH"), None, None)
    );
    assert_eq!(
        lb("{useSourceIp: true, maglev: {tableSize: 65537}}"),
        (json!("MAGLEV"), None, Some(json!({"tableSize": "65537"})))
    );
}

#[test]
fn port_level_settings_replace_the_whole_policy_of_their_port() {
    let rule = "  trafficPolicy:\n    connectionPool: {tcp: {maxConnections: 7}}\n    loadBalancer: {simple: RANDOM}\n    portLevelSettings:\n    - port: {number: 8443}\n      outlierDetection: {consecutive5xxErrors: 2}\n";
    let all = clusters(rule);
    // Port 80 keeps the top level.
    assert_eq!(all[HTTP]["lbPolicy"], "RANDOM");
    assert_eq!(
        all[HTTP]["circuitBreakers"]["thresholds"][0]["maxConnections"],
        7
    );
    assert!(all[HTTP].get("outlierDetection").is_none());
    // Port 8443 gets its port-level settings and defaults for the rest.
    assert_eq!(all[H2]["lbPolicy"], "LEAST_REQUEST");
    assert_eq!(
        all[H2]["circuitBreakers"]["thresholds"][0]["maxConnections"],
        u32::MAX
    );
    assert_eq!(all[H2]["outlierDetection"]["consecutive5xx"], 2);
}

#[test]
fn a_subset_overrides_what_it_sets_and_its_port_level_settings_replace_all() {
    let rule = "  trafficPolicy:\n    connectionPool: {tcp: {maxConnections: 7}}\n    loadBalancer: {simple: RANDOM}\n  subsets:\n  - name: v1\n    trafficPolicy:\n      outlierDetection: {consecutive5xxErrors: 3}\n      portLevelSettings:\n      - port: {number: 8443}\n        loadBalancer: {simple: ROUND_ROBIN}\n";
    let all = clusters(rule);
    let v1_http = &all["outbound|80|v1|api.example.com"];
    assert_eq!(v1_http["lbPolicy"], "RANDOM");
    assert_eq!(
        v1_http["circuitBreakers"]["thresholds"][0]["maxConnections"],
        7
    );
    assert_eq!(v1_http["outlierDetection"]["consecutive5xx"], 3);
    let v1_h2 = &all["outbound|8443|v1|api.example.com"];
    assert_eq!(lb_policy(v1_h2), "ROUND_ROBIN");
    assert_eq!(
        v1_h2["circuitBreakers"]["thresholds"][0]["maxConnections"],
        u32::MAX
    );
    assert!(v1_h2.get("outlierDetection").is_none());
}
