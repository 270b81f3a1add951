//! A pooled HTTP connection's idleness: when it last moved a byte and
//! whether it ended otherwise (the host closed it, an error, its age), so
//! that the pool dropping it for the cluster's idle timeout counts in
//! `upstream_cx_idle_timeout`, as Envoy counts the connections it closes
//! idle.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::time::Instant;

use super::stats::ClusterCounters;

/// Watches one pooled connection until it drops.
#[derive(Debug)]
pub(crate) struct IdleWatch {
    timeout: Duration,
    last_active: Instant,
    ended: bool,
    counters: Arc<ClusterCounters>,
}

impl IdleWatch {
    pub(crate) fn new(timeout: Duration, counters: Arc<ClusterCounters>) -> Self {
        Self {
            timeout,
            last_active: Instant::now(),
            ended: false,
            counters,
        }
    }

    /// A byte moved.
    pub(crate) fn touch(&mut self) {
        self.last_active = Instant::now();
    }

    /// The connection ended on its own (end of stream, an error).
    pub(crate) fn end(&mut self) {
        self.ended = true;
    }
}

impl Drop for IdleWatch {
    /// Dropped open after the idle timeout with nothing moving: the pool
    /// closed it for being idle.
    fn drop(&mut self) {
        if !self.ended && self.last_active.elapsed() >= self.timeout {
            self.counters.cx_idle_timeout.fetch_add(1, Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counted(watch: impl FnOnce(&mut IdleWatch)) -> u64 {
        let counters = Arc::new(ClusterCounters::default());
        let mut idle = IdleWatch::new(Duration::from_secs(1), counters.clone());
        watch(&mut idle);
        drop(idle);
        counters.cx_idle_timeout.load(Relaxed)
    }

    #[tokio::test(start_paused = true)]
    async fn only_a_connection_dropped_open_past_its_idle_timeout_counts() {
        let idle_for = |secs| async move {
            let counters = Arc::new(ClusterCounters::default());
            let idle = IdleWatch::new(Duration::from_secs(1), counters.clone());
            tokio::time::advance(Duration::from_millis(secs)).await;
            drop(idle);
            counters.cx_idle_timeout.load(Relaxed)
        };
        assert_eq!(idle_for(1500).await, 1, "dropped for its idle timeout");
        assert_eq!(idle_for(500).await, 0, "dropped while it was in use");
        assert_eq!(counted(IdleWatch::touch), 0, "just used");
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_that_ended_on_its_own_is_no_idle_timeout() {
        let counters = Arc::new(ClusterCounters::default());
        let mut idle = IdleWatch::new(Duration::from_secs(1), counters.clone());
        idle.end();
        tokio::time::advance(Duration::from_secs(2)).await;
        drop(idle);
        assert_eq!(counters.cx_idle_timeout.load(Relaxed), 0);
    }
}
