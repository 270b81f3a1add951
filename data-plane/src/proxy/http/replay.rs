//! A request body kept for retries, as Envoy's router keeps it: each
//! attempt is sent what was read so far, then the rest as it comes, while
//! a copy is kept up to the buffer limit. Past the limit the copy is
//! dropped and the request can no longer be retried
//! (`retry_or_shadow_abandoned`); read on during a retry's backoff, it
//! ends the request with Envoy's 507.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body as _, Frame, SizeHint};
use http_body_util::BodyExt;
use parking_lot::Mutex;

use crate::proxy::stats::ClusterStats;
use crate::upstream::Body;

/// The buffer limit of a listener's connections, which caps what the
/// router keeps of a request body for retries.
pub(super) const DEFAULT_BUFFER_LIMIT: usize = crate::model::listener::BUFFER_LIMIT_BYTES;

type Polled = Poll<Option<Result<Frame<Bytes>, hyper::Error>>>;

/// A downstream request body shared by the attempts of one request.
pub(super) struct Replay {
    shared: Arc<Mutex<Shared>>,
}

struct Shared {
    source: Body,
    /// The data read so far, while it fits under `limit`.
    kept: Vec<Bytes>,
    kept_bytes: usize,
    limit: usize,
    trailers: Option<HeaderMap>,
    ended: bool,
    /// The body passed the limit: what was sent cannot be sent again.
    abandoned: bool,
    /// The downstream body failed: it cannot be sent again either.
    broken: bool,
    /// The attempt that may read on (0 while none runs).
    current: u64,
    stats: Arc<ClusterStats>,
}

impl Replay {
    pub(super) fn new(source: Body, limit: usize, stats: Arc<ClusterStats>) -> Self {
        Self {
            shared: Arc::new(Mutex::new(Shared {
                source,
                kept: Vec::new(),
                kept_bytes: 0,
                limit,
                trailers: None,
                ended: false,
                abandoned: false,
                broken: false,
                current: 0,
                stats,
            })),
        }
    }

    /// The body of the next attempt. An earlier attempt's body stops there:
    /// it never yields again, as Envoy resets an attempt it retries.
    pub(super) fn attempt(&self) -> Body {
        let generation = {
            let mut shared = self.shared.lock();
            shared.current += 1;
            shared.current
        };
        AttemptBody {
            shared: self.shared.clone(),
            generation,
            next: 0,
            trailers_sent: false,
        }
        .boxed()
    }

    /// Whether the body can be sent again: it stayed under the limit and
    /// the downstream did not fail it.
    pub(super) fn replayable(&self) -> bool {
        let shared = self.shared.lock();
        !shared.abandoned && !shared.broken
    }

    /// Reads the body on while no attempt runs (a retry's backoff), keeping
    /// it for the next attempt; resolves only if it passes the limit.
    pub(super) async fn passes_limit(&self) {
        self.shared.lock().current = 0;
        std::future::poll_fn(|cx| {
            let mut shared = self.shared.lock();
            loop {
                if shared.abandoned {
                    return Poll::Ready(());
                }
                if shared.ended || shared.broken {
                    return Poll::Pending;
                }
                match shared.poll_source(cx) {
                    Poll::Ready(Some(Ok(_))) => {}
                    Poll::Ready(_) | Poll::Pending => {
                        return if shared.abandoned {
                            Poll::Ready(())
                        } else {
                            Poll::Pending
                        };
                    }
                }
            }
        })
        .await;
    }
}

impl Shared {
    /// Reads the next frame of the downstream body, keeping its data for
    /// the next attempt while it fits under the limit.
    fn poll_source(&mut self, cx: &mut Context<'_>) -> Polled {
        if self.ended {
            return Poll::Ready(None);
        }
        let polled = Pin::new(&mut self.source).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.keep(data);
                } else if let Some(trailers) = frame.trailers_ref() {
                    self.trailers = Some(trailers.clone());
                }
            }
            Poll::Ready(Some(Err(_))) => self.broken = true,
            Poll::Ready(None) => self.ended = true,
            Poll::Pending => {}
        }
        polled
    }

    fn keep(&mut self, data: &Bytes) {
        if self.abandoned {
            return;
        }
        if self.kept_bytes + data.len() > self.limit {
            tracing::debug!(
                limit = self.limit,
                "request body past the buffer limit: no retry"
            );
            self.abandoned = true;
            self.kept = Vec::new();
            self.kept_bytes = 0;
            self.stats
                .retry_or_shadow_abandoned
                .fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.kept_bytes += data.len();
        self.kept.push(data.clone());
    }
}

/// One attempt's view of the shared body.
struct AttemptBody {
    shared: Arc<Mutex<Shared>>,
    generation: u64,
    /// The next kept chunk this attempt sends.
    next: usize,
    trailers_sent: bool,
}

impl http_body::Body for AttemptBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Polled {
        let this = &mut *self;
        let mut shared = this.shared.lock();
        if shared.current != this.generation {
            // A later attempt (or the backoff before it) reads on.
            return Poll::Pending;
        }
        if let Some(data) = shared.kept.get(this.next) {
            this.next += 1;
            return Poll::Ready(Some(Ok(Frame::data(data.clone()))));
        }
        if shared.ended {
            return match shared.trailers.clone() {
                Some(trailers) if !this.trailers_sent => {
                    this.trailers_sent = true;
                    Poll::Ready(Some(Ok(Frame::trailers(trailers))))
                }
                _ => Poll::Ready(None),
            };
        }
        let polled = shared.poll_source(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if frame.is_data() && !shared.abandoned {
                this.next = shared.kept.len();
            } else if frame.is_trailers() {
                this.trailers_sent = true;
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        let shared = self.shared.lock();
        shared.ended
            && self.next >= shared.kept.len()
            && (self.trailers_sent || shared.trailers.is_none())
    }

    fn size_hint(&self) -> SizeHint {
        let shared = self.shared.lock();
        let kept: usize = shared.kept.iter().skip(self.next).map(Bytes::len).sum();
        let kept = u64::try_from(kept).unwrap_or(u64::MAX);
        let rest = if shared.ended {
            SizeHint::with_exact(0)
        } else {
            shared.source.size_hint()
        };
        let mut hint = SizeHint::new();
        hint.set_lower(rest.lower().saturating_add(kept));
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper.saturating_add(kept));
        }
        hint
    }
}

#[cfg(test)]
mod tests;
