//! An HTTP connection manager's timeouts as Envoy reads them: absent gives
//! Envoy's default (the agent's 60 s for `request_headers_timeout`), `0s`
//! turns one off. The timeout settings the agent cannot honour are
//! rejected, naming the field.

use std::time::Duration;

use proto::pb::envoy::config::core::v3::HttpProtocolOptions;
use proto::pb::envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;

use super::{At, duration, enabled_duration};
use crate::model::Error;
use crate::model::http_timeouts::{
    DEFAULT_IDLE_TIMEOUT, DEFAULT_REQUEST_HEADERS_TIMEOUT, DEFAULT_STREAM_IDLE_TIMEOUT,
    HttpTimeouts,
};

/// The timeouts of `hcm`.
pub(super) fn hcm_timeouts(
    hcm: &HttpConnectionManager,
    at: &At<'_>,
) -> Result<HttpTimeouts, Error> {
    reject_unsupported(hcm, at)?;
    let common = hcm.common_http_protocol_options.unwrap_or_default();
    check_common(&common, &at.field("common_http_protocol_options"))?;
    Ok(HttpTimeouts {
        request_headers: defaulted(
            hcm.request_headers_timeout.as_ref(),
            DEFAULT_REQUEST_HEADERS_TIMEOUT,
        ),
        stream_idle: defaulted(
            hcm.stream_idle_timeout.as_ref(),
            DEFAULT_STREAM_IDLE_TIMEOUT,
        ),
        request: enabled_duration(hcm.request_timeout.as_ref()),
        max_stream_duration: enabled_duration(common.max_stream_duration.as_ref()),
        idle: defaulted(common.idle_timeout.as_ref(), DEFAULT_IDLE_TIMEOUT),
        max_connection_duration: enabled_duration(common.max_connection_duration.as_ref()),
    })
}

/// `default` when absent, off when zero, else the duration.
fn defaulted(d: Option<&proto::wkt::Duration>, default: Duration) -> Option<Duration> {
    match d {
        None => Some(default),
        Some(d) => Some(duration(d)).filter(|d| !d.is_zero()),
    }
}

/// The connection manager's timing settings the agent does not apply.
fn reject_unsupported(hcm: &HttpConnectionManager, at: &At<'_>) -> Result<(), Error> {
    let unsupported = [
        (
            "drain_timeout",
            hcm.drain_timeout.is_some(),
            "the agent sends the final GOAWAY one ping round trip after the first, it has no drain timeout to set",
        ),
        (
            "drain_timeout_jitter",
            hcm.drain_timeout_jitter.is_some(),
            "not supported",
        ),
        (
            "delayed_close_timeout",
            hcm.delayed_close_timeout.is_some(),
            "not supported: the agent closes a connection once its last response is written",
        ),
        (
            "stream_flush_timeout",
            hcm.stream_flush_timeout.is_some(),
            "not supported",
        ),
        (
            "http1_safe_max_connection_duration",
            hcm.http1_safe_max_connection_duration,
            "not supported",
        ),
    ];
    reject(&unsupported, at)
}

/// The `common_http_protocol_options` the agent does not apply downstream.
fn check_common(common: &HttpProtocolOptions, at: &At<'_>) -> Result<(), Error> {
    let unsupported = [
        (
            "max_connection_duration_jitter",
            common.max_connection_duration_jitter.is_some(),
            "not supported",
        ),
        (
            "max_headers_count",
            common.max_headers_count.is_some(),
            "not supported on downstream connections",
        ),
        (
            "max_response_headers_kb",
            common.max_response_headers_kb.is_some(),
            "not supported on downstream connections",
        ),
        (
            "headers_with_underscores_action",
            common.headers_with_underscores_action != 0,
            "not supported: headers with underscores are allowed",
        ),
        (
            "max_requests_per_connection",
            common.max_requests_per_connection.is_some(),
            "not supported on downstream connections",
        ),
    ];
    reject(&unsupported, at)
}

fn reject(fields: &[(&str, bool, &str)], at: &At<'_>) -> Result<(), Error> {
    match fields.iter().find(|(_, set, _)| *set) {
        Some((field, _, reason)) => Err(at.field(field).error(reason)),
        None => Ok(()),
    }
}
