//! Circuit breakers, outlier detection and the healthy panic threshold, as
//! istiod writes them and with Envoy's defaults.

use std::time::Duration;

use proto::pb::envoy::config::cluster::v3::cluster::CommonLbConfig;
use proto::pb::envoy::config::cluster::v3::cluster::common_lb_config::{
    ConsistentHashingLbConfig, LocalityConfigSpecifier, LocalityWeightedLbConfig, ZoneAwareLbConfig,
};
use proto::pb::envoy::config::cluster::v3::{
    CircuitBreakers, Cluster, OutlierDetection, circuit_breakers,
};
use proto::pb::envoy::config::core::v3::{HealthStatusSet, RoutingPriority};
use proto::pb::envoy::r#type::v3::Percent;
use proto::wkt::{BoolValue, UInt32Value};

use super::{assert_rejected, starting};
use crate::model::cluster::{CircuitBreakers as Breakers, PanicThreshold};
use crate::model::resilience::OutlierDetection as Outlier;
use crate::model::secret::SecretSources;
use crate::model::{Error, cluster_from_proto};

const NAME: &str = "outbound|443||api.example.com";

fn convert(c: &Cluster) -> Result<crate::model::Cluster, Error> {
    cluster_from_proto(c, &SecretSources::default())
}

fn u32v(value: u32) -> Option<UInt32Value> {
    Some(UInt32Value { value })
}

fn seconds(seconds: i64) -> Option<proto::wkt::Duration> {
    Some(proto::wkt::Duration { seconds, nanos: 0 })
}

