//! One request's bookkeeping: its access log entry, filled in as the
//! request goes, and the counters of the listener that took it; ending the
//! exchange records the response (Envoy's and Istio's counters) and hands
//! the log to the response body.

use std::sync::Arc;

use http::request::Parts;
use http::{Response, header};
use http_body_util::BodyExt;

use crate::access_log_service::LogTargets;
use crate::model::server_header::SharedServerHeader;
use crate::proxy::ProxyContext;
use crate::proxy::access_log::AccessLog;
use crate::proxy::respond::LocalReply;
use crate::proxy::stats::istio::Protocol;
use crate::proxy::stats::{DownstreamStats, Stats};

use super::body::{LoggedBody, count_request, grpc_status};
use super::cors::Grant;
use super::fault::with_delay_injected;
use super::headers::authority;
use super::{Downstream, ResponseBody};

pub(super) struct Exchange<'a> {
    pub(super) context: &'a ProxyContext,
    pub(super) log: AccessLog,
    /// The counters of the HTTP connection manager, once the request has
    /// found its route configuration.
    pub(super) stats: Option<Arc<DownstreamStats>>,
    /// Where the request is logged: its connection's targets, or in
    /// explicit proxy mode those of the route configuration it found.
    pub(super) targets: Arc<LogTargets>,
    /// The fault filter delayed the request (flag DI on whatever answers it).
    pub(super) delay_injected: bool,
    /// What the CORS filter granted the request's origin, set on whatever
    /// response it gets.
    pub(super) cors: Option<Grant>,
    /// The connection manager's `server` header rule (Envoy's default
    /// until the request finds its connection manager's routes).
    pub(super) server_header: SharedServerHeader,
    /// The router adds no `x-envoy-*` headers (`suppress_envoy_headers`).
    pub(super) suppress_envoy_headers: bool,
    /// `request_protocol`: gRPC by the request's `content-type`.
    protocol: Protocol,
}

impl<'a> Exchange<'a> {
    /// Starts the exchange of a request with `head`, whose body has
    /// `bytes_received` bytes (0 when not known up front).
    pub(super) fn start(
        context: &'a ProxyContext,
        downstream: &'a Downstream,
        head: &Parts,
        bytes_received: u64,
    ) -> Self {
        let mut log = AccessLog::new(protocol(head.version), downstream.local, downstream.remote);
        log.method = Some(head.method.clone());
        log.path = head.uri.path_and_query().cloned();
        log.authority = authority(&head.uri, &head.headers);
        log.user_agent = head.headers.get(header::USER_AGENT).cloned();
        log.forwarded_for = head.headers.get("x-forwarded-for").cloned();
        log.bytes_received = bytes_received;
        log.peer_identity = downstream.peer_identity.clone();
        log.requested_server_name = downstream.server_name.clone();
        Self {
            context,
            log,
            stats: None,
            targets: downstream.targets.clone(),
            delay_injected: false,
            cors: None,
            server_header: SharedServerHeader::default(),
            suppress_envoy_headers: false,
            protocol: request_protocol(&head.headers),
        }
    }

    /// Ends the exchange with a locally generated answer.
    pub(super) fn reply(mut self, reply: LocalReply) -> Response<ResponseBody> {
        self.log.response_flags = reply.flags;
        self.log.response_code_details = reply.details;
        self.log.transport_failure_reason = reply.transport_failure.clone();
        let mut response = reply.into_response();
        if self.suppress_envoy_headers {
            response.headers_mut().remove("x-envoy-overloaded");
        }
        self.respond(response)
    }

    /// Ends the exchange with `response`: counts it and writes the access
    /// log when its body has been sent.
    pub(super) fn respond(
        mut self,
        mut response: Response<ResponseBody>,
    ) -> Response<ResponseBody> {
        self.record(&mut response);
        let grpc_status = grpc_status(response.headers());
        let log = self.log;
        let targets = self.targets;
        let stats = self.context.stats.clone();
        let protocol = self.protocol;
        response.map(|body| {
            LoggedBody {
                inner: body,
                log: Some(log),
                targets,
                stats,
                protocol,
                grpc_status,
            }
            .boxed()
        })
    }

    /// Ends the exchange of an upgraded stream with its 101 `response`:
    /// counts it and gives its log, written when the session ends.
    pub(super) fn upgraded(
        mut self,
        response: &mut Response<ResponseBody>,
    ) -> (AccessLog, Arc<LogTargets>) {
        self.record(response);
        count_request(&self.context.stats, &self.log, self.protocol, None);
        (self.log, self.targets)
    }

    /// Puts the exchange's headers on `response` and counts it.
    fn record(&mut self, response: &mut Response<ResponseBody>) {
        if let Some(grant) = &self.cors {
            grant.apply(response.headers_mut());
        }
        self.server_header.apply(response.headers_mut());
        if self.delay_injected {
            self.log.response_flags = with_delay_injected(self.log.response_flags);
        }
        self.log.response_code = response.status().as_u16();
        if let Some(stats) = &self.stats {
            Stats::record_downstream_response(stats, self.log.response_code);
        }
    }
}

/// Istio's `request_protocol` of a request with `headers`: `grpc` when its
/// `content-type` is `application/grpc` or a subtype of it.
fn request_protocol(headers: &http::HeaderMap) -> Protocol {
    let grpc = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value
                .strip_prefix("application/grpc")
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['+', ';']))
        });
    if grpc { Protocol::Grpc } else { Protocol::Http }
}

fn protocol(version: http::Version) -> &'static str {
    match version {
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_2 => "HTTP/2",
        _ => "HTTP/1.1",
    }
}
