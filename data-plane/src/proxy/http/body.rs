//! Body wrappers: counting the response bytes an upstream sends, and
//! ending the exchange once the response body has been handed on: Istio's
//! request metrics and the access log.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use crate::access_log_service::LogTargets;
use crate::proxy::access_log::AccessLog;
use crate::proxy::stats::istio::{self, Destination, Protocol, host};
use crate::proxy::stats::{ClusterStats, Stats};
use crate::upstream::Admission;

use super::ResponseBody;
use super::headers::text;

/// Counts response bytes received from the upstream.
pub(super) struct CountingBody {
    pub(super) inner: Incoming,
    pub(super) stats: Arc<ClusterStats>,
    /// The request's circuit breaker slots, held until the response ends.
    pub(super) _admission: Option<Arc<Admission>>,
}

impl Body for CountingBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            self.stats
                .bytes_received
                .fetch_add(data.len() as u64, Ordering::Relaxed);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Ends the exchange when the response body's last frame has been handed
/// on (or the client went away): counts the request in Istio's metrics,
/// with the bytes sent and the `grpc-status` of its trailers, and writes
/// the access log.
pub(super) struct LoggedBody {
    pub(super) inner: ResponseBody,
    pub(super) log: Option<AccessLog>,
    pub(super) targets: Arc<LogTargets>,
    pub(super) stats: Arc<Stats>,
    pub(super) protocol: Protocol,
    /// The response's `grpc-status`, from its headers or trailers.
    pub(super) grpc_status: Option<u8>,
}

impl LoggedBody {
    fn finish(&mut self) {
        let Some(log) = self.log.take() else {
            return;
        };
        count_request(&self.stats, &log, self.protocol, self.grpc_status);
        if !self.targets.is_empty() {
            self.targets.emit_http(&log);
        }
    }
}

/// Counts the request `log` describes in Istio's metrics, as it stands.
pub(super) fn count_request(
    stats: &Stats,
    log: &AccessLog,
    protocol: Protocol,
    grpc_status: Option<u8>,
) {
    stats.istio.request(&istio::Request {
        destination: Destination::of(
            log.upstream_cluster.as_deref(),
            host(text(log.authority.as_ref())),
            log.egress_policy,
        ),
        peer: istio::Peer {
            workload: log.upstream_peer.as_ref(),
            principals: log.upstream_principals.as_ref(),
        },
        protocol,
        response_code: log.response_code,
        grpc_status,
        response_flags: log.response_flags,
        egress_policy: log.egress_policy,
        duration_ms: log.started.elapsed().as_secs_f64() * 1000.0,
        request_bytes: log.bytes_received,
        response_bytes: log.bytes_sent,
    });
}

/// The `grpc-status` of `headers` (headers or trailers), 0 to 16.
pub(super) fn grpc_status(headers: &http::HeaderMap) -> Option<u8> {
    headers
        .get("grpc-status")?
        .to_str()
        .ok()?
        .parse()
        .ok()
        .filter(|status| *status <= 16)
}

impl Body for LoggedBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(data), Some(log)) = (frame.data_ref(), self.log.as_mut()) {
                    log.bytes_sent += data.len() as u64;
                }
                if let Some(status) = frame.trailers_ref().and_then(grpc_status) {
                    self.grpc_status = Some(status);
                }
                if self.inner.is_end_stream() {
                    self.finish();
                }
            }
            Poll::Ready(None) | Poll::Ready(Some(Err(_))) => self.finish(),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for LoggedBody {
    fn drop(&mut self) {
        self.finish();
    }
}
