//! Outlier detection's state machine on a fake clock.

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use super::*;

fn hosts(n: u16) -> Vec<Arc<Host>> {
    (0..n)
        .map(|i| {
            Arc::new(Host::new(
                SocketAddr::from(([10, 0, 0, 1], 80 + i)),
                None,
                None,
            ))
        })
        .collect()
}

fn detector(config: OutlierDetection) -> Detector {
    Detector::new(config, Arc::default())
}

fn consecutive(n: u32) -> OutlierDetection {
    OutlierDetection {
        consecutive_5xx: n,
        max_ejection_percent: 100,
        ..OutlierDetection::default()
    }
}

const SECOND: Duration = Duration::from_secs(1);

#[test]
fn consecutive_5xx_eject_a_host_and_a_success_resets_the_count() {
    let d = detector(consecutive(3));
    let hosts = hosts(2);
    let now = Instant::now();
    for status in [500, 503, 200, 500, 500] {
        d.record(&hosts[0], Outcome::Status(status), &hosts, now);
    }
    assert!(!hosts[0].stats.outlier.is_ejected(), "a 200 broke the run");
    d.record(&hosts[0], Outcome::ConnectFailed, &hosts, now);
    assert!(
        hosts[0].stats.outlier.is_ejected(),
        "a connect failure is a 503"
    );
    let o = &d.counters.outlier;
    assert_eq!(o.ejections_detected_consecutive_5xx.load(Relaxed), 1);
    assert_eq!(o.ejections_enforced_consecutive_5xx.load(Relaxed), 1);
    assert_eq!(o.ejections_enforced_total.load(Relaxed), 1);
    assert_eq!(d.generation.load(Relaxed), 1);
    assert!(!hosts[1].stats.outlier.is_ejected());
}

#[test]
fn gateway_failures_are_detected_but_enforced_only_when_asked() {
    let config = OutlierDetection {
        consecutive_5xx: 100,
        consecutive_gateway_failure: 2,
        max_ejection_percent: 100,
        ..OutlierDetection::default()
    };
    let d = detector(config);
    let hosts = hosts(1);
    let now = Instant::now();
    d.record(&hosts[0], Outcome::Status(502), &hosts, now);
    d.record(&hosts[0], Outcome::TimedOut, &hosts, now);
    let o = &d.counters.outlier;
    assert_eq!(
        o.ejections_detected_consecutive_gateway_failure
            .load(Relaxed),
        1
    );
    assert_eq!(
        o.ejections_enforced_total.load(Relaxed),
        0,
        "Envoy's default enforcement is 0%"
    );
    assert!(!hosts[0].stats.outlier.is_ejected());

    let d = detector(OutlierDetection {
        enforcing_consecutive_gateway_failure: 100,
        ..config
    });
    d.record(&hosts[0], Outcome::Status(504), &hosts, now);
    d.record(&hosts[0], Outcome::Status(500), &hosts, now);
    d.record(&hosts[0], Outcome::Status(503), &hosts, now);
    assert!(
        !hosts[0].stats.outlier.is_ejected(),
        "a 500 is no gateway failure"
    );
    d.record(&hosts[0], Outcome::Status(503), &hosts, now);
    assert!(hosts[0].stats.outlier.is_ejected());
    let o = &d.counters.outlier;
    assert_eq!(
        o.ejections_enforced_consecutive_gateway_failure
            .load(Relaxed),
        1
    );
}

#[test]
fn max_ejection_percent_bounds_ejections_unless_one_host_may_always_go() {
    let d = detector(OutlierDetection {
        max_ejection_percent: 10,
        ..consecutive(1)
    });
    let hosts = hosts(2);
    let now = Instant::now();
    d.record(&hosts[0], Outcome::Status(500), &hosts, now);
    assert!(!hosts[0].stats.outlier.is_ejected(), "50% > 10%");
    let o = &d.counters.outlier;
    assert_eq!(o.ejections_overflow.load(Relaxed), 1);
    assert_eq!(o.ejections_detected_consecutive_5xx.load(Relaxed), 1);

    let d = detector(OutlierDetection {
        max_ejection_percent: 10,
        always_eject_one_host: true,
        ..consecutive(1)
    });
    d.record(&hosts[0], Outcome::Status(500), &hosts, now);
    d.record(&hosts[1], Outcome::Status(500), &hosts, now);
    assert!(hosts[0].stats.outlier.is_ejected());
    assert!(
        !hosts[1].stats.outlier.is_ejected(),
        "only one past the limit"
    );
}

#[test]
fn ejection_time_grows_with_each_ejection_up_to_the_maximum() {
    let config = OutlierDetection {
        interval: SECOND,
        base_ejection_time: 10 * SECOND,
        max_ejection_time: 25 * SECOND,
        ..consecutive(1)
    };
    let d = detector(config);
    let hosts = hosts(1);
    let host = &hosts[0];
    let start = Instant::now();
    let at = |s: u32| start + SECOND * s;
    d.record(host, Outcome::Status(500), &hosts, at(0));
    d.on_interval(&hosts, at(9));
    assert!(host.stats.outlier.is_ejected());
    d.on_interval(&hosts, at(10));
    assert!(!host.stats.outlier.is_ejected(), "back after 10s");

    d.record(host, Outcome::Status(500), &hosts, at(10));
    d.on_interval(&hosts, at(29));
    assert!(host.stats.outlier.is_ejected(), "second ejection: 20s");
    d.on_interval(&hosts, at(30));
    assert!(!host.stats.outlier.is_ejected());

    d.record(host, Outcome::Status(500), &hosts, at(30));
    d.on_interval(&hosts, at(54));
    assert!(host.stats.outlier.is_ejected(), "third: 30s capped at 25s");
    d.on_interval(&hosts, at(55));
    assert!(!host.stats.outlier.is_ejected());
    assert_eq!(host.stats.outlier.ejection.lock().backoff, 3);

    // Healthy for an interval after its return: the backoff goes down.
    d.on_interval(&hosts, at(56));
    d.on_interval(&hosts, at(57));
    assert_eq!(host.stats.outlier.ejection.lock().backoff, 1);
    d.record(host, Outcome::Status(500), &hosts, at(57));
    d.on_interval(&hosts, at(76));
    assert!(host.stats.outlier.is_ejected(), "20s again");
    d.on_interval(&hosts, at(77));
    assert!(!host.stats.outlier.is_ejected());
}

#[test]
fn a_returned_host_starts_counting_afresh() {
    let d = detector(OutlierDetection {
        base_ejection_time: SECOND,
        ..consecutive(2)
    });
    let hosts = hosts(1);
    let start = Instant::now();
    d.record(&hosts[0], Outcome::Status(500), &hosts, start);
    d.record(&hosts[0], Outcome::Status(500), &hosts, start);
    assert!(hosts[0].stats.outlier.is_ejected());
    d.record(&hosts[0], Outcome::Status(500), &hosts, start);
    d.on_interval(&hosts, start + SECOND);
    assert!(!hosts[0].stats.outlier.is_ejected());
    d.record(&hosts[0], Outcome::Status(500), &hosts, start + SECOND);
    assert!(!hosts[0].stats.outlier.is_ejected(), "one 5xx after return");
}
