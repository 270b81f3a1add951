//! Retry policies as istiod's `retry.ConvertPolicy` writes them.

use super::{default_retry_policy, retry_policy};
use crate::config::model::HttpRetry;

fn retries(yaml: &str) -> HttpRetry {
    serde_yaml::from_str(yaml).expect("retries")
}

#[test]
fn without_retries_istios_default_applies() {
    let policy = retry_policy(None, false).expect("a policy");
    assert_eq!(
        policy.retry_on,
        "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
    );
    assert_eq!(policy.num_retries.map(|n| n.value), Some(2));
    assert_eq!(policy.retriable_status_codes, [503]);
    assert_eq!(policy.host_selection_retry_max_attempts, 5);
    assert_eq!(
        policy.retry_host_predicate[0].name,
        "envoy.retry_host_predicates.previous_hosts"
    );
    assert!(policy.retry_priority.is_none());
}

#[test]
fn zero_attempts_disable_retries() {
    assert_eq!(retry_policy(Some(&retries("attempts: 0")), false), None);
}

#[test]
fn numbers_in_retry_on_become_retriable_status_codes() {
    let policy = retry_policy(
        Some(&retries(
            "{attempts: 3, retryOn: 'gateway-error,connect-failure,429,503'}",
        )),
        false,
    )
    .expect("a policy");
    assert_eq!(
        policy.retry_on,
        "gateway-error,connect-failure,retriable-status-codes"
    );
    assert_eq!(policy.retriable_status_codes, [429, 503]);
    assert_eq!(policy.num_retries.map(|n| n.value), Some(3));
}

#[test]
fn retry_on_without_codes_retries_no_status_code() {
    let policy = retry_policy(Some(&retries("{attempts: 3, retryOn: '5xx,reset'}")), false)
        .expect("a policy");
    assert_eq!(policy.retry_on, "5xx,reset");
    assert!(policy.retriable_status_codes.is_empty());
    let policy = retry_policy(
        Some(&retries(
            "{attempts: 1, retryOn: 'retriable-status-codes,502'}",
        )),
        false,
    )
    .expect("a policy");
    assert_eq!(policy.retry_on, "retriable-status-codes");
    assert_eq!(policy.retriable_status_codes, [502]);
}

#[test]
fn attempts_alone_keep_the_default_conditions() {
    let policy =
        retry_policy(Some(&retries("{attempts: 4, perTryTimeout: 2s}")), false).expect("a policy");
    assert_eq!(policy.retry_on, default_retry_policy(false).retry_on);
    assert_eq!(policy.retriable_status_codes, [503]);
    let per_try = policy.per_try_timeout.expect("per try timeout");
    assert_eq!((per_try.seconds, per_try.nanos), (2, 0));
}

#[test]
fn previous_hosts_remote_localities_and_backoff() {
    let policy = retry_policy(
        Some(&retries(
            "{attempts: 2, retryIgnorePreviousHosts: false, retryRemoteLocalities: true, backoff: 25ms}",
        )),
        false,
    )
    .expect("a policy");
    assert!(policy.retry_host_predicate.is_empty());
    let priority = policy.retry_priority.expect("retry priority");
    assert_eq!(priority.name, "envoy.retry_priorities.previous_priorities");
    let backoff = policy.retry_back_off.expect("back-off");
    assert_eq!(
        backoff.base_interval.map(|d| (d.seconds, d.nanos)),
        Some((0, 25_000_000))
    );
    assert_eq!(backoff.max_interval, None);
}

#[test]
fn a_consistent_hash_destination_keeps_its_host_on_retries() {
    assert!(default_retry_policy(true).retry_host_predicate.is_empty());
    let policy = retry_policy(
        Some(&retries("{attempts: 2, retryIgnorePreviousHosts: true}")),
        true,
    )
    .expect("a policy");
    assert_eq!(policy.retry_host_predicate.len(), 1);
}

#[test]
fn codes_alone_leave_istiods_leading_comma() {
    // istiod joins no conditions, then appends ",retriable-status-codes";
    // Envoy skips the empty condition.
    let policy =
        retry_policy(Some(&retries("{attempts: 2, retryOn: '503'}")), false).expect("a policy");
    assert_eq!(policy.retry_on, ",retriable-status-codes");
    assert_eq!(policy.retriable_status_codes, [503]);
}
