//! Envoy's circuit breakers for one cluster (default priority): the
//! connections, pending requests, active requests and retries it allows at
//! once, counted with atomics, and what the proxy does at each limit.
//!
//! HTTP/1.1 as Envoy's pool counts it: a request takes a connection of its
//! own for as long as it lasts (until its response body ends); with
//! `max_connections` busy, the next request waits as *pending*, and past
//! `max_pending_requests` it overflows. A request that gets a connection
//! must also fit `max_requests`. HTTP/2 multiplexes: only `max_requests`
//! applies. Every overflow is Envoy's 503 UO, counted as
//! `upstream_rq_pending_overflow` (pending requests) or
//! `upstream_rq_active_overflow` (`max_requests`). The pool's connections themselves are
//! held to `max_connections` when opened ([`Breakers::open_connection`]),
//! except the first one to a host, as Envoy allows; TCP proxying refuses a
//! connection past the limit (`upstream_cx_overflow`).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::client::legacy::connect::{Connected, Connection};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

use crate::model::cluster::CircuitBreakers;

use super::error::UpstreamError;
use super::idle::IdleWatch;
use super::stats::ClusterCounters;

/// One limited resource: how many are in use, and the limit.
#[derive(Debug)]
pub(crate) struct Resource {
    current: AtomicU64,
    max: u64,
}

impl Resource {
    fn new(max: u32) -> Self {
        Self {
            current: AtomicU64::new(0),
            max: u64::from(max),
        }
    }

    /// Takes one if the limit allows.
    fn try_acquire(&self) -> bool {
        self.current
            .fetch_update(Relaxed, Relaxed, |n| (n < self.max).then_some(n + 1))
            .is_ok()
    }

    /// Takes one whatever the limit says.
    fn acquire(&self) {
        self.current.fetch_add(1, Relaxed);
    }

    fn release(&self) {
        self.current.fetch_sub(1, Relaxed);
    }

    pub(crate) fn current(&self) -> u64 {
        self.current.load(Relaxed)
    }

    /// Envoy's `*_open` gauge: the limit is reached.
    pub(crate) fn open(&self) -> bool {
        self.current() >= self.max
    }

    /// Envoy's `remaining_*` gauge.
    pub(crate) fn remaining(&self) -> u64 {
        self.max.saturating_sub(self.current())
    }
}

/// The circuit breakers of one cluster runtime.
#[derive(Debug)]
pub(crate) struct Breakers {
    pub(crate) config: CircuitBreakers,
    /// Open (and opening) connections, HTTP and TCP.
    pub(crate) connections: Resource,
    pub(crate) pending: Resource,
    pub(crate) requests: Resource,
    pub(crate) retries: Resource,
    /// HTTP/1.1 requests holding a connection (at most `max_connections`).
    busy: Resource,
    /// Wakes waiters when a connection or a request slot is released.
    released: Notify,
    counters: Arc<ClusterCounters>,
}

impl Breakers {
    pub(crate) fn new(config: CircuitBreakers, counters: Arc<ClusterCounters>) -> Self {
        Self {
            connections: Resource::new(config.max_connections),
            pending: Resource::new(config.max_pending_requests),
            requests: Resource::new(config.max_requests),
            retries: Resource::new(config.max_retries),
            busy: Resource::new(config.max_connections),
            released: Notify::new(),
            config,
            counters,
        }
    }

    /// Admits an HTTP request to the cluster, waiting as pending while every
    /// HTTP/1.1 connection the cluster may have is busy. Holds its slots
    /// until the returned guard drops.
    pub(crate) async fn admit_request(
        self: &Arc<Self>,
        http2: bool,
        cluster: &str,
    ) -> Result<Admission, UpstreamError> {
        let overflow = |counter: &AtomicU64| {
            counter.fetch_add(1, Relaxed);
            UpstreamError::Overflow(cluster.to_string())
        };
        let mut pending = None;
        let busy = if http2 {
            false
        } else {
            loop {
                let released = self.released.notified();
                tokio::pin!(released);
                released.as_mut().enable();
                if self.busy.try_acquire() {
                    break true;
                }
                if pending.is_none() {
                    if !self.pending.try_acquire() {
                        return Err(overflow(&self.counters.rq_pending_overflow));
                    }
                    pending = Some(Slot(self.clone(), |b| &b.pending));
                    // Envoy wanted a new connection and the limit said no.
                    self.counters.cx_overflow.fetch_add(1, Relaxed);
                }
                released.await;
            }
        };
        drop(pending);
        if !self.requests.try_acquire() {
            if busy {
                self.busy.release();
                self.released.notify_waiters();
            }
            return Err(overflow(&self.counters.rq_active_overflow));
        }
        Ok(Admission {
            breakers: self.clone(),
            busy,
            in_flight: None,
        })
    }

    /// A slot for a pooled HTTP connection: within `max_connections`, or the
    /// first connection of a host (`host_connections` is 0), as Envoy's
    /// pool always allows one. Otherwise waits for a connection to close,
    /// at most `limit` (the pool usually hands out an idle one first).
    pub(crate) async fn open_connection(
        self: &Arc<Self>,
        host_connections: &Arc<AtomicU64>,
        limit: Duration,
    ) -> Option<ConnectionGuard> {
        let wait = async {
            loop {
                let released = self.released.notified();
                tokio::pin!(released);
                released.as_mut().enable();
                if self.connections.try_acquire() {
                    return;
                }
                if host_connections.load(Relaxed) == 0 {
                    self.connections.acquire();
                    return;
                }
                released.await;
            }
        };
        tokio::time::timeout(limit, wait).await.ok()?;
        host_connections.fetch_add(1, Relaxed);
        Some(ConnectionGuard {
            breakers: self.clone(),
            host_connections: Some(host_connections.clone()),
        })
    }

