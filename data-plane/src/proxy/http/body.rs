//! Body wrappers: counting the response bytes an upstream sends, and
//! writing the access log once the response body has been sent.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use crate::access_log_service::LogTargets;
use crate::proxy::access_log::AccessLog;
use crate::proxy::stats::ClusterStats;
use crate::upstream::Admission;

use super::ResponseBody;

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

/// Writes the access log when the response body has been sent (or the
/// client went away), with the bytes sent.
pub(super) struct LoggedBody {
    pub(super) inner: ResponseBody,
    pub(super) log: Option<AccessLog>,
    pub(super) targets: Arc<LogTargets>,
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
            }
            Poll::Ready(None) | Poll::Ready(Some(Err(_))) => {
                if let Some(log) = self.log.take() {
                    self.targets.emit_http(&log);
                }
            }
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
        if let Some(log) = self.log.take() {
            self.targets.emit_http(&log);
        }
    }
}
