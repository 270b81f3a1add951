//! Envoy's retry decisions: conditions per response and per failure, and
//! the jittered exponential backoff.

use super::*;

fn policy(on: RetryOn) -> RetryPolicy {
    RetryPolicy {
        num_retries: 2,
        per_try_timeout: None,
        on,
        retriable_status_codes: vec![503],
        previous_hosts: false,
        host_selection_max_attempts: 1,
        backoff: Backoff::default(),
    }
}

fn headers(pairs: &[(&'static str, &'static str)]) -> http::HeaderMap {
    pairs
        .iter()
        .map(|(k, v)| {
            (
                http::HeaderName::from_static(k),
                http::HeaderValue::from_static(v),
            )
        })
        .collect()
}

#[test]
fn status_conditions_are_envoys() {
    let none = headers(&[]);
    let five_xx = policy(RetryOn {
        five_xx: true,
        ..Default::default()
    });
    assert!(five_xx.retries_response(500, &none));
    assert!(five_xx.retries_response(503, &none));
    assert!(!five_xx.retries_response(409, &none));
    let gateway = policy(RetryOn {
        gateway_error: true,
        ..Default::default()
    });
    assert!(!gateway.retries_response(500, &none));
    assert!(gateway.retries_response(502, &none));
    assert!(gateway.retries_response(504, &none));
    let conflict = policy(RetryOn {
        retriable_4xx: true,
        ..Default::default()
    });
    assert!(conflict.retries_response(409, &none));
    assert!(!conflict.retries_response(404, &none));
    let codes = policy(RetryOn {
        retriable_status_codes: true,
        ..Default::default()
    });
    assert!(codes.retries_response(503, &none));
    assert!(!codes.retries_response(502, &none));
    // The codes count only under `retriable-status-codes`.
    assert!(!policy(RetryOn::default()).retries_response(503, &none));
}

#[test]
fn an_overloaded_response_is_never_retried() {
    let five_xx = policy(RetryOn {
        five_xx: true,
        ..Default::default()
    });
    assert!(!five_xx.retries_response(503, &headers(&[("x-envoy-overloaded", "true")])));
}

#[test]
fn grpc_conditions_read_grpc_status() {
    let unavailable = policy(RetryOn {
        grpc_unavailable: true,
        grpc_cancelled: true,
        ..Default::default()
    });
    assert!(unavailable.retries_response(200, &headers(&[("grpc-status", "14")])));
    assert!(unavailable.retries_response(200, &headers(&[("grpc-status", "1")])));
    assert!(!unavailable.retries_response(200, &headers(&[("grpc-status", "13")])));
    assert!(!unavailable.retries_response(200, &headers(&[])));
}

#[test]
fn failures_are_retried_as_envoy_resets_are() {
    use AttemptFailure::*;
    let connect = policy(RetryOn {
        connect_failure: true,
        ..Default::default()
    });
    assert!(connect.retries_failure(ConnectFailure));
    assert!(!connect.retries_failure(Reset));
    assert!(!connect.retries_failure(PerTryTimeout));
    for on in [
        RetryOn {
            reset: true,
            ..Default::default()
        },
        RetryOn {
            five_xx: true,
            ..Default::default()
        },
        RetryOn {
            gateway_error: true,
            ..Default::default()
        },
    ] {
        let p = policy(on);
        for failure in [ConnectFailure, Reset, RefusedStream, PerTryTimeout] {
            assert!(p.retries_failure(failure), "{on:?} {failure:?}");
        }
        assert!(!p.retries_failure(Overflow));
        assert!(!p.retries_failure(NoHealthyUpstream));
    }
    let refused = policy(RetryOn {
        refused_stream: true,
        ..Default::default()
    });
    assert!(refused.retries_failure(RefusedStream));
    assert!(!refused.retries_failure(Reset));
}

#[test]
fn backoff_is_jittered_below_a_doubling_interval_capped_at_the_max() {
    let backoff = Backoff::default();
    assert_eq!(backoff.delay(1, 24), Duration::from_millis(24));
    assert_eq!(backoff.delay(1, 25), Duration::ZERO);
    assert_eq!(backoff.delay(2, 49), Duration::from_millis(49));
    assert_eq!(backoff.delay(3, 99), Duration::from_millis(99));
    // 25, 50, 100, 200, then the 250ms max.
    assert_eq!(backoff.delay(5, 249), Duration::from_millis(249));
    assert_eq!(backoff.delay(9, 250), Duration::ZERO);
}
