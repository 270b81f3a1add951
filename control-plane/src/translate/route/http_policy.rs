//! What an HTTP route does besides routing, as istiod writes it: `fault` and
//! `corsPolicy` as the route's `typed_per_filter_config` for Envoy's fault
//! and CORS filters, `mirror`/`mirrors` as `request_mirror_policies`.

use std::collections::HashMap;

use proto::pb::envoy::config::core::v3::RuntimeFractionalPercent;
use proto::pb::envoy::config::route::v3::route_action::RequestMirrorPolicy;
use proto::pb::envoy::extensions::filters::common::fault::v3::{FaultDelay, fault_delay};
use proto::pb::envoy::extensions::filters::http::cors::v3::CorsPolicy;
use proto::pb::envoy::extensions::filters::http::fault::v3::{FaultAbort, HttpFault, fault_abort};
use proto::pb::envoy::r#type::v3::{FractionalPercent, fractional_percent::DenominatorType};
use proto::wkt::Any;

use crate::config::codes::grpc_code;
use crate::config::model::{self, HttpFaultInjection, HttpRoute, Percent, UnmatchedPreflights};
use crate::translate::filters::{self, CORS_FILTER, CORS_POLICY, FAULT_FILTER, HTTP_FAULT};

use super::matching::string_matcher;

/// The route's `typed_per_filter_config`: the fault filter's `HTTPFault`
/// and the CORS filter's `CorsPolicy`, when the route has them.
pub(super) fn per_filter_config(http: &HttpRoute) -> HashMap<String, Any> {
    let mut config = HashMap::new();
    if let Some(fault) = http.fault.as_ref().and_then(http_fault) {
        config.insert(
            FAULT_FILTER.to_string(),
            proto::pack_named(HTTP_FAULT, &fault),
        );
    }
    if let Some(cors) = &http.cors_policy {
        config.insert(
            CORS_FILTER.to_string(),
            proto::pack_named(CORS_POLICY, &cors_policy(cors)),
        );
    }
    config
}

/// Istio's `Percent` as Envoy's: millionths, truncated as istiod does.
fn millionths(percent: Percent) -> FractionalPercent {
    FractionalPercent {
        numerator: (percent.value * 10_000.0) as u32,
        denominator: DenominatorType::Million as i32,
    }
}

/// A whole percent (the deprecated `percent` fields) as Envoy's.
fn hundredths(percent: u32) -> FractionalPercent {
    FractionalPercent {
        numerator: percent,
        denominator: DenominatorType::Hundred as i32,
    }
}

/// `fault` as istiod translates it: a delay with `fixedDelay` (its share
/// from `percentage`, else the deprecated `percent`, else 0), an abort with
/// `httpStatus` or `grpcStatus` (its share from `percentage`, else none:
/// Envoy then aborts nothing). `None` when neither is left.
pub(super) fn http_fault(fault: &HttpFaultInjection) -> Option<HttpFault> {
    let delay = fault.delay.as_ref().and_then(|delay| {
        let fixed = delay.fixed_delay?;
        Some(FaultDelay {
            percentage: Some(match delay.percentage {
                Some(percentage) => millionths(percentage),
                None => hundredths(delay.percent.unwrap_or(0)),
            }),
            fault_delay_secifier: Some(fault_delay::FaultDelaySecifier::FixedDelay(
                filters::duration(fixed.0),
            )),
        })
    });
    let abort = fault.abort.as_ref().and_then(|abort| {
        let error_type = match (abort.http_status, &abort.grpc_status) {
            (Some(status), _) => fault_abort::ErrorType::HttpStatus(status),
            (None, Some(name)) => fault_abort::ErrorType::GrpcStatus(grpc_code(name)?),
            (None, None) => return None,
        };
        Some(FaultAbort {
            percentage: abort.percentage.map(millionths),
            error_type: Some(error_type),
            ..Default::default()
        })
    });
    (delay.is_some() || abort.is_some()).then(|| HttpFault {
        delay,
        abort,
        ..Default::default()
    })
}

/// `corsPolicy` as istiod translates it: origins as string matchers (the
/// deprecated `allowOrigin` as exact ones when `allowOrigins` is empty),
/// lists joined with `,`, `maxAge` in whole seconds, the filter enabled for
/// all requests, and unmatched preflights forwarded unless `IGNORE`.
fn cors_policy(cors: &model::CorsPolicy) -> CorsPolicy {
    let allow_origin_string_match = if cors.allow_origins.is_empty() {
        cors.allow_origin
            .iter()
            .map(|origin| string_matcher(&model::StringMatch::Exact(origin.clone())))
            .collect()
    } else {
        cors.allow_origins.iter().map(string_matcher).collect()
    };
    CorsPolicy {
        allow_origin_string_match,
        allow_methods: cors.allow_methods.join(","),
        allow_headers: cors.allow_headers.join(","),
        expose_headers: cors.expose_headers.join(","),
        max_age: cors
            .max_age
            .map(|age| age.0.as_secs().to_string())
            .unwrap_or_default(),
        allow_credentials: cors.allow_credentials.map(filters::bool_value),
        filter_enabled: Some(RuntimeFractionalPercent {
            default_value: Some(hundredths(100)),
            ..Default::default()
        }),
        forward_not_matching_preflights: Some(filters::bool_value(
            cors.unmatched_preflights != Some(UnmatchedPreflights::Ignore),
        )),
        ..Default::default()
    }
}

/// The share of requests `mirror` copies: `mirrorPercentage`, else the
/// deprecated `mirrorPercent`, else all; `None` (no mirror) when the share
/// written is 0.
fn mirror_fraction(http: &HttpRoute) -> Option<RuntimeFractionalPercent> {
    let share = match (http.mirror_percentage, http.mirror_percent) {
        (Some(percentage), _) => (percentage.value > 0.0).then(|| millionths(percentage))?,
        (None, Some(percent)) => (percent > 0).then(|| hundredths(percent))?,
        (None, None) => hundredths(100),
    };
    Some(RuntimeFractionalPercent {
        default_value: Some(share),
        ..Default::default()
    })
}

/// A `mirrors` entry's share: its `percentage`, else all; `None` at 0.
fn mirrors_fraction(percentage: Option<Percent>) -> Option<RuntimeFractionalPercent> {
    let share = match percentage {
        Some(percentage) => (percentage.value > 0.0).then(|| millionths(percentage))?,
        None => hundredths(100),
    };
    Some(RuntimeFractionalPercent {
        default_value: Some(share),
        ..Default::default()
    })
}

/// The route action's `request_mirror_policies`: `mirror` first, then each
/// of `mirrors`, each to the cluster `cluster_of` names for its
/// destination, never trace-sampled (as istiod sets them).
pub(super) fn mirror_policies(
    http: &HttpRoute,
    cluster_of: impl Fn(&model::Destination) -> String,
) -> Vec<RequestMirrorPolicy> {
    let mirror = http
        .mirror
        .as_ref()
        .and_then(|destination| Some((destination, mirror_fraction(http)?)));
    let mirrors = http
        .mirrors
        .iter()
        .filter_map(|policy| Some((&policy.destination, mirrors_fraction(policy.percentage)?)));
    mirror
        .into_iter()
        .chain(mirrors)
        .map(|(destination, fraction)| RequestMirrorPolicy {
            cluster: cluster_of(destination),
            runtime_fraction: Some(fraction),
            trace_sampled: Some(filters::bool_value(false)),
            ..Default::default()
        })
        .collect()
}

#[cfg(test)]
mod tests;