    /// A slot for a TCP proxy connection, or Envoy's overflow
    /// (`upstream_cx_overflow`, the downstream closed with UO).
    pub(crate) fn open_tcp_connection(
        self: &Arc<Self>,
        cluster: &str,
    ) -> Result<ConnectionGuard, UpstreamError> {
        if !self.connections.try_acquire() {
            self.counters.cx_overflow.fetch_add(1, Relaxed);
            return Err(UpstreamError::Overflow(cluster.to_string()));
        }
        Ok(ConnectionGuard {
            breakers: self.clone(),
            host_connections: None,
        })
    }

    /// A slot for one retry while it runs, or `None` past `max_retries`
    /// (counted as `upstream_rq_retry_overflow`; Envoy then stops retrying).
    pub(crate) fn try_retry(self: &Arc<Self>) -> Option<RetrySlot> {
        if self.retries.try_acquire() {
            Some(RetrySlot {
                _slot: Slot(self.clone(), |b| &b.retries),
            })
        } else {
            self.counters.rq_retry_overflow.fetch_add(1, Relaxed);
            None
        }
    }
}

/// Releases one unit of a resource when dropped.
struct Slot(Arc<Breakers>, fn(&Breakers) -> &Resource);

impl Drop for Slot {
    fn drop(&mut self) {
        (self.1)(&self.0).release();
    }
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Slot")
    }
}

/// One retry in flight (Envoy's `max_retries` counts retries at once).
#[derive(Debug)]
pub struct RetrySlot {
    _slot: Slot,
}

/// An admitted HTTP request: its request slot, and on HTTP/1.1 its
/// connection, until the response ends.
#[derive(Debug)]
pub struct Admission {
    breakers: Arc<Breakers>,
    busy: bool,
    /// The response's place on its connection, for the connection's age
    /// drain, held until the response ends.
    in_flight: Option<super::connection_age::InFlight>,
}

impl Admission {
    /// Holds `in_flight` until the response ends.
    pub(crate) fn hold(&mut self, in_flight: super::connection_age::InFlight) {
        self.in_flight = Some(in_flight);
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.breakers.requests.release();
        if self.busy {
            self.breakers.busy.release();
        }
        self.breakers.released.notify_waiters();
    }
}

/// One open upstream connection, counted until it closes.
#[derive(Debug)]
pub(crate) struct ConnectionGuard {
    breakers: Arc<Breakers>,
    /// The host's pooled HTTP connections (none for TCP proxying).
    host_connections: Option<Arc<AtomicU64>>,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.breakers.connections.release();
        if let Some(host) = &self.host_connections {
            host.fetch_sub(1, Relaxed);
        }
        self.breakers.released.notify_waiters();
    }
}

/// A connection that stays counted for as long as it is open.
#[derive(Debug)]
pub struct Tracked<S> {
    inner: S,
    _guard: ConnectionGuard,
    /// Lives as long as the connection (its age watch holds a weak one).
    alive: Arc<super::connection_age::Lifeline>,
    /// A pooled HTTP connection's idleness.
    idle: Option<IdleWatch>,
}

impl<S> Tracked<S> {
    pub(crate) fn new(inner: S, guard: ConnectionGuard) -> Self {
        Self {
            inner,
            _guard: guard,
            alive: Arc::default(),
            idle: None,
        }
    }

    /// A pooled HTTP connection, closed by the pool when idle for
    /// `idle_timeout` (`upstream_cx_idle_timeout`).
    pub(crate) fn pooled(inner: S, guard: ConnectionGuard, idle_timeout: Duration) -> Self {
        let counters = guard.breakers.counters.clone();
        Self {
            idle: Some(IdleWatch::new(idle_timeout, counters)),
            ..Self::new(inner, guard)
        }
    }

    /// Notes a poll's outcome on the idle watch: bytes moved, or the
    /// connection ended (end of stream or an error).
    fn moved(&mut self, bytes: Option<usize>) {
        if let Some(idle) = &mut self.idle {
            match bytes {
                Some(0) | None => idle.end(),
                Some(_) => idle.touch(),
            }
        }
    }

    /// Notes a write's outcome on the idle watch.
    fn wrote(&mut self, polled: &Poll<std::io::Result<usize>>) {
        match polled {
            Poll::Ready(Ok(0)) | Poll::Pending => {}
            Poll::Ready(Ok(written)) => self.moved(Some(*written)),
            Poll::Ready(Err(_)) => self.moved(None),
        }
    }

    /// The connection itself.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: Connection> Connection for Tracked<S> {
    fn connected(&self) -> Connected {
        super::connection_age::born(self.inner.connected(), &self.alive)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.alive.poll_closing(cx) {
            // Closed for its age while idle: read as the host's close.
            this.moved(None);
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        match &polled {
            Poll::Ready(Ok(())) => this.moved(Some(buf.filled().len() - before)),
            Poll::Ready(Err(_)) => this.moved(None),
            Poll::Pending => {}
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.wrote(&polled);
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.wrote(&polled);
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests;
