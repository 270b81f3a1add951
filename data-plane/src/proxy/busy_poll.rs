//! Busy polling (`--busy-poll WINDOW`, off by default): while traffic
//! flows, the workers keep polling their sockets (`epoll_wait` with a zero
//! timeout) instead of sleeping in the kernel, and go back to sleeping once
//! `WINDOW` has passed without a new connection, request or response.
//!
//! On virtual machines an idle vCPU is halted, and waking it when a packet
//! arrives costs tens to hundreds of microseconds, on every hop a request
//! makes through the proxy. Polling trades CPU time (a worker stays busy
//! while traffic flows) for that latency, as HAProxy's `busy-polling` does.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// Traffic events, seen by the pollers.
#[derive(Debug, Default)]
pub struct Activity {
    events: AtomicU64,
    /// Set while the pollers sleep, so only the first event wakes them.
    idle: AtomicBool,
    wake: Notify,
}

impl Activity {
    /// Records a connection, request or response.
    pub fn record(&self) {
        self.events.fetch_add(1, Ordering::Relaxed);
        if self.idle.load(Ordering::Relaxed) && self.idle.swap(false, Ordering::AcqRel) {
            self.wake.notify_waiters();
        }
    }

    fn events(&self) -> u64 {
        self.events.load(Ordering::Relaxed)
    }
}

/// Runs on a worker: sleeps until traffic comes, then yields to the
/// runtime (which polls its sockets without blocking while a task is
/// ready) until `window` passes without an event.
pub async fn poll(activity: Arc<Activity>, window: Duration) {
    loop {
        let notified = activity.wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        activity.idle.store(true, Ordering::Release);
        notified.await;
        let mut seen = activity.events();
        let mut last_event = Instant::now();
        loop {
            tokio::task::yield_now().await;
            let events = activity.events();
            if events != seen {
                seen = events;
                last_event = Instant::now();
            } else if last_event.elapsed() >= window {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn yield_a_few_times() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn polls_while_events_come_and_sleeps_after_the_window() {
        let window = Duration::from_millis(20);
        let activity = Arc::new(Activity::default());
        let poller = tokio::spawn(poll(activity.clone(), window));
        yield_a_few_times().await;
        assert!(
            activity.idle.load(Ordering::Acquire),
            "asleep before traffic"
        );

        activity.record();
        yield_a_few_times().await;
        tokio::time::advance(window / 2).await;
        activity.record();
        tokio::time::advance(window / 2).await;
        yield_a_few_times().await;
        assert!(
            !activity.idle.load(Ordering::Acquire),
            "polling within the window of the last event"
        );

        tokio::time::advance(window).await;
        yield_a_few_times().await;
        assert!(
            activity.idle.load(Ordering::Acquire),
            "asleep once the window passed without events"
        );
        poller.abort();
    }
}
