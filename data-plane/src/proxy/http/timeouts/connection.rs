//! One downstream connection's streams and the two timeouts that end the
//! connection itself, as Envoy's connection manager: `idle_timeout` closes
//! a connection that has had no stream for that long, and
//! `max_connection_duration` drains it once it is that old (the HTTP/1.1
//! response in flight carries `Connection: close`, HTTP/2 sends GOAWAY).

use std::future::pending;
use std::sync::Arc;
use std::task::Waker;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::model::http_timeouts::HttpTimeouts;

/// The streams of one connection: how many are open, and since when none
/// is.
pub(in crate::proxy::http) struct Streams {
    active: watch::Sender<usize>,
    idle: Mutex<Idle>,
}

/// Since when a connection has had no open stream, and the task to wake
/// when that next happens.
struct Idle {
    since: Instant,
    waker: Option<Waker>,
}

impl Streams {
    pub(in crate::proxy::http) fn new() -> Arc<Self> {
        Arc::new(Self {
            active: watch::Sender::new(0),
            idle: Mutex::new(Idle {
                since: Instant::now(),
                waker: None,
            }),
        })
    }

    /// Opens the stream of a request whose head has arrived; it is open
    /// until the guard drops (its response has been sent, or abandoned).
    pub(in crate::proxy::http) fn open(self: &Arc<Self>) -> StreamGuard {
        self.active.send_modify(|n| *n += 1);
        StreamGuard(self.clone())
    }

    /// How many streams are open.
    pub(super) fn active(&self) -> usize {
        *self.active.borrow()
    }

    /// When the last stream closed, or the connection opened: the
    /// earliest moment a request head that follows can be read.
    pub(super) fn idle_since(&self) -> Instant {
        self.idle.lock().since
    }

    /// Wakes `waker` once no stream is open (the streams open now close).
    pub(super) fn wake_when_idle(&self, waker: &Waker) {
        let mut idle = self.idle.lock();
        if !idle.waker.as_ref().is_some_and(|w| w.will_wake(waker)) {
            idle.waker = Some(waker.clone());
        }
    }
}

/// An open stream; closes it when dropped.
pub(in crate::proxy::http) struct StreamGuard(Arc<Streams>);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let mut now_idle = false;
        self.0.active.send_modify(|n| {
            *n = n.saturating_sub(1);
            now_idle = *n == 0;
        });
        if now_idle {
            let waker = {
                let mut idle = self.0.idle.lock();
                idle.since = Instant::now();
                idle.waker.take()
            };
            if let Some(waker) = waker {
                waker.wake();
            }
        }
    }
}

/// Why a connection's own timeout ends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::proxy::http) enum Shutdown {
    /// No stream for `idle_timeout`: `downstream_cx_idle_timeout`.
    Idle,
    /// `max_connection_duration` reached: `downstream_cx_max_duration_reached`.
    MaxDuration,
}

/// Resolves when the connection must shut down for one of its timeouts
/// (never, when both are off).
pub(in crate::proxy::http) async fn due(streams: &Streams, timeouts: &HttpTimeouts) -> Shutdown {
    let max_duration = async {
        match timeouts.max_connection_duration {
            Some(max) => tokio::time::sleep(max).await,
            None => pending().await,
        }
    };
    tokio::select! {
        () = max_duration => Shutdown::MaxDuration,
        () = idle(streams, timeouts.idle) => Shutdown::Idle,
    }
}

/// Resolves once no stream has been open for `idle` (never when `None`).
async fn idle(streams: &Streams, idle: Option<Duration>) {
    let Some(idle) = idle else {
        return pending().await;
    };
    let mut active = streams.active.subscribe();
    loop {
        if *active.borrow_and_update() == 0 {
            tokio::select! {
                () = tokio::time::sleep(idle) => return,
                _ = active.changed() => {}
            }
        } else if active.changed().await.is_err() {
            return pending().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeouts(idle: Option<u64>, max: Option<u64>) -> HttpTimeouts {
        HttpTimeouts {
            idle: idle.map(Duration::from_secs),
            max_connection_duration: max.map(Duration::from_secs),
            ..HttpTimeouts::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_without_streams_is_closed_after_the_idle_timeout() {
        let streams = Streams::new();
        let start = tokio::time::Instant::now();
        assert_eq!(
            due(&streams, &timeouts(Some(90), None)).await,
            Shutdown::Idle
        );
        assert!(start.elapsed() >= Duration::from_secs(90));
    }

    #[tokio::test(start_paused = true)]
    async fn an_open_stream_holds_off_the_idle_timeout_which_restarts_when_it_ends() {
        let streams = Streams::new();
        let guard = streams.open();
        let start = tokio::time::Instant::now();
        let ended = async {
            tokio::time::sleep(Duration::from_secs(200)).await;
            drop(guard);
        };
        let timeouts = timeouts(Some(90), None);
        let (shutdown, ()) = tokio::join!(due(&streams, &timeouts), ended);
        assert_eq!(shutdown, Shutdown::Idle);
        assert!(start.elapsed() >= Duration::from_secs(290));
        assert_eq!(streams.active(), 0);
        assert!(streams.idle_since() - start >= Duration::from_secs(200));
    }

    #[tokio::test(start_paused = true)]
    async fn max_connection_duration_ends_a_busy_connection() {
        let streams = Streams::new();
        let _busy = streams.open();
        let start = tokio::time::Instant::now();
        assert_eq!(
            due(&streams, &timeouts(Some(90), Some(600))).await,
            Shutdown::MaxDuration
        );
        assert!(start.elapsed() >= Duration::from_secs(600));
    }
}
