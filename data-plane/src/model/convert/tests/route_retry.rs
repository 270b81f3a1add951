//! Retry policies: Envoy's `retry_on` conditions, the previous hosts
//! predicate, the previous priorities priority, backoff, and what the agent
//! refuses.

use std::time::Duration;

use proto::pb::envoy::config::route::v3::{RetryPolicy, retry_policy, route};
use proto::wkt::{Any, UInt32Value};

use super::route::{assert_route_rejected, base, forward, route_action};
use crate::model::route::{Backoff, RetryOn};

fn ms(millis: i32) -> proto::wkt::Duration {
    proto::wkt::Duration {
        seconds: 0,
        nanos: millis * 1_000_000,
    }
}

fn converted(policy: RetryPolicy) -> crate::model::route::RetryPolicy {
    let mut rc = base();
    route_action(&mut rc).retry_policy = Some(policy);
    forward(&rc).retry.unwrap()
}

fn previous_hosts() -> retry_policy::RetryHostPredicate {
    retry_policy::RetryHostPredicate {
        name: "envoy.retry_host_predicates.previous_hosts".into(),
        config_type: Some(retry_policy::retry_host_predicate::ConfigType::TypedConfig(
            Any {
                type_url: "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate".into(),
                value: Vec::new(),
            },
        )),
    }
}

/// istiod's default policy: what every route without `retries` gets.
#[test]
fn istiods_default_policy_is_kept_whole() {
    let retry = converted(RetryPolicy {
        retry_on: "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
            .into(),
        num_retries: Some(UInt32Value { value: 2 }),
        retriable_status_codes: vec![503],
        retry_host_predicate: vec![previous_hosts()],
        host_selection_retry_max_attempts: 5,
        ..Default::default()
    });
    assert_eq!(retry.num_retries, 2);
    assert_eq!(
        retry.on,
        RetryOn {
            connect_failure: true,
            refused_stream: true,
            grpc_unavailable: true,
            grpc_cancelled: true,
            retriable_status_codes: true,
            ..Default::default()
        }
    );
    assert_eq!(retry.retriable_status_codes, [503]);
    assert!(retry.previous_hosts);
    assert_eq!(retry.host_selection_max_attempts, 5);
    assert_eq!(retry.backoff, Backoff::default());
    assert_eq!(retry.per_try_timeout, None);
}

#[test]
fn conditions_timeouts_and_backoff_are_kept() {
    let retry = converted(RetryPolicy {
        // istiod writes codes-only retryOn with a leading comma.
        retry_on: ",5xx, gateway-error,reset,retriable-4xx,deadline-exceeded,internal,resource-exhausted,envoy-ratelimited,reset-before-request,http3-post-connect-failure".into(),
        per_try_timeout: Some(ms(500)),
        retry_back_off: Some(retry_policy::RetryBackOff {
            base_interval: Some(ms(10)),
            max_interval: None,
        }),
        retry_priority: Some(retry_policy::RetryPriority {
            name: "envoy.retry_priorities.previous_priorities".into(),
            config_type: None,
        }),
        ..Default::default()
    });
    assert_eq!(retry.num_retries, 1, "Envoy's default is one retry");
    assert_eq!(
        retry.on,
        RetryOn {
            five_xx: true,
            gateway_error: true,
            reset: true,
            retriable_4xx: true,
            grpc_deadline_exceeded: true,
            grpc_internal: true,
            grpc_resource_exhausted: true,
            envoy_ratelimited: true,
            reset_before_request: true,
            ..Default::default()
        }
    );
    assert_eq!(retry.per_try_timeout, Some(Duration::from_millis(500)));
    assert_eq!(
        retry.backoff,
        Backoff {
            base: Duration::from_millis(10),
            max: Duration::from_millis(100),
        }
    );
    assert!(!retry.previous_hosts);
    assert_eq!(retry.host_selection_max_attempts, 1);
}

#[test]
fn what_the_agent_cannot_retry_on_is_rejected() {
    assert_route_rejected(
        |r| {
            if let Some(route::Action::Route(a)) = &mut r.action {
                a.retry_policy = Some(RetryPolicy {
                    retry_on: "5xx,sometimes".into(),
                    ..Default::default()
                });
            }
        },
        "route.retry_policy.retry_on",
        "\"sometimes\" is not a retry condition the agent supports",
    );
    assert_route_rejected(
        |r| {
            if let Some(route::Action::Route(a)) = &mut r.action {
                a.retry_policy = Some(RetryPolicy {
                    retry_on: "5xx".into(),
                    retry_host_predicate: vec![retry_policy::RetryHostPredicate {
                        name: "envoy.retry_host_predicates.omit_canary_hosts".into(),
                        config_type: None,
                    }],
                    ..Default::default()
                });
            }
        },
        "route.retry_policy.retry_host_predicate[0]",
        "only the previous_hosts predicate is supported",
    );
    assert_route_rejected(
        |r| {
            if let Some(route::Action::Route(a)) = &mut r.action {
                a.retry_policy = Some(RetryPolicy {
                    retry_on: "5xx".into(),
                    retriable_headers: vec![Default::default()],
                    ..Default::default()
                });
            }
        },
        "route.retry_policy.retriable_headers",
        "not supported by the agent",
    );
    assert_route_rejected(
        |r| {
            if let Some(route::Action::Route(a)) = &mut r.action {
                a.retry_policy = Some(RetryPolicy {
                    retry_on: "5xx".into(),
                    retry_back_off: Some(retry_policy::RetryBackOff {
                        base_interval: Some(ms(100)),
                        max_interval: Some(ms(10)),
                    }),
                    ..Default::default()
                });
            }
        },
        "route.retry_policy.retry_back_off.max_interval",
        "must not be below base_interval",
    );
}
