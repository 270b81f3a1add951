//! Signals the long-running commands stop on, and the admin request that
//! stands for SIGTERM.

/// Resolves when the process receives SIGTERM.
pub async fn terminated() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut signal) => {
            signal.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}

/// Resolves on SIGTERM or when `quit` is notified (admin `/quitquitquit`):
/// both drain the server, then it exits.
pub async fn stop_requested(quit: &tokio::sync::Notify) {
    tokio::select! {
        () = terminated() => {}
        () = quit.notified() => {}
    }
}
