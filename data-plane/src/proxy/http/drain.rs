//! An HTTP connection in a drain, as Envoy's connection manager: once the
//! connection is asked to close and has begun a request, it shuts down
//! gracefully — the HTTP/1.1 response in flight carries `Connection: close`
//! and the connection closes after it (an idle keep-alive connection
//! closes at once); HTTP/2 sends GOAWAY and finishes its open streams. A
//! request that begins after the connection was asked is answered with
//! `Connection: close` (HTTP/1.x), so a connection accepted during a
//! graceful drain still serves its first request.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use http::{HeaderValue, Response, Version, header};
use tokio::sync::Notify;

use crate::proxy::drain::{self, ConnectionDrain};

/// One HTTP connection's part in the drains.
pub(super) struct HttpDrain {
    drain: Option<Arc<ConnectionDrain>>,
    /// The connection has begun a request.
    seen: AtomicBool,
    arrived: Notify,
}

impl HttpDrain {
    /// The drain of the connection the calling task serves.
    pub(super) fn current() -> Self {
        Self {
            drain: drain::current(),
            seen: AtomicBool::new(false),
            arrived: Notify::new(),
        }
    }

    /// Notes a request of `version`; whether its response must close the
    /// connection (an HTTP/1.x request after the connection was asked).
    pub(super) fn on_request(&self, version: Version) -> bool {
        if !self.seen.load(Ordering::Relaxed) && !self.seen.swap(true, Ordering::Relaxed) {
            self.arrived.notify_one();
        }
        version < Version::HTTP_2 && self.drain.as_ref().is_some_and(|d| d.is_asked())
    }

    /// Resolves when the connection must shut down gracefully: it was
    /// asked to close and has begun a request.
    pub(super) async fn shutdown_due(&self) {
        drain::notified().await;
        if !self.seen.load(Ordering::Relaxed) {
            self.arrived.notified().await;
        }
    }
}

/// Marks `response` as the connection's last (`Connection: close`).
pub(super) fn close_after<B>(response: &mut Response<B>) {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
}

#[cfg(test)]
mod tests;
