//! A server task on its own thread and runtime, so the harness works the
//! same from plain `#[test]`s and from any flavor of `#[tokio::test]`, and so
//! dropping the server closes its sockets before the drop returns.

use std::future::Future;
use std::thread::{self, JoinHandle};

use anyhow::{Context, Result};
use tokio::sync::oneshot;

/// Runs a future on a dedicated thread until dropped.
pub(crate) struct ServerThread {
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl ServerThread {
    /// Calls `serve` inside a fresh current-thread runtime on a new thread
    /// and drives the future it returns (and everything it spawns) until the
    /// guard drops.
    pub(crate) fn spawn<F, Fut>(name: &str, serve: F) -> Result<Self>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()>,
    {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("building a server runtime")?;
        let (shutdown, stop) = oneshot::channel::<()>();
        let thread = thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                runtime.block_on(async move {
                    tokio::select! {
                        () = serve() => {}
                        _ = stop => {}
                    }
                });
            })
            .with_context(|| format!("starting thread {name}"))?;
        Ok(Self {
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }
}

impl Drop for ServerThread {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            // The server may have stopped on its own; nothing to tell it then.
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            // A panic in the server thread was already printed by the hook.
            let _ = thread.join();
        }
    }
}
