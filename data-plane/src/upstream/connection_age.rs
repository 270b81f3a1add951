//! `max_connection_duration`: an upstream connection that reached the
//! cluster's age limit is drained as Envoy drains it: no new request goes
//! to it, and it closes once its requests are done (counted in
//! `upstream_cx_max_duration_reached`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use hyper_util::client::legacy::connect::{CaptureConnection, Connected};
use tokio::time::Instant;

use super::stats::ClusterCounters;

/// When a connection was established; hyper-util copies it into every
/// response the connection gives.
#[derive(Debug, Clone)]
struct ConnectionAge(Arc<Age>);

#[derive(Debug)]
struct Age {
    born: Instant,
    /// Its drain timer runs (started by its first response).
    watched: AtomicBool,
    /// Gone once the connection closed.
    alive: Weak<()>,
}

/// `connected`, dated now (hyper-util asks a connection for its
/// `Connected` once, when it is established); `alive` lives as long as
/// the connection.
pub(crate) fn born(connected: Connected, alive: &Arc<()>) -> Connected {
    connected.extra(ConnectionAge(Arc::new(Age {
        born: Instant::now(),
        watched: AtomicBool::new(false),
        alive: Arc::downgrade(alive),
    })))
}

/// Starts the drain timer of the connection that gave `response`, once per
/// connection: at `max` after its birth, if it is still open, it is
/// poisoned (the pool never hands it out again and drops it when its
/// requests are done: Connection: close for HTTP/1.1, GOAWAY for HTTP/2).
pub(crate) fn watch(
    response: &http::Extensions,
    captured: &CaptureConnection,
    max: Duration,
    counters: &Arc<ClusterCounters>,
) {
    let Some(ConnectionAge(age)) = response.get::<ConnectionAge>() else {
        return;
    };
    if age.watched.swap(true, Ordering::Relaxed) {
        return;
    }
    let (deadline, alive) = (age.born + max, age.alive.clone());
    let (captured, counters) = (captured.clone(), counters.clone());
    tokio::spawn(async move {
        tokio::time::sleep_until(deadline).await;
        if alive.upgrade().is_none() {
            return;
        }
        if let Some(connected) = captured.connection_metadata().as_ref() {
            connected.poison();
            counters
                .cx_max_duration_reached
                .fetch_add(1, Ordering::Relaxed);
        }
    });
}
