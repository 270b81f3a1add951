//! `envoy.extensions.filters.http.fault.v3.HTTPFault` → [`Fault`]: fixed
//! delays and HTTP or gRPC aborts with their percentages, as istiod writes
//! them. Header-controlled faults, header and node matching, rate limits
//! and active-fault limits are rejected.

use std::sync::Arc;

use proto::pb::envoy::extensions::filters::common::fault::v3::fault_delay::FaultDelaySecifier;
use proto::pb::envoy::extensions::filters::http::fault::v3::{
    FaultAbort, HttpFault, fault_abort::ErrorType,
};

use super::fraction::fraction;
use super::{At, duration};
use crate::model::Error;
use crate::model::fault::{ABORT_BODY, Abort, AbortStatus, Delay, Fault};

pub(super) const HTTP_FAULT: &str =
    "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault";

/// A fault configuration. Runtime keys are accepted: with no runtime
/// layer, Envoy uses the configured values too.
pub(super) fn fault(f: &HttpFault, at: &At<'_>) -> Result<Fault, Error> {
    let unsupported = [
        ("upstream_cluster", !f.upstream_cluster.is_empty()),
        ("headers", !f.headers.is_empty()),
        ("downstream_nodes", !f.downstream_nodes.is_empty()),
        ("max_active_faults", f.max_active_faults.is_some()),
        ("response_rate_limit", f.response_rate_limit.is_some()),
        ("filter_metadata", f.filter_metadata.is_some()),
    ];
    if let Some((field, _)) = unsupported.iter().find(|(_, set)| *set) {
        return Err(at
            .field(field)
            .error("not supported by this agent (fault injection takes delay and abort only)"));
    }
    let delay = f
        .delay
        .as_ref()
        .map(|d| {
            let at = at.field("delay");
            let duration = match &d.fault_delay_secifier {
                Some(FaultDelaySecifier::FixedDelay(fixed)) => duration(fixed),
                Some(FaultDelaySecifier::HeaderDelay(_)) => {
                    return Err(at
                        .field("header_delay")
                        .error("header-controlled delays are not supported by this agent"));
                }
                None => return Err(at.error("fixed_delay is required")),
            };
            Ok(Delay {
                duration,
                percentage: fraction(d.percentage.as_ref(), &at.field("percentage"))?,
            })
        })
        .transpose()?;
    let abort = f
        .abort
        .as_ref()
        .map(|a| abort(a, &at.field("abort")))
        .transpose()?;
    Ok(Fault { delay, abort })
}

fn abort(a: &FaultAbort, at: &At<'_>) -> Result<Abort, Error> {
    let status = match a.error_type {
        Some(ErrorType::HttpStatus(status)) => {
            let status = u16::try_from(status)
                .ok()
                .filter(|s| (200..600).contains(s))
                .ok_or_else(|| {
                    at.field("http_status")
                        .error(format!("{status} is not in [200, 600)"))
                })?;
            AbortStatus::Http(status)
        }
        Some(ErrorType::GrpcStatus(status)) => AbortStatus::Grpc(status),
        Some(ErrorType::HeaderAbort(_)) => {
            return Err(at
                .field("header_abort")
                .error("header-controlled aborts are not supported by this agent"));
        }
        None => return Err(at.error("http_status or grpc_status is required")),
    };
    let body = if a.response_body.is_empty() {
        ABORT_BODY
    } else {
        a.response_body.as_str()
    };
    Ok(Abort {
        status,
        percentage: fraction(a.percentage.as_ref(), &at.field("percentage"))?,
        body: Arc::from(body),
    })
}
