//! Readiness: set once clusters, listeners and every wanted route are
//! applied, and kept across reconnects.

use shared::type_url::ROUTE;

use super::*;
use crate::testing::resources::{endpoints, listeners, routes};

#[tokio::test]
async fn readiness_waits_for_clusters_listeners_and_wanted_routes() {
    let mut harness = Harness::start(FakeSink::default()).await;
    let mut conn = harness.connection().await;
    accept_first_clusters(&mut conn).await;
    assert!(!harness.is_ready(), "no listeners yet");

    conn.respond(ENDPOINT, "e1", "n2", endpoints(&["a"]));
    conn.expect_ack(ENDPOINT, "e1", "n2", &["a"]).await;
    assert!(!harness.is_ready(), "no listeners yet");

    conn.respond(LISTENER, "l1", "n3", listeners(&["80"]));
    conn.expect_ack(LISTENER, "l1", "n3", &[]).await;
    conn.expect(ROUTE, "", "", &["80"]).await;
    assert!(!harness.is_ready(), "route 80 not received yet");

    conn.respond(ROUTE, "r1", "n4", routes(&["other"]));
    conn.expect_ack(ROUTE, "r1", "n4", &["80"]).await;
    assert!(!harness.is_ready(), "route 80 still missing");

    harness.sink.reject(ROUTE, "bad route");
    conn.respond(ROUTE, "r2", "n5", routes(&["80"]));
    conn.expect(ROUTE, "r1", "n5", &["80"]).await;
    assert!(!harness.is_ready(), "route 80 was rejected");

    harness.sink.accept(ROUTE);
    conn.respond(ROUTE, "r3", "n6", routes(&["80"]));
    conn.expect_ack(ROUTE, "r3", "n6", &["80"]).await;
    assert!(harness.is_ready());

    drop(conn);
    let _reconnected = harness.connection().await;
    assert!(harness.is_ready(), "readiness survives a reconnect");
}

#[tokio::test]
async fn readiness_does_not_wait_for_types_nothing_refers_to() {
    let mut harness = Harness::start(FakeSink::default()).await;
    let mut conn = harness.connection().await;
    expect_first_request(&mut conn, "").await;
    conn.expect(LISTENER, "", "", &[]).await;
    conn.respond(CLUSTER, "v1", "n1", Vec::new());
    conn.expect_ack(CLUSTER, "v1", "n1", &[]).await;
    assert!(!harness.is_ready());
    conn.respond(LISTENER, "l1", "n2", Vec::new());
    conn.expect_ack(LISTENER, "l1", "n2", &[]).await;
    assert!(harness.is_ready());
}
