//! DestinationRule validation: host, subsets and Istio's ranges for
//! connection pools, outlier detection and consistent hashing.

use super::*;

#[test]
fn destination_rule_needs_a_host_and_unique_subsets() {
    one_error(
        &destination_rule("d", "default", "  host: ''\n"),
        &["DestinationRule default/d: spec.host: host is empty"],
    );
    let lines = errors(&destination_rule(
        "d",
        "default",
        "  host: a.example.com\n  subsets:\n  - name: v1\n  - name: v1\n  - name: ''\n",
    ));
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(
        lines[0].contains(
            "spec.subsets[1].name: subset \"v1\" is defined twice (also at spec.subsets[0])"
        ),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains("spec.subsets[2].name: subset has no name"),
        "{}",
        lines[1]
    );
    one_error(
        &destination_rule(
            "d",
            "default",
            "  host: a.example.com\n  trafficPolicy:\n    portLevelSettings:\n    - port: {number: 0}\n      tls: {mode: SIMPLE}\n",
        ),
        &["spec.trafficPolicy.portLevelSettings[0].port.number: port 0 is out of range"],
    );
}

fn rule(policy: &str) -> String {
    destination_rule(
        "d",
        "default",
        &format!("  host: a.example.com\n  trafficPolicy:\n{policy}"),
    )
}

#[test]
fn every_traffic_policy_field_of_the_issue_is_accepted() {
    valid(&rule(
        "    connectionPool:\n      tcp:\n        maxConnections: 1\n        connectTimeout: 30ms\n        tcpKeepalive: {probes: 3, time: 7200s, interval: 75s}\n        idleTimeout: 0s\n        maxConnectionDuration: 1h\n      http:\n        http1MaxPendingRequests: 1\n        http2MaxRequests: 1\n        maxRequestsPerConnection: 1\n        maxRetries: 1\n        idleTimeout: 30s\n        h2UpgradePolicy: UPGRADE\n        maxConcurrentStreams: 10\n    outlierDetection:\n      consecutive5xxErrors: 1\n      consecutiveGatewayErrors: 2\n      interval: 1s\n      baseEjectionTime: 30s\n      maxEjectionPercent: 100\n      minHealthPercent: 0\n    loadBalancer:\n      consistentHash:\n        httpCookie: {name: user, path: /, ttl: 0s}\n        maglev: {tableSize: 65537}\n    portLevelSettings:\n    - port: {number: 80}\n      outlierDetection: {consecutive5xxErrors: 3}\n      loadBalancer:\n        consistentHash: {useSourceIp: true, ringHash: {minimumRingSize: 16}}\n",
    ));
    valid(&rule(
        "    loadBalancer:\n      consistentHash: {httpQueryParameterName: user, minimumRingSize: 2048}\n",
    ));
}

#[test]
fn durations_are_at_least_a_millisecond_in_whole_milliseconds() {
    one_error(
        &rule("    outlierDetection: {interval: 500us}\n"),
        &["spec.trafficPolicy.outlierDetection.interval: duration \"500µs\" is less than 1ms"],
    );
    one_error(
        &rule("    connectionPool: {tcp: {tcpKeepalive: {time: 1500us}}}\n"),
        &[
            "spec.trafficPolicy.connectionPool.tcp.tcpKeepalive.time: duration \"1.5ms\" is not a whole number of milliseconds",
        ],
    );
    // Istio lets tcp.idleTimeout be 0s: no idle timeout.
    valid(&rule("    connectionPool: {tcp: {idleTimeout: 0s}}\n"));
    one_error(
        &rule("    connectionPool: {http: {idleTimeout: 0s}}\n"),
        &["spec.trafficPolicy.connectionPool.http.idleTimeout: duration \"0ns\" is less than 1ms"],
    );
}

#[test]
fn percentages_are_between_0_and_100() {
    let lines = errors(&rule(
        "    outlierDetection: {maxEjectionPercent: 101, minHealthPercent: -1}\n",
    ));
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(lines[0].contains(
        "spec.trafficPolicy.outlierDetection.maxEjectionPercent: percentage 101 is not between 0 and 100"
    ));
    assert!(lines[1].contains(
        "spec.trafficPolicy.outlierDetection.minHealthPercent: percentage -1 is not between 0 and 100"
    ));
    one_error(
        &destination_rule(
            "d",
            "default",
            "  host: a.example.com\n  subsets:\n  - name: v1\n    trafficPolicy:\n      portLevelSettings:\n      - port: {number: 80}\n        outlierDetection: {maxEjectionPercent: 200}\n",
        ),
        &["spec.subsets[0].trafficPolicy.portLevelSettings[0].outlierDetection.maxEjectionPercent"],
    );
}

#[test]
fn connection_pool_checks_are_istios() {
    one_error(
        &rule("    connectionPool: {}\n"),
        &["spec.trafficPolicy.connectionPool: connection pool must have at least one field"],
    );
    one_error(
        &rule("    connectionPool: {http: {h2UpgradePolicy: UPGRADE, useClientProtocol: true}}\n"),
        &[
            "spec.trafficPolicy.connectionPool.http.useClientProtocol: useClientProtocol must not be true when h2UpgradePolicy is UPGRADE",
        ],
    );
}

#[test]
fn consistent_hash_has_one_key_one_algorithm_and_a_prime_maglev_table() {
    one_error(
        &rule("    loadBalancer: {consistentHash: {httpHeaderName: x-user, useSourceIp: true}}\n"),
        &[
            "spec.trafficPolicy.loadBalancer.consistentHash: only one of httpHeaderName, httpCookie, useSourceIp, httpQueryParameterName can be set",
        ],
    );
    one_error(
        &rule("    loadBalancer: {simple: RANDOM, consistentHash: {useSourceIp: true}}\n"),
        &["only one of simple, consistentHash can be set"],
    );
    one_error(
        &rule("    loadBalancer: {consistentHash: {httpCookie: {ttl: 10s}}}\n"),
        &[
            "spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.name: name required for httpCookie",
        ],
    );
    one_error(
        &rule(
            "    loadBalancer: {consistentHash: {useSourceIp: true, ringHash: {}, maglev: {tableSize: 7}}}\n",
        ),
        &["only one of ringHash, maglev can be set"],
    );
    one_error(
        &rule(
            "    loadBalancer: {consistentHash: {useSourceIp: true, minimumRingSize: 8, ringHash: {}}}\n",
        ),
        &["consistentHash.minimumRingSize: only one of minimumRingSize, ringHash, maglev"],
    );
    for (size, reason) in [
        ("{}", "tableSize 0 for maglev must be set"),
        (
            "{tableSize: 65536}",
            "tableSize 65536 for maglev must be a prime number",
        ),
        (
            "{tableSize: 5000011}",
            "tableSize 5000011 for maglev must be less than 5000011",
        ),
    ] {
        one_error(
            &rule(&format!(
                "    loadBalancer: {{consistentHash: {{useSourceIp: true, maglev: {size}}}}}\n"
            )),
            &[
                "spec.trafficPolicy.loadBalancer.consistentHash.maglev.tableSize",
                reason,
            ],
        );
    }
    // Envoy's (and Istio's) primality test counts 1, 2 and 3 as prime.
    valid(&rule(
        "    loadBalancer: {consistentHash: {useSourceIp: true, maglev: {tableSize: 3}}}\n",
    ));
}
