//! `max_connection_duration`: an upstream connection that reached the
//! cluster's age limit is drained as Envoy drains it: no new request goes
//! to it, it closes once its requests are done, and at the deadline itself
//! when it has none (counted in `upstream_cx_max_duration_reached`).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::task::Context;
use std::time::Duration;

use futures::task::AtomicWaker;
use hyper_util::client::legacy::connect::{CaptureConnection, Connected};
use tokio::time::Instant;

use super::lb::HostStats;
use super::stats::ClusterCounters;

/// How often an aged connection still in use is looked at again, until it
/// is idle and closed (or the pool closed it after its last request).
const IDLE_CHECK: Duration = Duration::from_millis(50);

/// When a connection was established; hyper-util copies it into every
/// response the connection gives.
#[derive(Debug, Clone)]
struct ConnectionAge(Arc<Age>);

#[derive(Debug)]
struct Age {
    born: Instant,
    /// Its drain timer runs (started by its first response).
    watched: AtomicBool,
    /// Responses of this connection whose body has not ended.
    in_flight: AtomicUsize,
    /// Gone once the connection closed.
    alive: Weak<Lifeline>,
}

/// Lives as long as the connection it belongs to, and tells it when to
/// close: its reads then end as if the host had closed, which hyper takes
/// as the end of an idle connection.
#[derive(Debug, Default)]
pub(crate) struct Lifeline {
    closing: AtomicBool,
    waker: AtomicWaker,
}

impl Lifeline {
    /// Whether the connection must close now; if not, `cx` is woken when
    /// it must.
    pub(crate) fn poll_closing(&self, cx: &Context<'_>) -> bool {
        if self.closing.load(Ordering::Acquire) {
            return true;
        }
        self.waker.register(cx.waker());
        self.closing.load(Ordering::Acquire)
    }

    fn close(&self) {
        self.closing.store(true, Ordering::Release);
        self.waker.wake();
    }
}

/// `connected`, dated now (hyper-util asks a connection for its
/// `Connected` once, when it is established); `alive` lives as long as
/// the connection.
pub(crate) fn born(connected: Connected, alive: &Arc<Lifeline>) -> Connected {
    connected.extra(ConnectionAge(Arc::new(Age {
        born: Instant::now(),
        watched: AtomicBool::new(false),
        in_flight: AtomicUsize::new(0),
        alive: Arc::downgrade(alive),
    })))
}

/// A response of an aged-watched connection whose body has not ended: the
/// connection is not idle while it lives.
#[derive(Debug)]
pub(crate) struct InFlight(Arc<Age>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Counts `response` on the connection that gave it until the returned
/// guard drops (with the response's body), and starts the drain timer of
/// that connection, once per connection: at `max` after its birth, if it
/// is still open, it is poisoned (the pool never hands it out again and
/// drops it when its requests are done: Connection: close for HTTP/1.1,
/// GOAWAY for HTTP/2), and closed as soon as no request of `host` is
/// waiting for its response and none of its own responses is in flight.
pub(crate) fn watch(
    response: &http::Extensions,
    captured: &CaptureConnection,
    max: Duration,
    counters: &Arc<ClusterCounters>,
    host: &Arc<HostStats>,
) -> Option<InFlight> {
    let ConnectionAge(age) = response.get::<ConnectionAge>()?;
    age.in_flight.fetch_add(1, Ordering::AcqRel);
    let in_flight = InFlight(age.clone());
    if age.watched.swap(true, Ordering::Relaxed) {
        return Some(in_flight);
    }
    let (age, captured) = (age.clone(), captured.clone());
    let (counters, host) = (counters.clone(), host.clone());
    tokio::spawn(async move {
        tokio::time::sleep_until(age.born + max).await;
        if age.alive.upgrade().is_none() {
            return;
        }
        if let Some(connected) = captured.connection_metadata().as_ref() {
            connected.poison();
            counters
                .cx_max_duration_reached
                .fetch_add(1, Ordering::Relaxed);
        }
        close_when_idle(&age, &host).await;
    });
    Some(in_flight)
}

/// Closes the connection of `age` once it is idle: none of its responses
/// in flight, and no request of `host` between its checkout from the pool
/// and its response (which may be on this connection). Returns when the
/// connection is gone.
async fn close_when_idle(age: &Age, host: &HostStats) {
    loop {
        let Some(alive) = age.alive.upgrade() else {
            return;
        };
        let idle = age.in_flight.load(Ordering::Acquire) == 0
            && host.rq_active.load(Ordering::Acquire) == 0;
        if idle {
            tracing::debug!("upstream connection past max_connection_duration and idle: closing");
            alive.close();
            return;
        }
        drop(alive);
        tokio::time::sleep(IDLE_CHECK).await;
    }
}
