//! Gives back to the system the memory the agent no longer uses: what a
//! config held once it is replaced, and what many connections held once
//! they closed (a slowloris of 10,000 partial heads left 60 MB behind).
//!
//! mimalloc returns freed memory (purges it) only after its purge delay
//! (one second), and only when some thread later frees a page of its own;
//! an idle agent frees none, so its RSS stayed at its peak. Once updates
//! have been quiet for longer than that delay, or after many connections
//! closed, the control thread frees one huge block, which it allocates
//! untouched (never resident) for this: freeing it is what makes mimalloc
//! purge everything whose delay has passed.
//!
//! A connection's buffers live on the proxy workers, and one often frees
//! what another allocated: such a page is known free only once its owner
//! collects its pages, which mimalloc does every 10,000 allocations of its
//! slow path. So after many connections closed, each worker, as it next
//! goes idle, makes that many (`on_worker_park`), before the purge.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use data_plane::proxy::admission::Admission;
use data_plane::xds::{ConfigSink, Rejection};
use proto::wkt::Any;
use tokio::runtime::Handle;
use tokio::sync::Notify;

/// Longer than mimalloc's purge delay, so what was freed last is due.
const QUIET: Duration = Duration::from_millis(1500);
/// Huge for mimalloc (its own page, freed at once rather than kept for
/// reuse); only reserved, never written.
const HUGE_BLOCK: usize = 64 << 20;
/// Purging is spread over a few frees; how many, a purge delay apart.
const ROUNDS: usize = 3;
/// How many fewer open connections than at their peak call for giving
/// memory back.
const CONNECTIONS_CLOSED: u64 = 1024;
/// Over mimalloc's small size (1 KiB): every allocation takes its slow path.
const SLOW_PATH_SIZE: usize = 2048;
/// mimalloc collects a thread's pages every 10,000 slow-path allocations,
/// counted in steps of 1,000.
const SLOW_PATH_ALLOCATIONS: usize = 11_000;

/// Bumped each time the workers are to collect their pages.
static COLLECT: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// The last [`COLLECT`] this worker answered.
    static COLLECTED: Cell<u64> = const { Cell::new(0) };
}

/// The workers' park hook: a worker asked to collect its pages does so
/// once, as it goes idle.
pub fn on_worker_park() {
    let wanted = COLLECT.load(Relaxed);
    if COLLECTED.get() == wanted {
        return;
    }
    COLLECTED.set(wanted);
    for _ in 0..SLOW_PATH_ALLOCATIONS {
        drop(std::hint::black_box(Vec::<u8>::with_capacity(
            SLOW_PATH_SIZE,
        )));
    }
}

/// A sink that, after each update, has the memory it freed given back.
pub struct Releasing {
    inner: Arc<dyn ConfigSink>,
    applied: Arc<Notify>,
}

/// What the agent's memory is given back after: the config updates
/// `inner` applies and the connections `admission` counts closing, with
/// the workers (`workers`, `concurrency` of them) collecting first.
pub struct Sources {
    pub inner: Arc<dyn ConfigSink>,
    pub admission: Arc<Admission>,
    pub workers: Handle,
    pub concurrency: usize,
}

/// `inner`, and the task giving memory back after its updates and after
/// connections close (run it on the thread that applies updates: that
/// thread's frees purge).
pub fn releasing(sources: Sources) -> (Arc<Releasing>, impl Future<Output = ()>) {
    let applied = Arc::new(Notify::new());
    let sink = Arc::new(Releasing {
        inner: sources.inner,
        applied: applied.clone(),
    });
    let closed = Arc::new(Notify::new());
    let give_back = {
        let closed = closed.clone();
        async move {
            tokio::join!(
                give_back_after(applied),
                give_back_after(closed.clone()),
                watch_connections(
                    sources.admission,
                    closed,
                    sources.workers,
                    sources.concurrency
                ),
            );
        }
    };
    (sink, give_back)
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

/// Gives memory back once `events` have been quiet for [`QUIET`].
async fn give_back_after(events: Arc<Notify>) {
    loop {
        events.notified().await;
        // Wait for the events to settle: a change comes as several
        // responses (clusters, endpoints, listeners, routes), connections
        // close over a while.
        loop {
            tokio::select! {
                () = events.notified() => {}
                () = tokio::time::sleep(QUIET) => break,
            }
        }
        for _ in 0..ROUNDS {
            drop(std::hint::black_box(Vec::<u8>::with_capacity(HUGE_BLOCK)));
            tokio::time::sleep(QUIET).await;
        }
    }
}

/// Follows the open connections: once [`CONNECTIONS_CLOSED`] fewer are
/// open than at their peak, has the workers collect and `closed` told.
async fn watch_connections(
    admission: Arc<Admission>,
    closed: Arc<Notify>,
    workers: Handle,
    concurrency: usize,
) {
    let mut peak = 0;
    loop {
        tokio::time::sleep(QUIET).await;
        let open = admission.active();
        peak = peak.max(open);
        if peak - open < CONNECTIONS_CLOSED {
            continue;
        }
        tracing::debug!(peak, open, "connections closed: giving their memory back");
        peak = open;
        COLLECT.fetch_add(1, Relaxed);
        // Idle workers are parked: a task wakes each, which then parks
        // again through the hook.
        for _ in 0..concurrency.max(1) {
            workers.spawn(tokio::task::yield_now());
        }
        closed.notify_one();
    }
}
