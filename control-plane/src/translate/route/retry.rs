//! A route's retry policy as istiod writes it (its `retry.ConvertPolicy`):
//! Istio's default without `retries`, none with `attempts: 0`, otherwise the
//! default with the route's attempts, conditions, status codes, per-try
//! timeout, host predicate, locality priority and back-off.

use proto::pb::envoy::config::route::v3::{RetryPolicy, retry_policy};
use proto::pb::envoy::extensions::retry::host::previous_hosts::v3::PreviousHostsPredicate;
use proto::pb::envoy::extensions::retry::priority::previous_priorities::v3::PreviousPrioritiesConfig;

use crate::config::codes::is_status_code;
use crate::config::model::HttpRetry;
use crate::translate::filters;

/// Istio's default conditions, attempts and retried status code.
const DEFAULT_RETRY_ON: &str =
    "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes";
const DEFAULT_RETRIES: u32 = 2;
const DEFAULT_RETRIABLE_STATUS: u32 = 503;
/// istiod's (fixed) host selection attempts and priority update frequency.
const HOST_SELECTION_RETRY_MAX_ATTEMPTS: i64 = 5;
const PRIORITY_UPDATE_FREQUENCY: i32 = 2;
const RETRIABLE_STATUS_CODES: &str = "retriable-status-codes";

fn previous_hosts() -> retry_policy::RetryHostPredicate {
    retry_policy::RetryHostPredicate {
        name: "envoy.retry_host_predicates.previous_hosts".to_string(),
        config_type: Some(retry_policy::retry_host_predicate::ConfigType::TypedConfig(
            proto::pack_named(
                "envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate",
                &PreviousHostsPredicate::default(),
            ),
        )),
    }
}

fn previous_priorities() -> retry_policy::RetryPriority {
    retry_policy::RetryPriority {
        name: "envoy.retry_priorities.previous_priorities".to_string(),
        config_type: Some(retry_policy::retry_priority::ConfigType::TypedConfig(
            proto::pack_named(
                "envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig",
                &PreviousPrioritiesConfig {
                    update_frequency: PRIORITY_UPDATE_FREQUENCY,
                },
            ),
        )),
    }
}

/// Istio's default policy; a route to a consistent-hash destination keeps
/// its host on retries (no previous-hosts predicate).
pub fn default_retry_policy(consistent_hash: bool) -> RetryPolicy {
    RetryPolicy {
        retry_on: DEFAULT_RETRY_ON.to_string(),
        num_retries: Some(filters::u32_value(DEFAULT_RETRIES)),
        retry_host_predicate: if consistent_hash {
            Vec::new()
        } else {
            vec![previous_hosts()]
        },
        host_selection_retry_max_attempts: HOST_SELECTION_RETRY_MAX_ATTEMPTS,
        retriable_status_codes: vec![DEFAULT_RETRIABLE_STATUS],
        ..Default::default()
    }
}

/// `retryOn` split as istiod splits it: the conditions, and the numbers
/// that are HTTP status codes, with `retriable-status-codes` added when
/// there are codes and the conditions lack it.
fn split_retry_on(retry_on: &str) -> (String, Vec<u32>) {
    let mut conditions = Vec::new();
    let mut codes = Vec::new();
    for part in retry_on.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.parse::<u32>() {
            Ok(code) if is_status_code(part) => codes.push(code),
            _ => conditions.push(part),
        }
    }
    let mut conditions = conditions.join(",");
    if !codes.is_empty() && !conditions.contains(RETRIABLE_STATUS_CODES) {
        conditions.push(',');
        conditions.push_str(RETRIABLE_STATUS_CODES);
    }
    (conditions, codes)
}

/// The route's retry policy: see the module.
pub fn retry_policy(retries: Option<&HttpRetry>, consistent_hash: bool) -> Option<RetryPolicy> {
    let mut policy = default_retry_policy(consistent_hash);
    let Some(retries) = retries else {
        return Some(policy);
    };
    if retries.attempts == 0 {
        return None;
    }
    policy.num_retries = Some(filters::u32_value(retries.attempts));
    if let Some(retry_on) = retries.retry_on.as_deref().filter(|r| !r.is_empty()) {
        (policy.retry_on, policy.retriable_status_codes) = split_retry_on(retry_on);
    }
    if let Some(timeout) = retries.per_try_timeout {
        policy.per_try_timeout = Some(filters::duration(timeout.0));
    }
    if let Some(ignore) = retries.retry_ignore_previous_hosts {
        policy.retry_host_predicate = if ignore {
            vec![previous_hosts()]
        } else {
            Vec::new()
        };
    }
    if retries.retry_remote_localities == Some(true) {
        policy.retry_priority = Some(previous_priorities());
    }
    if let Some(backoff) = retries.backoff {
        policy.retry_back_off = Some(retry_policy::RetryBackOff {
            base_interval: Some(filters::duration(backoff.0)),
            ..Default::default()
        });
    }
    Some(policy)
}

#[cfg(test)]
mod tests;
