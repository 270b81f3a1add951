//! A route's `retry_policy` → model: Envoy's `retry_on` conditions, the
//! `previous_hosts` predicate with its host selection attempts, the
//! `previous_priorities` priority (the agent has one priority), and the
//! backoff. What the agent cannot honour is rejected.

use proto::pb::envoy::config::route::v3 as pb_route;

use super::super::{At, duration, enabled_duration};
use crate::model::Error;
use crate::model::route::{Backoff, RetryOn, RetryPolicy};

const PREVIOUS_HOSTS: [&str; 2] = [
    "envoy.retry_host_predicates.previous_hosts",
    "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate",
];
const PREVIOUS_PRIORITIES: [&str; 2] = [
    "envoy.retry_priorities.previous_priorities",
    "type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig",
];

pub(super) fn retry_policy(rp: &pb_route::RetryPolicy, at: &At<'_>) -> Result<RetryPolicy, Error> {
    unsupported(rp, at)?;
    let on = retry_on(&rp.retry_on, &at.field("retry_on"))?;
    let previous_hosts = rp
        .retry_host_predicate
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let type_url = p.config_type.as_ref().map(|c| {
                let pb_route::retry_policy::retry_host_predicate::ConfigType::TypedConfig(any) = c;
                any.type_url.as_str()
            });
            known(&p.name, type_url, PREVIOUS_HOSTS)
                .then_some(())
                .ok_or_else(|| {
                    at.field(format!("retry_host_predicate[{i}]"))
                        .error("only the previous_hosts predicate is supported")
                })
        })
        .collect::<Result<Vec<()>, _>>()?;
    if let Some(priority) = &rp.retry_priority {
        let type_url = priority.config_type.as_ref().map(|c| {
            let pb_route::retry_policy::retry_priority::ConfigType::TypedConfig(any) = c;
            any.type_url.as_str()
        });
        if !known(&priority.name, type_url, PREVIOUS_PRIORITIES) {
            return Err(at
                .field("retry_priority")
                .error("only previous_priorities is supported"));
        }
    }
    Ok(RetryPolicy {
        num_retries: rp.num_retries.as_ref().map_or(1, |n| n.value),
        per_try_timeout: enabled_duration(rp.per_try_timeout.as_ref()),
        on,
        retriable_status_codes: rp
            .retriable_status_codes
            .iter()
            .filter_map(|c| u16::try_from(*c).ok())
            .collect(),
        previous_hosts: !previous_hosts.is_empty(),
        // Envoy: at least one selection, however few are configured.
        host_selection_max_attempts: u32::try_from(rp.host_selection_retry_max_attempts.max(1))
            .unwrap_or(u32::MAX),
        backoff: backoff(rp.retry_back_off.as_ref(), &at.field("retry_back_off"))?,
    })
}

fn known(name: &str, type_url: Option<&str>, names: [&str; 2]) -> bool {
    match type_url {
        Some(url) => url == names[1],
        None => name == names[0],
    }
}

fn unsupported(rp: &pb_route::RetryPolicy, at: &At<'_>) -> Result<(), Error> {
    let set = [
        ("per_try_idle_timeout", rp.per_try_idle_timeout.is_some()),
        (
            "retry_options_predicates",
            !rp.retry_options_predicates.is_empty(),
        ),
        (
            "rate_limited_retry_back_off",
            rp.rate_limited_retry_back_off.is_some(),
        ),
        ("retriable_headers", !rp.retriable_headers.is_empty()),
        (
            "retriable_request_headers",
            !rp.retriable_request_headers.is_empty(),
        ),
    ];
    match set.iter().find(|(_, set)| *set) {
        Some((field, _)) => Err(at.field(field).error("not supported by the agent")),
        None => Ok(()),
    }
}

/// Envoy's `retry_on`: comma-separated conditions, blanks skipped.
fn retry_on(text: &str, at: &At<'_>) -> Result<RetryOn, Error> {
    let mut on = RetryOn::default();
    for condition in text.split(',').map(str::trim).filter(|c| !c.is_empty()) {
        let flag = match condition {
            "5xx" => &mut on.five_xx,
            "gateway-error" => &mut on.gateway_error,
            "reset" => &mut on.reset,
            "reset-before-request" => &mut on.reset_before_request,
            "connect-failure" => &mut on.connect_failure,
            "retriable-4xx" => &mut on.retriable_4xx,
            "refused-stream" => &mut on.refused_stream,
            "retriable-status-codes" => &mut on.retriable_status_codes,
            "envoy-ratelimited" => &mut on.envoy_ratelimited,
            "cancelled" => &mut on.grpc_cancelled,
            "deadline-exceeded" => &mut on.grpc_deadline_exceeded,
            "internal" => &mut on.grpc_internal,
            "resource-exhausted" => &mut on.grpc_resource_exhausted,
            "unavailable" => &mut on.grpc_unavailable,
            // The agent never speaks HTTP/3 upstream: nothing to retry.
            "http3-post-connect-failure" => continue,
            other => {
                return Err(at.error(format!(
                    "{other:?} is not a retry condition the agent supports"
                )));
            }
        };
        *flag = true;
    }
    Ok(on)
}

fn backoff(
    b: Option<&pb_route::retry_policy::RetryBackOff>,
    at: &At<'_>,
) -> Result<Backoff, Error> {
    let Some(b) = b else {
        return Ok(Backoff::default());
    };
    let base = b
        .base_interval
        .as_ref()
        .map(duration)
        .filter(|d| d.as_millis() >= 1)
        .ok_or_else(|| at.field("base_interval").error("must be at least 1ms"))?;
    let max = match b.max_interval.as_ref().map(duration) {
        None => base * 10,
        Some(max) if max < base => {
            return Err(at
                .field("max_interval")
                .error("must not be below base_interval"));
        }
        Some(max) => max,
    };
    Ok(Backoff { base, max })
}