fn with_thresholds(thresholds: circuit_breakers::Thresholds) -> Cluster {
    Cluster {
        name: NAME.into(),
        circuit_breakers: Some(CircuitBreakers {
            thresholds: vec![thresholds],
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// What istiod sends for `http1MaxPendingRequests: 1, maxConnections: 1`
/// (its defaults for the rest: 2^32-1, tracking remaining).
#[test]
fn istiods_connection_pool_becomes_the_default_priority_limits() {
    let c = with_thresholds(circuit_breakers::Thresholds {
        max_connections: u32v(1),
        max_pending_requests: u32v(1),
        max_requests: u32v(u32::MAX),
        max_retries: u32v(u32::MAX),
        track_remaining: true,
        ..Default::default()
    });
    let converted = convert(&c).unwrap();
    assert_eq!(
        converted.circuit_breakers,
        Breakers {
            max_connections: 1,
            max_pending_requests: 1,
            max_requests: u32::MAX,
            max_retries: u32::MAX,
            track_remaining: true,
        }
    );
}

#[test]
fn envoys_defaults_fill_unset_limits() {
    let c = with_thresholds(circuit_breakers::Thresholds {
        max_requests: u32v(10),
        ..Default::default()
    });
    let b = convert(&c).unwrap().circuit_breakers;
    assert_eq!(
        (
            b.max_connections,
            b.max_pending_requests,
            b.max_requests,
            b.max_retries
        ),
        (1024, 1024, 10, 3)
    );
    assert!(!b.track_remaining);
}

#[test]
fn limits_the_agent_cannot_enforce_are_rejected() {
    let high = with_thresholds(circuit_breakers::Thresholds {
        priority: RoutingPriority::High as i32,
        ..Default::default()
    });
    assert_rejected(
        convert(&high),
        "cluster",
        NAME,
        "circuit_breakers.thresholds[0].priority",
        starting("only the DEFAULT priority"),
    );
    let budget = with_thresholds(circuit_breakers::Thresholds {
        retry_budget: Some(Default::default()),
        ..Default::default()
    });
    assert_rejected(
        convert(&budget),
        "cluster",
        NAME,
        "circuit_breakers.thresholds[0].retry_budget",
        starting("retry budgets are not supported"),
    );
    let mut per_host = with_thresholds(Default::default());
    per_host
        .circuit_breakers
        .as_mut()
        .unwrap()
        .per_host_thresholds = vec![Default::default()];
    assert_rejected(
        convert(&per_host),
        "cluster",
        NAME,
        "circuit_breakers.per_host_thresholds",
        starting("per-host"),
    );
}

/// istiod's outlier detection: success rate off, consecutive errors
/// enforced at 100%, panic threshold from `minHealthPercent`.
fn istio_outlier() -> Cluster {
    Cluster {
        name: NAME.into(),
        outlier_detection: Some(OutlierDetection {
            enforcing_success_rate: u32v(0),
            consecutive_5xx: u32v(3),
            enforcing_consecutive_5xx: u32v(100),
            consecutive_gateway_failure: u32v(2),
            enforcing_consecutive_gateway_failure: u32v(100),
            interval: seconds(1),
            base_ejection_time: seconds(15),
            max_ejection_percent: u32v(100),
            ..Default::default()
        }),
        common_lb_config: Some(CommonLbConfig {
            healthy_panic_threshold: Some(Percent { value: 0.0 }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn istiods_outlier_detection_converts_with_envoys_other_defaults() {
    let converted = convert(&istio_outlier()).unwrap();
    assert_eq!(
        converted.outlier_detection,
        Some(Outlier {
            consecutive_5xx: 3,
            enforcing_consecutive_5xx: 100,
            consecutive_gateway_failure: 2,
            enforcing_consecutive_gateway_failure: 100,
            interval: Duration::from_secs(1),
            base_ejection_time: Duration::from_secs(15),
            max_ejection_time: Duration::from_secs(300),
            max_ejection_percent: 100,
            always_eject_one_host: false,
        })
    );
    assert_eq!(converted.healthy_panic_threshold, PanicThreshold(0));
}

#[test]
fn an_unset_max_ejection_time_is_at_least_the_base() {
    let mut c = istio_outlier();
    let o = c.outlier_detection.as_mut().unwrap();
    o.base_ejection_time = seconds(400);
    o.always_eject_one_host = Some(BoolValue { value: true });
    let converted = convert(&c).unwrap().outlier_detection.unwrap();
    assert_eq!(converted.max_ejection_time, Duration::from_secs(400));
    assert!(converted.always_eject_one_host);
    c.outlier_detection.as_mut().unwrap().max_ejection_time = seconds(60);
    assert_rejected(
        convert(&c),
        "cluster",
        NAME,
        "outlier_detection.max_ejection_time",
        "cannot be smaller than base_ejection_time",
    );
}

#[test]
fn detectors_the_agent_does_not_run_are_rejected() {
    let mut c = istio_outlier();
    c.outlier_detection.as_mut().unwrap().enforcing_success_rate = None;
    assert_rejected(
        convert(&c),
        "cluster",
        NAME,
        "outlier_detection.enforcing_success_rate",
        starting("success-rate ejection is not supported"),
    );
    let mut c = istio_outlier();
    c.outlier_detection
        .as_mut()
        .unwrap()
        .enforcing_failure_percentage = u32v(100);
    assert_rejected(
        convert(&c),
        "cluster",
        NAME,
        "outlier_detection.enforcing_failure_percentage",
        starting("failure-percentage"),
    );
    let mut c = istio_outlier();
    c.outlier_detection
        .as_mut()
        .unwrap()
        .split_external_local_origin_errors = true;
    assert_rejected(
        convert(&c),
        "cluster",
        NAME,
        "outlier_detection.split_external_local_origin_errors",
        starting("local-origin errors are counted as 5xx only"),
    );
}

#[test]
fn the_panic_threshold_defaults_to_half_and_must_be_a_percentage() {
    let c = Cluster {
        name: NAME.into(),
        ..Default::default()
    };
    assert_eq!(
        convert(&c).unwrap().healthy_panic_threshold,
        PanicThreshold::DEFAULT
    );
    let mut c = istio_outlier();
    c.common_lb_config.as_mut().unwrap().healthy_panic_threshold = Some(Percent { value: 12.5 });
    assert_eq!(
        convert(&c).unwrap().healthy_panic_threshold,
        PanicThreshold(1250)
    );
    c.common_lb_config.as_mut().unwrap().healthy_panic_threshold = Some(Percent { value: 120.0 });
    assert_rejected(
        convert(&c),
        "cluster",
        NAME,
        "common_lb_config.healthy_panic_threshold",
        "120 is not a percentage",
    );
}

#[test]
fn balancing_options_the_agent_lacks_are_rejected_and_zone_awareness_is_a_no_op() {
    let with = |lb: CommonLbConfig| Cluster {
        name: NAME.into(),
        common_lb_config: Some(lb),
        ..Default::default()
    };
    let cases = [
        (
            CommonLbConfig {
                locality_config_specifier: Some(LocalityConfigSpecifier::LocalityWeightedLbConfig(
                    LocalityWeightedLbConfig {},
                )),
                ..Default::default()
            },
            "common_lb_config.locality_weighted_lb_config",
            "locality-weighted balancing is not supported",
        ),
        (
            CommonLbConfig {
                close_connections_on_host_set_change: true,
                ..Default::default()
            },
            "common_lb_config.close_connections_on_host_set_change",
            "closing connections when the hosts change is not supported",
        ),
        (
            CommonLbConfig {
                override_host_status: Some(HealthStatusSet::default()),
                ..Default::default()
            },
            "common_lb_config.override_host_status",
            "overriding the host is not supported",
        ),
        (
            CommonLbConfig {
                consistent_hashing_lb_config: Some(ConsistentHashingLbConfig {
                    use_hostname_for_hashing: true,
                    ..Default::default()
                }),
                ..Default::default()
            },
            "common_lb_config.consistent_hashing_lb_config",
            "hashing by host name and bounded loads are not supported",
        ),
    ];
    for (lb, field, reason) in cases {
        assert_rejected(convert(&with(lb)), "cluster", NAME, field, reason);
    }
    let zone_aware = with(CommonLbConfig {
        locality_config_specifier: Some(LocalityConfigSpecifier::ZoneAwareLbConfig(
            ZoneAwareLbConfig::default(),
        )),
        ..Default::default()
    });
    assert_eq!(
        convert(&zone_aware).unwrap().healthy_panic_threshold,
        PanicThreshold::DEFAULT
    );
}
