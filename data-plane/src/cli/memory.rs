//! Gives back to the system the memory the agent no longer uses: what a
//! config held once it is replaced, and what many connections held once
//! they closed (a slowloris of 10,000 partial heads).
//!
//! mimalloc keeps a page whose blocks were all freed for its thread to
//! reuse, and returns (purges) an arena's free memory only after its purge
//! delay, when some thread next goes through its slow path; an idle agent
//! does neither, so its RSS stayed at its peak. `mi_collect(true)` does
//! both at once for the calling thread: it frees that thread's pages that
//! hold no live block (counting the blocks other threads freed into them)
//! and purges every arena's free memory.
//!
//! Only a page's owner can collect it, and a connection's buffers live on
//! the proxy workers, one often freeing what another allocated. So once
//! many connections closed and the count settled, each worker collects as
//! it next goes idle (`on_worker_park`), then the control thread. Once
//! config updates have been quiet the same happens: the control thread
//! applied them, but the workers freed what they held of the config they
//! replace (clusters, pools, routes). Never on the request path: a
//! collect visits every page of its thread.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use data_plane::proxy::admission::Admission;
use data_plane::xds::{ConfigSink, Rejection};
use proto::wkt::Any;
use tokio::runtime::Handle;
use tokio::sync::Notify;

/// How long events must have been quiet (no update applied, no connection
/// closed) before memory is given back, and how long the workers are
/// given to collect before the control thread does.
const QUIET: Duration = Duration::from_millis(1500);
/// How many fewer open connections than at their peak call for giving
/// memory back.
const CONNECTIONS_CLOSED: u64 = 1024;

/// Bumped each time the workers are to collect their pages.
static COLLECT: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// The last [`COLLECT`] this worker answered.
    static COLLECTED: Cell<u64> = const { Cell::new(0) };
}

/// Frees the calling thread's empty pages and purges all free memory.
#[allow(unsafe_code)]
fn collect() {
    // SAFETY: mi_collect takes no pointer and only touches the calling
    // thread's heap and the arenas (under their own locks); it is safe to
    // call from any thread at any time.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

/// The workers' park hook: a worker asked to collect its pages does so
/// once, as it goes idle.
pub fn on_worker_park() {
    let wanted = COLLECT.load(Relaxed);
    if COLLECTED.get() == wanted {
        return;
    }
    COLLECTED.set(wanted);
    collect();
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
/// connections close (run it on the thread that applies updates: its
/// pages hold the config).
pub fn releasing(sources: Sources) -> (Arc<Releasing>, impl Future<Output = ()>) {
    let applied = Arc::new(Notify::new());
    let sink = Arc::new(Releasing {
        inner: sources.inner,
        applied: applied.clone(),
    });
    let workers = Workers {
        handle: sources.workers,
        concurrency: sources.concurrency,
    };
    let give_back = async move {
        tokio::join!(
            give_back_after(applied, &workers),
            watch_connections(sources.admission, &workers),
        );
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

/// The proxy workers, `concurrency` of them on `handle`.
struct Workers {
    handle: Handle,
    concurrency: usize,
}

impl Workers {
    /// Has each worker collect as it next goes idle, gives them time to,
    /// then collects on the calling thread.
    async fn collect_all(&self) {
        COLLECT.fetch_add(1, Relaxed);
        // Idle workers are parked: a task wakes each, which then parks
        // again through the hook.
        for _ in 0..self.concurrency.max(1) {
            self.handle.spawn(tokio::task::yield_now());
        }
        tokio::time::sleep(QUIET).await;
        collect();
    }
}

/// Collects everywhere once `applied` has been quiet for [`QUIET`]: a
/// change comes as several responses (clusters, endpoints, listeners,
/// routes).
async fn give_back_after(applied: Arc<Notify>, workers: &Workers) {
    loop {
        applied.notified().await;
        loop {
            tokio::select! {
                () = applied.notified() => {}
                () = tokio::time::sleep(QUIET) => break,
            }
        }
        collect();
        workers.collect_all().await;
    }
}

/// Follows the open connections: once [`CONNECTIONS_CLOSED`] fewer are
/// open than at their peak and none closed for [`QUIET`], has the workers
/// collect, then collects.
async fn watch_connections(admission: Arc<Admission>, workers: &Workers) {
    let mut peak = 0;
    let mut last = 0;
    loop {
        tokio::time::sleep(QUIET).await;
        let open = admission.active();
        peak = peak.max(open);
        let settled = open >= last;
        last = open;
        if peak - open < CONNECTIONS_CLOSED || !settled {
            continue;
        }
        tracing::debug!(peak, open, "connections closed: giving their memory back");
        peak = open;
        workers.collect_all().await;
    }
}
