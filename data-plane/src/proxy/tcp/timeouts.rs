//! A proxied TCP connection's timeouts, as Envoy's TCP proxy keeps them:
//! the idle timer restarts whenever bytes move either way and, when it
//! fires, both sides are closed (stat `idle_timeout`, termination details
//! `tcp_session_idle_timeout`, no flag); the maximum duration counts from
//! the connection's start and closes both sides with flag DT (stat
//! `max_downstream_connection_duration`, details
//! `max_connection_duration_reached`). A TCP proxy passes a side's end on
//! as a half close; an upgraded HTTP stream (WebSocket) ends with its
//! client, as Envoy's connection manager resets the stream when the
//! downstream closes.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

/// Why the copy ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Both sides closed, or one failed.
    Closed,
    /// Nothing moved either way for the idle timeout.
    IdleTimeout,
    /// The connection lived as long as `max_downstream_connection_duration`.
    MaxDuration,
}

impl Ending {
    /// `%CONNECTION_TERMINATION_DETAILS%`, as Envoy's close reasons.
    pub fn termination_details(self) -> Option<&'static str> {
        match self {
            Ending::Closed => None,
            Ending::IdleTimeout => Some("tcp_session_idle_timeout"),
            Ending::MaxDuration => Some("max_connection_duration_reached"),
        }
    }

    /// The response flag Envoy sets: DT for the maximum duration only.
    pub fn response_flag(self) -> Option<&'static str> {
        (self == Ending::MaxDuration).then_some("DT")
    }
}

/// What a copy moved and how it ended.
#[derive(Debug)]
pub struct Copied {
    /// Bytes read from the downstream connection.
    pub received: u64,
    /// Bytes written to the downstream connection.
    pub sent: u64,
    pub ending: Ending,
    /// Whether the downstream connection ended its side before the
    /// upstream's end was passed to it.
    pub downstream_ended_first: bool,
    /// The error that ended the copy, if one did.
    pub error: Option<std::io::Error>,
}

/// A proxied connection's limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub idle: Option<Duration>,
    pub max_duration: Option<Duration>,
    /// When the connection was accepted.
    pub started: Instant,
    /// The downstream's end closes both sides instead of being passed on
    /// as a half close.
    pub downstream_end_closes: bool,
}

/// Copies both ways between `downstream` and `upstream` (a side's end is
/// passed on as a half close, unless the downstream's closes both) until
/// both have closed or a limit is reached.
pub async fn copy<D, U>(downstream: &mut D, upstream: &mut U, limits: Limits) -> Copied
where
    D: AsyncRead + AsyncWrite + Unpin + ?Sized,
    U: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    let meter = Meter::new(limits.started);
    let mut metered = Metered {
        inner: downstream,
        meter: &meter,
    };
    let (ending, error) = tokio::select! {
        copied = tokio::io::copy_bidirectional(&mut metered, upstream) => (Ending::Closed, copied.err()),
        () = idle_expired(&meter, limits.idle) => (Ending::IdleTimeout, None),
        () = deadline(limits.started, limits.max_duration) => (Ending::MaxDuration, None),
        () = downstream_end(&meter, limits.downstream_end_closes) => (Ending::Closed, None),
    };
    Copied {
        received: meter.received.load(Relaxed),
        sent: meter.sent.load(Relaxed),
        ending,
        downstream_ended_first: meter.downstream_ended_first.load(Relaxed),
        error,
    }
}

/// Resolves once nothing has moved for `idle`; never without one. The
/// timer wakes once per idle period, not per byte.
async fn idle_expired(meter: &Meter, idle: Option<Duration>) {
    let Some(idle) = idle else {
        return std::future::pending().await;
    };
    loop {
        let expiry = meter.last_activity() + idle;
        if Instant::now() >= expiry {
            return;
        }
        tokio::time::sleep_until(expiry).await;
    }
}

/// Resolves once the downstream's end is read, if that closes both sides;
/// never otherwise.
async fn downstream_end(meter: &Meter, closes: bool) {
    if !closes {
        return std::future::pending().await;
    }
    meter.downstream_end.notified().await;
}

/// Resolves `max` after `started`; never without a maximum.
async fn deadline(started: Instant, max: Option<Duration>) {
    match max {
        Some(max) => tokio::time::sleep_until(started + max).await,
        None => std::future::pending().await,
    }
}

/// Bytes moved on the downstream connection and when they last moved.
struct Meter {
    started: Instant,
    received: AtomicU64,
    sent: AtomicU64,
    /// Nanoseconds from `started` to the last read or write.
    last: AtomicU64,
    /// The downstream's end was read before the upstream's was written.
    downstream_ended_first: AtomicBool,
    /// The upstream's end was passed on to the downstream.
    upstream_ended: AtomicBool,
    /// Told once the downstream's end is read.
    downstream_end: Notify,
}

impl Meter {
    fn new(started: Instant) -> Self {
        Self {
            started,
            received: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            last: AtomicU64::new(nanos_since(started)),
            downstream_ended_first: AtomicBool::new(false),
            upstream_ended: AtomicBool::new(false),
            downstream_end: Notify::new(),
        }
    }

    fn touch(&self) {
        self.last.store(nanos_since(self.started), Relaxed);
    }

    fn last_activity(&self) -> Instant {
        self.started + Duration::from_nanos(self.last.load(Relaxed))
    }
}

fn nanos_since(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// The downstream connection, counting what moves through it. Every byte
/// proxied either way is read from it or written to it.
struct Metered<'a, S: ?Sized> {
    inner: &'a mut S,
    meter: &'a Meter,
}

impl<S: AsyncRead + Unpin + ?Sized> AsyncRead for Metered<'_, S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let room = buf.remaining() > 0;
        let polled = Pin::new(&mut *this.inner).poll_read(cx, buf);
        let read = buf.filled().len() - before;
        if read > 0 {
            this.meter.received.fetch_add(read as u64, Relaxed);
            this.meter.touch();
        } else if room && matches!(polled, Poll::Ready(Ok(()))) {
            if !this.meter.upstream_ended.load(Relaxed) {
                this.meter.downstream_ended_first.store(true, Relaxed);
            }
            this.meter.downstream_end.notify_one();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin + ?Sized> AsyncWrite for Metered<'_, S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut *this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(written)) = polled
            && written > 0
        {
            this.meter.sent.fetch_add(written as u64, Relaxed);
            this.meter.touch();
        }
        polled
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        this.meter.upstream_ended.store(true, Relaxed);
        Pin::new(&mut *this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests;
