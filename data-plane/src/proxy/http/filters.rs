//! The HTTP filters before the router, run on one request in the
//! connection manager's order once its route is known: fault injection
//! (`fault.rs`) and CORS (`cors.rs`). A filter may stop the request with
//! an answer of its own; what the CORS filter grants is added to whatever
//! response the request gets afterwards.

use std::sync::atomic::Ordering;

use http::header::{self, HeaderValue};
use http::request::Parts;
use http::{Method, Response};

use crate::model::http_filters::{FilterConfig, FilterKind, HttpFilter};
use crate::model::route::Route;
use crate::proxy::respond::LocalReply;

use super::exchange::Exchange;
use super::{ResponseBody, cors, fault};

/// What the filters read of a request, taken from its head as it came
/// (before the route's header edits).
pub(super) struct FilterRequest {
    pub(super) origin: Option<HeaderValue>,
    pub(super) options: bool,
    pub(super) request_method: Option<HeaderValue>,
    pub(super) request_headers: Option<HeaderValue>,
    pub(super) private_network: bool,
    pub(super) grpc: bool,
}

impl FilterRequest {
    /// The facts of `head`, or `None` (and no work) when the connection
    /// manager runs no filter.
    pub(super) fn read(filters: &[HttpFilter], head: &Parts) -> Option<Self> {
        if filters.is_empty() {
            return None;
        }
        let headers = &head.headers;
        Some(Self {
            origin: headers.get(header::ORIGIN).cloned(),
            options: head.method == Method::OPTIONS,
            request_method: headers.get(header::ACCESS_CONTROL_REQUEST_METHOD).cloned(),
            request_headers: headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS).cloned(),
            private_network: headers
                .get("access-control-request-private-network")
                .is_some_and(|v| v.as_bytes() == b"true"),
            grpc: headers
                .get(header::CONTENT_TYPE)
                .is_some_and(|v| is_grpc_content_type(v.as_bytes())),
        })
    }
}

/// Envoy's test for a gRPC request: `application/grpc`, alone or followed
/// by `+…` or `;…`.
fn is_grpc_content_type(value: &[u8]) -> bool {
    value
        .strip_prefix(b"application/grpc")
        .is_some_and(|rest| rest.is_empty() || rest[0] == b'+' || rest[0] == b';')
}

/// A filter's answer, ending the request before the router.
pub(super) enum Stop {
    Reply(LocalReply),
    Respond(Response<ResponseBody>),
}

/// Runs `filters` on a request that matched `route` (if any).
pub(super) async fn decode(
    filters: &[HttpFilter],
    route: Option<&Route>,
    request: &FilterRequest,
    exchange: &mut Exchange<'_>,
) -> Option<Stop> {
    for filter in filters {
        let config = route.and_then(|route| route.filter_configs.get(&filter.name));
        let stats = exchange.stats.as_deref().map(|stats| &stats.filters);
        match &filter.kind {
            FilterKind::Fault(own) => {
                if let Some(stats) = stats {
                    stats.fault.store(true, Ordering::Relaxed);
                }
                let fault = match config {
                    Some(FilterConfig::Fault(fault)) => Some(fault),
                    _ => own.as_ref(),
                };
                if let Some(fault) = fault
                    && let Some(stop) = fault::inject(fault, request.grpc, exchange).await
                {
                    return Some(stop);
                }
            }
            FilterKind::Cors => {
                if let Some(stats) = stats {
                    stats.cors.store(true, Ordering::Relaxed);
                }
                if let Some(FilterConfig::Cors(policy)) = config
                    && let Some(preflight) = cors::decode(policy, request, exchange)
                {
                    return Some(Stop::Respond(preflight));
                }
            }
        }
    }
    None
}

#[cfg(test)]
pub(super) mod test_support;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_requests_are_told_by_their_content_type() {
        assert!(is_grpc_content_type(b"application/grpc"));
        assert!(is_grpc_content_type(b"application/grpc+proto"));
        assert!(is_grpc_content_type(b"application/grpc;charset=utf-8"));
        assert!(!is_grpc_content_type(b"application/grpc-web"));
        assert!(!is_grpc_content_type(b"application/json"));
    }
}
