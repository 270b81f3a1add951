//! Drains: connections counted per scope, asked to close when the server
//! or their listener drains, closed when their listener's drain time is
//! over; the listeners stop accepting as the drain asks. Timings are
//! asserted as lower bounds only.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{DrainScope, DrainSettings, DrainStrategy, ServerDrain, StopAccepting, notified};
use crate::proxy::stats::Stats;
use crate::proxy::stats::lifecycle::ServerState;

fn server(time: Duration, strategy: DrainStrategy) -> Arc<ServerDrain> {
    Arc::new(ServerDrain::new(
        DrainSettings { time, strategy },
        Arc::new(Stats::default()),
    ))
}

/// Whether `future` resolves within `wait`.
async fn resolves(future: impl std::future::Future<Output = ()>, wait: Duration) -> bool {
    tokio::time::timeout(wait, future).await.is_ok()
}

#[tokio::test]
async fn a_connection_counts_in_the_server_and_its_listener_until_it_closes() {
    let server = server(Duration::from_secs(45), DrainStrategy::Immediate);
    let listener = Arc::new(DrainScope::default());
    let connection = server.connection(&listener);
    assert_eq!((server.scope.active(), listener.active()), (1, 1));
    drop(connection);
    assert_eq!((server.scope.active(), listener.active()), (0, 0));
}

#[tokio::test]
async fn an_immediate_drain_asks_every_connection_at_once_and_no_one_before() {
    let server = server(Duration::from_secs(45), DrainStrategy::Immediate);
    let listener = Arc::new(DrainScope::default());
    let (asked_tx, asked_rx) = tokio::sync::oneshot::channel();
    let running = tokio::spawn(server.connection(&listener).run(async move {
        notified().await;
        let _ = asked_tx.send(());
    }));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!running.is_finished(), "asked before any drain");
    server.start(StopAccepting::Now);
    asked_rx.await.unwrap();
    running.await.unwrap();
    assert_eq!(server.scope.active(), 0);
    assert_eq!(server.stats.lifecycle.server_state(), ServerState::Draining);
}

#[tokio::test]
async fn a_listener_drain_asks_its_connections_only() {
    let server = server(Duration::from_secs(45), DrainStrategy::Immediate);
    let (drained, kept) = (
        Arc::new(DrainScope::default()),
        Arc::new(DrainScope::default()),
    );
    let on_drained = tokio::spawn(server.connection(&drained).run(notified()));
    let on_kept = tokio::spawn(server.connection(&kept).run(notified()));
    drained.start();
    on_drained.await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !on_kept.is_finished(),
        "another listener's connection is not asked"
    );
    assert_eq!(server.scope.active(), 1);
    on_kept.abort();
}

#[tokio::test]
async fn a_removed_listeners_connections_are_closed_at_the_end_of_the_drain_time() {
    let time = Duration::from_millis(300);
    let server = server(time, DrainStrategy::Immediate);
    let listener = Arc::new(DrainScope::default());
    let running = tokio::spawn(server.connection(&listener).run(std::future::pending()));
    let started = Instant::now();
    assert!(listener.start());
    assert!(!listener.start(), "a drain starts once");
    running.await.unwrap();
    assert!(started.elapsed() >= time);
    assert_eq!(listener.active(), 0);
}

#[tokio::test]
async fn a_drain_is_done_when_its_connections_are() {
    let server = server(Duration::from_secs(45), DrainStrategy::Immediate);
    let listener = Arc::new(DrainScope::default());
    let connection = server.connection(&listener);
    server.start(StopAccepting::Now);
    assert!(
        !resolves(
            server.scope.done(server.settings),
            Duration::from_millis(100)
        )
        .await
    );
    drop(connection);
    assert!(resolves(server.scope.done(server.settings), Duration::from_secs(5)).await);
}

#[tokio::test]
async fn a_graceful_drain_stops_accepting_at_the_end_of_the_drain_time() {
    let time = Duration::from_millis(300);
    let server = server(time, DrainStrategy::Immediate);
    let started = Instant::now();
    server.start(StopAccepting::AfterDrainTime);
    assert!(server.scope.is_draining());
    server.accepting_stopped().await;
    assert!(started.elapsed() >= time);
}

#[tokio::test]
async fn skip_exit_never_stops_accepting() {
    let server = server(Duration::from_millis(50), DrainStrategy::Immediate);
    server.start(StopAccepting::Never);
    assert!(!resolves(server.accepting_stopped(), Duration::from_millis(200)).await);
}

#[tokio::test]
async fn a_gradual_drain_asks_a_connection_within_the_drain_time() {
    let time = Duration::from_millis(200);
    let server = server(time, DrainStrategy::Gradual);
    let listener = Arc::new(DrainScope::default());
    server.start(StopAccepting::Never);
    let running = tokio::spawn(server.connection(&listener).run(notified()));
    running.await.unwrap();
}
