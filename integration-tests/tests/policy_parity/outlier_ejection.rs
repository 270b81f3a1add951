//! Outlier detection beside consecutive 5xx: gateway errors counted
//! apart from other 5xx, `maxEjectionPercent` holding back ejections,
//! `minHealthPercent` below which every host serves again, and an ejected
//! host's return after `baseEjectionTime` at an `interval` sweep.

use std::time::Duration;

use integration_tests::policy::{Call, Facts, Scenario, sorted_tally};
use integration_tests::upstream::Failing;
use serde_json::json;

use crate::config::{cluster, ready};
use crate::destination_rule::three_servers;
use crate::virtual_service::with_counters;

/// Envoy's default `common_lb_config.update_merge_window`: the probe lets
/// the endpoints settle longer than that before a host's ejection must
/// reach the load balancers at once.
const SETTLE: Duration = Duration::from_millis(1500);

pub fn scenarios() -> Vec<Scenario> {
    vec![
        consecutive_gateway_errors(),
        max_ejection_percent(),
        min_health_percent(),
        ejection_ends(),
    ]
}

/// `consecutiveGatewayErrors: 1` with `consecutive5xxErrors: 0` (off):
/// server a answers 502 to everything, b 500, c 200. A 502 is a gateway
/// error and ejects a on its first; a 500 is not, so b stays in. Envoy
/// counts one enforced gateway-failure ejection and none for 5xx.
fn consecutive_gateway_errors() -> Scenario {
    const HOST: &str = "outlier-gateway.example.com";
    Scenario::new(
        "DR outlierDetection consecutiveGatewayErrors: 502 ejects, 500 not",
        three_servers(
            HOST,
            json!({ "loadBalancer": { "simple": "ROUND_ROBIN" },
                    "outlierDetection": {
                        "consecutiveGatewayErrors": 1,
                        "consecutive5xxErrors": 0,
                        "interval": "1s",
                        "baseEjectionTime": "5m",
                        "maxEjectionPercent": 100,
            } }),
        ),
        |probe| {
            probe.fail("a", Failing::Always(502))?;
            probe.fail("b", Failing::Always(500))?;
            std::thread::sleep(SETTLE);
            probe.send_times(&Call::get(HOST, "/"), 9)?;
            let cluster = cluster(HOST);
            let facts = Facts::new()
                .with("a served", probe.received("a")?.len())
                .with("b served more than 1", probe.received("b")?.len() > 1)
                .with("a health_flags", probe.health_flags(&cluster, "a")?)
                .with("b health_flags", probe.health_flags(&cluster, "b")?);
            with_counters(
                facts,
                probe,
                HOST,
                &[
                    "outlier_detection.ejections_enforced_consecutive_gateway_failure",
                    "outlier_detection.ejections_enforced_consecutive_5xx",
                    "outlier_detection.ejections_active",
                ],
            )
        },
        Facts::new()
            .with("a served", 1)
            .with("b served more than 1", true)
            .with("a health_flags", "/failed_outlier_check")
            .with("b health_flags", "healthy")
            .with(
                "outlier_detection.ejections_enforced_consecutive_gateway_failure",
                1,
            )
            .with("outlier_detection.ejections_enforced_consecutive_5xx", 0)
            .with("outlier_detection.ejections_active", 1),
    )
    .ready(ready(HOST, 3))
}

/// `consecutive5xxErrors: 1` and `maxEjectionPercent: 50` with servers a
/// and b both answering 500: Envoy ejects a host only when the hosts
/// ejected, it included, stay within 50% of the cluster's, so the first
/// failing host goes (one of three) and the other stays (two of three
/// would be 66.7%), its ejections counted as overflow.
fn max_ejection_percent() -> Scenario {
    const HOST: &str = "outlier-max.example.com";
    Scenario::new(
        "DR outlierDetection maxEjectionPercent limits ejections",
        three_servers(
            HOST,
            json!({ "loadBalancer": { "simple": "ROUND_ROBIN" },
                    "outlierDetection": {
                        "consecutive5xxErrors": 1,
                        "interval": "1s",
                        "baseEjectionTime": "5m",
                        "maxEjectionPercent": 50,
            } }),
        ),
        |probe| {
            probe.fail("a", Failing::Always(500))?;
            probe.fail("b", Failing::Always(500))?;
            std::thread::sleep(SETTLE);
            probe.send_times(&Call::get(HOST, "/"), 12)?;
            let cluster = cluster(HOST);
            let flags = ["a", "b"]
                .iter()
                .map(|server| probe.health_flags(&cluster, server))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let stat = |name| probe.cluster_stat(&cluster, name);
            Ok(Facts::new()
                .with("a and b health_flags", sorted_tally(flags))
                .with(
                    "outlier_detection.ejections_active",
                    stat("outlier_detection.ejections_active")?,
                )
                .with(
                    "outlier_detection.ejections_overflow > 0",
                    stat("outlier_detection.ejections_overflow")?
                        .parse::<u64>()
                        .is_ok_and(|count| count > 0),
                ))
        },
        Facts::new()
            .with("a and b health_flags", "/failed_outlier_check×1 healthy×1")
            .with("outlier_detection.ejections_active", 1)
            .with("outlier_detection.ejections_overflow > 0", true),
    )
    .ready(ready(HOST, 3))
}

