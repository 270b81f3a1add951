//! One HTTP request's or TCP connection's access log entry, filled in as
//! it goes, and written by each file logger of its listener in that
//! logger's format (`render`) to that logger's path (`sink`).

mod render;
pub mod sink;

pub use sink::flush;

use std::cell::RefCell;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use http::uri::PathAndQuery;
use http::{HeaderValue, Method};
use tokio::time::Instant;

use shared::access_log::ISTIO_TEXT_FORMAT;
use shared::egress::EgressPolicy;
use shared::workload::EndpointWorkload;

use crate::model::access_log::FileAccessLog;
use crate::model::log_format::{LogFormat, TextFormat};
use crate::upstream::{Principals, UpstreamInfo};

/// One request's or connection's log entry, filled in as it goes. Its
/// texts share the request's own bytes (header values, the URI, the
/// config's names), so filling it in copies nothing.
#[derive(Debug)]
pub struct AccessLog {
    pub start_time: SystemTime,
    pub started: Instant,
    pub method: Option<Method>,
    pub path: Option<PathAndQuery>,
    pub protocol: &'static str,
    pub response_code: u16,
    pub response_flags: &'static str,
    pub response_code_details: &'static str,
    /// `%CONNECTION_TERMINATION_DETAILS%`: why the proxy closed the
    /// connection, when it did (`tcp_session_idle_timeout`).
    pub connection_termination_details: Option<&'static str>,
    pub transport_failure_reason: String,
    pub bytes_received: u64,
    pub bytes_sent: u64,
    pub upstream_service_time: Option<u128>,
    pub forwarded_for: Option<HeaderValue>,
    pub user_agent: Option<HeaderValue>,
    pub request_id: Option<HeaderValue>,
    pub authority: Option<HeaderValue>,
    pub upstream_host: Option<SocketAddr>,
    /// The agent's end of the upstream connection (`UPSTREAM_LOCAL_ADDRESS`).
    pub upstream_local: Option<SocketAddr>,
    /// The workload behind the upstream host, if its endpoint names one.
    pub upstream_peer: Option<Arc<EndpointWorkload>>,
    /// The identities on the upstream TLS connection.
    pub upstream_principals: Option<Arc<Principals>>,
    pub upstream_cluster: Option<Arc<str>>,
    pub downstream_local: Option<SocketAddr>,
    pub downstream_remote: Option<SocketAddr>,
    pub requested_server_name: Option<Arc<str>>,
    pub route_name: Option<Arc<str>>,
    /// The client's SPIFFE id (mesh mTLS).
    pub peer_identity: Option<Arc<str>>,
    /// The egress mark of the route or filter chain that decided.
    pub egress_policy: Option<EgressPolicy>,
}

impl AccessLog {
    pub fn new(
        protocol: &'static str,
        downstream_local: Option<SocketAddr>,
        downstream_remote: Option<SocketAddr>,
    ) -> Self {
        Self {
            start_time: SystemTime::now(),
            started: Instant::now(),
            method: None,
            path: None,
            protocol,
            response_code: 0,
            response_flags: "-",
            response_code_details: "-",
            connection_termination_details: None,
            transport_failure_reason: String::new(),
            bytes_received: 0,
            bytes_sent: 0,
            upstream_service_time: None,
            forwarded_for: None,
            user_agent: None,
            request_id: None,
            authority: None,
            upstream_host: None,
            upstream_local: None,
            upstream_peer: None,
            upstream_principals: None,
            upstream_cluster: None,
            downstream_local,
            downstream_remote,
            requested_server_name: None,
            route_name: None,
            peer_identity: None,
            egress_policy: None,
        }
    }

    /// Writes the entry to each of `loggers`, in its format.
    pub fn emit(&self, loggers: &[FileAccessLog]) {
        BUFFERS.with_borrow_mut(|(line, scratch)| {
            for logger in loggers {
                line.clear();
                self.render(&logger.format, line, scratch);
                logger.sink.push(line.as_bytes());
            }
        });
    }
}

impl AccessLog {
    /// The upstream host the exchange went to, the agent's end of the
    /// connection, the host's workload and the connection's identities.
    pub fn set_upstream(&mut self, upstream: Option<UpstreamInfo>) {
        let Some(info) = upstream else {
            self.upstream_host = None;
            self.upstream_local = None;
            self.upstream_peer = None;
            self.upstream_principals = None;
            return;
        };
        self.upstream_host = Some(info.address);
        self.upstream_local = info.local;
        self.upstream_peer = info.peer;
        self.upstream_principals = info.principals;
    }

    /// `%RESPONSE_CODE_DETAILS%` as Envoy gives it: an upstream reset's
    /// details carry the transport failure reason after a `|`, spaces as `_`.
    pub fn code_details(&self) -> String {
        CodeDetails(self).to_string()
    }
}

/// The response code details with the transport failure reason folded in.
struct CodeDetails<'a>(&'a AccessLog);

impl std::fmt::Display for CodeDetails<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let details = self.0.response_code_details;
        match details.strip_suffix('}') {
            Some(open) if !self.0.transport_failure_reason.is_empty() => {
                write!(
                    f,
                    "{open}|{}}}",
                    Underscored(&self.0.transport_failure_reason)
                )
            }
            _ => f.write_str(details),
        }
    }
}

/// A text with its spaces written as `_`, as Envoy's formatter writes
/// response code details and the transport failure reason.
struct Underscored<'a>(&'a str);

impl std::fmt::Display for Underscored<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, part) in self.0.split(' ').enumerate() {
            if i > 0 {
                f.write_str("_")?;
            }
            f.write_str(part)?;
        }
        Ok(())
    }
}

thread_local! {
    /// Each thread renders its lines here (with a scratch buffer for
    /// values), to keep their allocations.
    static BUFFERS: RefCell<(String, String)> =
        RefCell::new((String::with_capacity(512), String::with_capacity(128)));
}

/// The loggers of the explicit proxy's requests: Istio's text line on
/// stdout.
pub fn istio_stdout() -> Arc<[FileAccessLog]> {
    static LOGGERS: OnceLock<Arc<[FileAccessLog]>> = OnceLock::new();
    LOGGERS
        .get_or_init(|| {
            let format = TextFormat::parse(ISTIO_TEXT_FORMAT)
                .expect("Istio's text format is one the agent renders");
            let sink = sink::open("/dev/stdout").expect("stdout is no file to open");
            Arc::new([FileAccessLog {
                format: Arc::new(LogFormat::Text(format)),
                sink,
            }])
        })
        .clone()
}

#[cfg(test)]
mod tests;
