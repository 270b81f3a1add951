//! Gives back to the system the memory a config held once it is replaced.
//! mimalloc returns freed memory (purges it) only after its purge delay
//! (one second), and only when some thread later frees a page of its own;
//! an agent idle after a large config was removed frees none, so its RSS
//! stayed at its peak. Once updates have been quiet for longer than that
//! delay, the control thread frees one huge block, which it allocates
//! untouched (never resident) for this: freeing it is what makes mimalloc
//! purge everything whose delay has passed.

use std::sync::Arc;
use std::time::Duration;

use data_plane::xds::{ConfigSink, Rejection};
use proto::wkt::Any;
use tokio::sync::Notify;

/// Longer than mimalloc's purge delay, so what the last update freed is due.
const QUIET: Duration = Duration::from_millis(1500);
/// Huge for mimalloc (its own page, freed at once rather than kept for
/// reuse); only reserved, never written.
const HUGE_BLOCK: usize = 64 << 20;
/// Purging is spread over a few frees; how many, a purge delay apart.
const ROUNDS: usize = 3;

/// A sink that, after each update, has the memory it freed given back.
pub struct Releasing {
    inner: Arc<dyn ConfigSink>,
    applied: Arc<Notify>,
}

/// `inner`, and the task giving memory back after its updates (run it on
/// the thread that applies them: that thread's frees purge).
pub fn releasing(inner: Arc<dyn ConfigSink>) -> (Arc<Releasing>, impl Future<Output = ()>) {
    let applied = Arc::new(Notify::new());
    let sink = Arc::new(Releasing {
        inner,
        applied: applied.clone(),
    });
    (sink, give_back_after_updates(applied))
}

impl ConfigSink for Releasing {
    fn apply(&self, type_url: &str, resources: &[Any]) -> Result<(), Rejection> {
        let result = self.inner.apply(type_url, resources);
        self.applied.notify_one();
        result
    }

    fn wanted_names(&self, type_url: &str) -> Option<Vec<String>> {
        self.inner.wanted_names(type_url)
    }

    fn subscribes(&self, type_url: &str) -> bool {
        self.inner.subscribes(type_url)
    }
}

async fn give_back_after_updates(applied: Arc<Notify>) {
    loop {
        applied.notified().await;
        // Wait for the updates to settle: a change comes as several
        // responses (clusters, endpoints, listeners, routes).
        loop {
            tokio::select! {
                () = applied.notified() => {}
                () = tokio::time::sleep(QUIET) => break,
            }
        }
        for _ in 0..ROUNDS {
            drop(std::hint::black_box(Vec::<u8>::with_capacity(HUGE_BLOCK)));
            tokio::time::sleep(QUIET).await;
        }
    }
}
