//! The timeouts of one stream, as Envoy's connection manager runs them
//! once the request head is in: `stream_idle_timeout` (no body bytes
//! either way for that long), `request_timeout` (the request body not
//! complete in time) and `max_stream_duration`. Before the response starts
//! the stream is answered with a local reply (408, or 504 once the request
//! is complete, as Envoy's `maybeRequestTimeoutCode`); after, the response
//! is reset.

use std::future::{Future, pending};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use super::connection::StreamGuard;
use crate::model::http_timeouts::HttpTimeouts;
use crate::proxy::respond::LocalReply;
use crate::proxy::stats::TimeoutStats;

/// When a stream last saw body bytes, and whether its request is complete.
pub(in crate::proxy::http) struct Activity {
    start: Instant,
    /// Nanoseconds from `start` to the last activity.
    last: AtomicU64,
    request_complete: AtomicBool,
}

impl Activity {
    fn new(request_complete: bool) -> Self {
        Self {
            start: Instant::now(),
            last: AtomicU64::new(0),
            request_complete: AtomicBool::new(request_complete),
        }
    }

    fn touch(&self) {
        let nanos = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.last.store(nanos, Relaxed);
    }

    fn last(&self) -> Instant {
        self.start + Duration::from_nanos(self.last.load(Relaxed))
    }

    pub(in crate::proxy::http) fn request_complete(&self) -> bool {
        self.request_complete.load(Relaxed)
    }
}

/// Which stream timeout ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(in crate::proxy::http) enum Expired {
    #[error("stream idle timeout")]
    Idle,
    #[error("request timeout")]
    Request,
    #[error("max stream duration reached")]
    MaxDuration,
}

impl Expired {
    /// Envoy's local reply for this timeout before the response started:
    /// 408, or 504 when the whole request had arrived.
    pub(in crate::proxy::http) fn reply(self, request_complete: bool) -> LocalReply {
        let status = if request_complete {
            StatusCode::GATEWAY_TIMEOUT
        } else {
            StatusCode::REQUEST_TIMEOUT
        };
        let (body, flags, details) = match self {
            Self::Idle => ("stream timeout", "SI", "stream_idle_timeout"),
            Self::Request => ("request timeout", "-", "request_overall_timeout"),
            Self::MaxDuration => ("downstream duration timeout", "-", "max_duration_timeout"),
        };
        LocalReply {
            status,
            body: body.into(),
            flags,
            details,
            transport_failure: String::new(),
        }
    }

    /// Counts it as Envoy does.
    pub(in crate::proxy::http) fn count(self, stats: &TimeoutStats) {
        let counter = match self {
            Self::Idle => &stats.rq_idle_timeout,
            Self::Request => &stats.rq_timeout,
            Self::MaxDuration => &stats.rq_max_duration_reached,
        };
        counter.fetch_add(1, Relaxed);
    }
}

/// The stream timers of a request whose head has arrived; `None` when the
/// connection manager sets none.
pub(in crate::proxy::http) fn activity(
    timeouts: &HttpTimeouts,
    request_complete: bool,
) -> Option<Arc<Activity>> {
    timeouts
        .watches_streams()
        .then(|| Arc::new(Activity::new(request_complete)))
}

/// The earliest deadline of the stream and the timeout it belongs to.
fn next_deadline(timeouts: &HttpTimeouts, activity: &Activity) -> Option<(Instant, Expired)> {
    let idle = timeouts
        .stream_idle
        .map(|idle| (activity.last() + idle, Expired::Idle));
    let request = timeouts
        .request
        .filter(|_| !activity.request_complete())
        .map(|timeout| (activity.start + timeout, Expired::Request));
    let max = timeouts
        .max_stream_duration
        .map(|max| (activity.start + max, Expired::MaxDuration));
    [idle, request, max]
        .into_iter()
        .flatten()
        .min_by_key(|(deadline, _)| *deadline)
}

/// Resolves with the first of the stream's timeouts to run out (never when
/// none is set).
pub(in crate::proxy::http) async fn expiry(
    timeouts: &HttpTimeouts,
    activity: &Activity,
) -> Expired {
    loop {
        let Some((deadline, _)) = next_deadline(timeouts, activity) else {
            return pending().await;
        };
        tokio::time::sleep_until(deadline).await;
        if let Some((deadline, expired)) = next_deadline(timeouts, activity)
            && deadline <= Instant::now()
        {
            return expired;
        }
    }
}

/// The request body, noting its activity and its end.
pub(in crate::proxy::http) struct RequestBody<B> {
    inner: B,
    activity: Option<Arc<Activity>>,
}

impl<B> RequestBody<B> {
    pub(in crate::proxy::http) fn new(inner: B, activity: Option<Arc<Activity>>) -> Self {
        Self { inner, activity }
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for RequestBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Some(activity) = &self.activity {
            match &polled {
                Poll::Ready(Some(Ok(_))) => {
                    activity.touch();
                    if self.inner.is_end_stream() {
                        activity.request_complete.store(true, Relaxed);
                    }
                }
                Poll::Ready(None) => activity.request_complete.store(true, Relaxed),
                _ => {}
            }
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

/// The response body: holds its stream open until it is sent, and resets
/// it when the stream idles or outlives `max_stream_duration`.
pub(in crate::proxy::http) struct TimedResponse<B> {
    inner: B,
    _stream: StreamGuard,
    watch: Option<Watch>,
}

/// The timers of a response body that has some.
struct Watch {
    timeouts: HttpTimeouts,
    activity: Arc<Activity>,
    stats: Option<Arc<crate::proxy::stats::DownstreamStats>>,
    sleep: Pin<Box<Sleep>>,
}

impl<B> TimedResponse<B> {
    pub(in crate::proxy::http) fn new(
        inner: B,
        stream: StreamGuard,
        timers: Option<(HttpTimeouts, Arc<Activity>)>,
        stats: Option<Arc<crate::proxy::stats::DownstreamStats>>,
    ) -> Self {
        let watch = timers.and_then(|(mut timeouts, activity)| {
            // The request timeout ends with the request, before any response
            // Envoy sends; it is not watched here.
            timeouts.request = None;
            let (deadline, _) = next_deadline(&timeouts, &activity)?;
            Some(Watch {
                timeouts,
                activity,
                stats,
                sleep: Box::pin(tokio::time::sleep_until(deadline)),
            })
        });
        Self {
            inner,
            _stream: stream,
            watch,
        }
    }
}

/// A response reset by a stream timeout.
pub(in crate::proxy::http) type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<B> Body for TimedResponse<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(watch) = &this.watch {
                    watch.activity.touch();
                }
                return Poll::Ready(Some(Ok(frame)));
            }
            Poll::Ready(other) => return Poll::Ready(other.map(|r| r.map_err(Into::into))),
            Poll::Pending => {}
        }
        let Some(watch) = &mut this.watch else {
            return Poll::Pending;
        };
        loop {
            if watch.sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            match next_deadline(&watch.timeouts, &watch.activity) {
                Some((deadline, expired)) if deadline <= Instant::now() => {
                    if let Some(stats) = &watch.stats {
                        expired.count(&stats.timeouts);
                    }
                    tracing::debug!(%expired, "resetting the response");
                    return Poll::Ready(Some(Err(Box::new(expired))));
                }
                Some((deadline, _)) => watch.sleep.as_mut().reset(deadline),
                None => return Poll::Pending,
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests;
