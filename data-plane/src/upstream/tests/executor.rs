//! The pool executor under test: runs the pool's tasks on tokio and tells
//! when none of them has work left to do.
//!
//! A pooled HTTP/1 connection goes back to the pool either as soon as its
//! response arrives complete, or, when the body is still streaming, once a
//! task the pool spawns sees the connection ready for the next request. The
//! pool shows neither, but both are done once every pool task is finished
//! or waits for something outside the pool (a socket, a timer, the next
//! request): that is the condition [`TrackedExecutor::settled`] waits for.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering::SeqCst};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use tokio::sync::Notify;

/// How long [`TrackedExecutor::settled`] waits before failing the test; it
/// only keeps a broken test from hanging.
const SETTLE_LIMIT: Duration = Duration::from_secs(10);

/// Spawns on tokio, counting the tasks that are running or woken.
#[derive(Debug, Clone, Default)]
pub(crate) struct TrackedExecutor {
    busy: Arc<Busy>,
}

impl TrackedExecutor {
    /// Waits until every task of the pool is finished or waits for
    /// something outside the pool; panics after [`SETTLE_LIMIT`].
    pub(crate) async fn settled(&self) {
        let quiet = async {
            loop {
                let changed = self.busy.changed.notified();
                let mut changed = std::pin::pin!(changed);
                changed.as_mut().enable();
                if self.busy.count.load(SeqCst) == 0 {
                    return;
                }
                changed.await;
            }
        };
        if tokio::time::timeout(SETTLE_LIMIT, quiet).await.is_err() {
            panic!(
                "the connection pool still had {} task(s) with work to do after {SETTLE_LIMIT:?}",
                self.busy.count.load(SeqCst)
            );
        }
    }
}

impl<F: Future<Output = ()> + Send + 'static> hyper::rt::Executor<F> for TrackedExecutor {
    fn execute(&self, future: F) {
        self.busy.add();
        let task = Arc::new(TaskState {
            state: AtomicU8::new(RUNNABLE),
            busy: self.busy.clone(),
        });
        tokio::spawn(async move {
            Tracked {
                future: Box::pin(future),
                task: task.clone(),
            }
            .await;
            // The future is dropped by now: what it held (a pooled
            // connection) is back where it belongs.
            task.finish();
        });
    }
}

/// The number of tasks running or woken.
#[derive(Debug, Default)]
struct Busy {
    count: AtomicUsize,
    changed: Notify,
}

impl Busy {
    fn add(&self) {
        self.count.fetch_add(1, SeqCst);
    }

    fn remove(&self) {
        self.count.fetch_sub(1, SeqCst);
        self.changed.notify_waiters();
    }
}

/// Waits for a wake (not counted as busy).
const IDLE: u8 = 0;
/// Spawned or woken, not polled since.
const RUNNABLE: u8 = 1;
const POLLING: u8 = 2;
/// Woken while being polled: it will be polled again.
const POLLING_WOKEN: u8 = 3;
const FINISHED: u8 = 4;

struct TaskState {
    state: AtomicU8,
    busy: Arc<Busy>,
}

impl TaskState {
    fn wake(&self) {
        let woken = self
            .state
            .fetch_update(SeqCst, SeqCst, |state| match state {
                IDLE => Some(RUNNABLE),
                POLLING => Some(POLLING_WOKEN),
                _ => None,
            });
        if woken == Ok(IDLE) {
            self.busy.add();
        }
    }

    fn start_poll(&self) {
        // A poll without a wake (tokio may poll spuriously) is busy too.
        if self.state.swap(POLLING, SeqCst) == IDLE {
            self.busy.add();
        }
    }

    fn end_pending_poll(&self) {
        if self
            .state
            .compare_exchange(POLLING, IDLE, SeqCst, SeqCst)
            .is_ok()
        {
            self.busy.remove();
        } else {
            self.state.store(RUNNABLE, SeqCst);
        }
    }

    fn finish(&self) {
        self.state.store(FINISHED, SeqCst);
        self.busy.remove();
    }
}

/// A task's future, polled with a waker that records wakes.
struct Tracked {
    future: Pin<Box<dyn Future<Output = ()> + Send>>,
    task: Arc<TaskState>,
}

impl Future for Tracked {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.task.start_poll();
        let waker = Waker::from(Arc::new(TrackingWaker {
            task: self.task.clone(),
            inner: cx.waker().clone(),
        }));
        let polled = self.future.as_mut().poll(&mut Context::from_waker(&waker));
        if polled.is_pending() {
            self.task.end_pending_poll();
        }
        polled
    }
}

struct TrackingWaker {
    task: Arc<TaskState>,
    inner: Waker,
}

impl Wake for TrackingWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.task.wake();
        self.inner.wake_by_ref();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use hyper::rt::Executor;
    use tokio::sync::oneshot;

    #[tokio::test]
    async fn settles_once_woken_tasks_have_run() {
        let executor = TrackedExecutor::default();
        let (tx, rx) = oneshot::channel::<()>();
        let (done_tx, mut done_rx) = oneshot::channel();
        executor.execute(async move {
            let _ = rx.await;
            let _ = done_tx.send(());
        });
        executor.settled().await;
        assert!(
            done_rx.try_recv().is_err(),
            "the task waits for its message"
        );
        tx.send(()).unwrap();
        executor.settled().await;
        assert!(
            done_rx.try_recv().is_ok(),
            "a woken task ran to its end before the executor settled"
        );
    }

    #[tokio::test]
    async fn a_task_that_never_waits_outside_keeps_it_busy() {
        let executor = TrackedExecutor::default();
        executor.execute(async {
            loop {
                tokio::task::yield_now().await;
            }
        });
        let settled = tokio::time::timeout(Duration::from_millis(200), executor.settled()).await;
        assert!(settled.is_err(), "a spinning task never settles");
    }
}
