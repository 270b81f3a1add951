//! The mesh state every stream watches: the current config snapshot plus
//! the workloads of connected proxies, published as one immutable value.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::SharedSnapshot;
use crate::translate::Workload;

/// How long workload changes are gathered before one publish.
const WORKLOAD_DEBOUNCE: Duration = Duration::from_millis(20);

/// One published state of the mesh. `generation` increases with every change.
#[derive(Debug, Clone)]
pub struct MeshState {
    pub generation: u64,
    pub snapshot: SharedSnapshot,
    pub workloads: Arc<[Workload]>,
    /// When the change that produced this state was published (push latency).
    pub published_at: Instant,
}

/// Publishes [`MeshState`] from config snapshots and proxy connections.
#[derive(Clone)]
pub struct MeshStatePublisher {
    inner: Arc<Inner>,
}

struct Inner {
    tx: watch::Sender<Arc<MeshState>>,
    pending: Mutex<Pending>,
}

struct Pending {
    snapshot: SharedSnapshot,
    workloads: BTreeMap<u64, Workload>,
    flush_scheduled: bool,
}

impl MeshStatePublisher {
    pub fn new(snapshot: SharedSnapshot) -> Self {
        let state = Arc::new(MeshState {
            generation: 1,
            snapshot: snapshot.clone(),
            workloads: Arc::from(Vec::new()),
            published_at: Instant::now(),
        });
        let (tx, _) = watch::channel(state);
        Self {
            inner: Arc::new(Inner {
                tx,
                pending: Mutex::new(Pending {
                    snapshot,
                    workloads: BTreeMap::new(),
                    flush_scheduled: false,
                }),
            }),
        }
    }

    pub fn subscribe(&self) -> watch::Receiver<Arc<MeshState>> {
        self.inner.tx.subscribe()
    }

    pub fn current(&self) -> Arc<MeshState> {
        self.inner.tx.borrow().clone()
    }

    /// A new config snapshot: published at once (the loader already debounced).
    pub fn set_snapshot(&self, snapshot: SharedSnapshot) {
        self.inner.pending.lock().snapshot = snapshot;
        self.publish();
    }

    /// A connected proxy that can be a service endpoint.
    pub fn add_workload(&self, connection: u64, workload: Workload) {
        self.inner
            .pending
            .lock()
            .workloads
            .insert(connection, workload);
        self.schedule_flush();
    }

    pub fn remove_workload(&self, connection: u64) {
        if self
            .inner
            .pending
            .lock()
            .workloads
            .remove(&connection)
            .is_some()
        {
            self.schedule_flush();
        }
    }

    fn schedule_flush(&self) {
        {
            let mut pending = self.inner.pending.lock();
            if pending.flush_scheduled {
                return;
            }
            pending.flush_scheduled = true;
        }
        let this = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(WORKLOAD_DEBOUNCE).await;
            this.inner.pending.lock().flush_scheduled = false;
            this.publish();
        });
    }

    fn publish(&self) {
        let (snapshot, mut workloads) = {
            let pending = self.inner.pending.lock();
            (
                pending.snapshot.clone(),
                pending.workloads.values().cloned().collect::<Vec<_>>(),
            )
        };
        workloads.sort();
        workloads.dedup();
        self.inner.tx.send_modify(|state| {
            let unchanged =
                Arc::ptr_eq(&state.snapshot, &snapshot) && *state.workloads == *workloads;
            if !unchanged {
                *state = Arc::new(MeshState {
                    generation: state.generation + 1,
                    snapshot,
                    workloads: Arc::from(workloads),
                    published_at: Instant::now(),
                });
            }
        });
    }
}
