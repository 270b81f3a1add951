//! The connection manager's timeouts on a downstream connection: the
//! request head timeout on its bytes (`head.rs`), the stream timeouts of
//! each request (`stream.rs`) and the connection's idle timeout and
//! maximum duration (`connection.rs`).

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use crate::model::Listener;
use crate::model::http_timeouts::HttpTimeouts;
use crate::model::listener::ChainAction;
use crate::proxy::access_log::AccessLog;
use crate::proxy::stats::DownstreamStats;

mod connection;
mod head;
mod stream;

pub(super) use connection::{Shutdown, StreamGuard, Streams, due};
pub(super) use head::HeadTimeoutIo;
pub(super) use stream::{Activity, RequestBody, TimedResponse, activity, expiry};

use super::Downstream;

/// The timeouts of a connection in explicit proxy mode, where each request
/// finds its own connection manager: those of the accepting listener's
/// first HTTP connection manager, else Envoy's defaults with the stream
/// idle timeout off, as istiod sets it on every connection manager.
pub fn explicit_proxy_timeouts(accepting: &Listener) -> HttpTimeouts {
    accepting
        .filter_chains
        .iter()
        .chain(&accepting.default_chain)
        .find_map(|chain| match &chain.action {
            ChainAction::Http(hcm) => Some(hcm.timeouts),
            ChainAction::Tcp(_) => None,
        })
        .unwrap_or(HttpTimeouts {
            stream_idle: None,
            ..HttpTimeouts::default()
        })
}

/// What a request head timeout does besides the 408: counts
/// `downstream_rq_header_timeout` and logs the request as Envoy does
/// (408, `request_header_timeout`).
pub(super) fn on_head_timeout(
    downstream: &Arc<Downstream>,
    stats: Option<Arc<DownstreamStats>>,
) -> Box<dyn FnOnce() + Send> {
    let downstream = downstream.clone();
    Box::new(move || {
        if let Some(stats) = &stats {
            stats.timeouts.rq_header_timeout.fetch_add(1, Relaxed);
        }
        tracing::debug!(remote = ?downstream.remote, "request head timed out");
        let mut log = AccessLog::new("HTTP/1.1", downstream.local, downstream.remote);
        log.response_code = 408;
        log.response_code_details = "request_header_timeout";
        log.bytes_sent = u64::try_from(head::REPLY_BODY_LEN).unwrap_or(0);
        log.requested_server_name = downstream.server_name.clone();
        log.peer_identity = downstream.peer_identity.clone();
        downstream.targets.emit_http(&log);
    })
}

/// Counts a connection shut down by its own timeout.
pub(super) fn count_shutdown(shutdown: Shutdown, stats: Option<&DownstreamStats>) {
    tracing::debug!(?shutdown, "closing the downstream connection");
    if let Some(stats) = stats {
        let counter = match shutdown {
            Shutdown::Idle => &stats.timeouts.cx_idle_timeout,
            Shutdown::MaxDuration => &stats.timeouts.cx_max_duration_reached,
        };
        counter.fetch_add(1, Relaxed);
    }
}

#[cfg(test)]
mod tests;