/// `minHealthPercent: 90` (istiod's `healthy_panic_threshold`) with
/// `consecutive5xxErrors: 1` and server c answering 500: c is ejected on
/// its first 500, leaving two healthy hosts of three (66.7%), below the
/// threshold, so the load balancer panics and picks among all hosts, c
/// included: c keeps serving, `/clusters` still shows it ejected, and
/// `lb_healthy_panic` counts the requests balanced in panic.
fn min_health_percent() -> Scenario {
    const HOST: &str = "outlier-panic.example.com";
    Scenario::new(
        "DR outlierDetection minHealthPercent: below it every host serves",
        three_servers(
            HOST,
            json!({ "loadBalancer": { "simple": "ROUND_ROBIN" },
                    "outlierDetection": {
                        "consecutive5xxErrors": 1,
                        "interval": "1s",
                        "baseEjectionTime": "5m",
                        "maxEjectionPercent": 100,
                        "minHealthPercent": 90,
            } }),
        ),
        |probe| {
            probe.fail("c", Failing::Always(500))?;
            std::thread::sleep(SETTLE);
            probe.send_times(&Call::get(HOST, "/"), 9)?;
            let cluster = cluster(HOST);
            let stat = |name| probe.cluster_stat(&cluster, name);
            let positive = |value: String| value.parse::<u64>().is_ok_and(|count| count > 0);
            Ok(Facts::new()
                .with("c served more than once", probe.received("c")?.len() > 1)
                .with("c health_flags", probe.health_flags(&cluster, "c")?)
                .with(
                    "outlier_detection.ejections_active",
                    stat("outlier_detection.ejections_active")?,
                )
                .with("lb_healthy_panic > 0", positive(stat("lb_healthy_panic")?)))
        },
        Facts::new()
            .with("c served more than once", true)
            .with("c health_flags", "/failed_outlier_check")
            .with("outlier_detection.ejections_active", 1)
            .with("lb_healthy_panic > 0", true),
    )
    .ready(ready(HOST, 3))
}

/// `consecutive5xxErrors: 1`, `baseEjectionTime: 2s`, `interval: 1s`:
/// server c fails one request and is ejected; the first sweep (every
/// `interval`) after its ejection time has passed brings it back, so 4 s
/// later `/clusters` shows it healthy, no ejection is active, and round
/// robin reaches it again.
fn ejection_ends() -> Scenario {
    const HOST: &str = "outlier-return.example.com";
    Scenario::new(
        "DR outlierDetection baseEjectionTime, interval: the host returns",
        three_servers(
            HOST,
            json!({ "loadBalancer": { "simple": "ROUND_ROBIN" },
                    "outlierDetection": {
                        "consecutive5xxErrors": 1,
                        "interval": "1s",
                        "baseEjectionTime": "2s",
                        "maxEjectionPercent": 100,
            } }),
        ),
        |probe| {
            probe.fail(
                "c",
                Failing::Next {
                    count: 1,
                    status: 500,
                },
            )?;
            std::thread::sleep(SETTLE);
            probe.send_times(&Call::get(HOST, "/"), 3)?;
            let cluster = cluster(HOST);
            let ejected = probe.health_flags(&cluster, "c")?;
            std::thread::sleep(Duration::from_secs(4));
            let returned = probe.health_flags(&cluster, "c")?;
            let served_before = probe.received("c")?.len();
            probe.send_times(&Call::get(HOST, "/"), 3)?;
            Ok(Facts::new()
                .with("c after its 500", ejected)
                .with("c 4 s later", returned)
                .with(
                    "outlier_detection.ejections_active",
                    probe.cluster_stat(&cluster, "outlier_detection.ejections_active")?,
                )
                .with("c serves again", probe.received("c")?.len() > served_before))
        },
        Facts::new()
            .with("c after its 500", "/failed_outlier_check")
            .with("c 4 s later", "healthy")
            .with("outlier_detection.ejections_active", 0)
            .with("c serves again", true),
    )
    .ready(ready(HOST, 3))
}
