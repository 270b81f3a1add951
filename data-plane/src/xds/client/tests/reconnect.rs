//! Reconnection: after a closed or failed stream, and while the control
//! plane is unreachable, resubscribing with what was last accepted.

use shared::type_url::ROUTE;
use tonic::Status;

use super::*;
use crate::testing::resources::{endpoints, listeners};

#[tokio::test]
async fn reconnect_resubscribes_with_the_last_accepted_versions() {
    let mut harness = Harness::start(FakeSink::default()).await;
    let mut conn = harness.connection().await;
    accept_first_clusters(&mut conn).await;
    conn.respond(ENDPOINT, "e1", "n2", endpoints(&["a"]));
    conn.expect_ack(ENDPOINT, "e1", "n2", &["a"]).await;
    conn.respond(LISTENER, "l1", "n3", listeners(&["80"]));
    conn.expect_ack(LISTENER, "l1", "n3", &[]).await;
    conn.expect(ROUTE, "", "", &["80"]).await;
    harness.sink.reject(CLUSTER, "bad");
    conn.respond(CLUSTER, "v2", "n4", clusters(&["a", "b"]));
    conn.expect(CLUSTER, "v1", "n4", &[]).await;
    drop(conn);

    let mut conn = harness.connection().await;
    expect_first_request(&mut conn, "v1").await;
    conn.expect(ENDPOINT, "e1", "", &["a"]).await;
    conn.expect(LISTENER, "l1", "", &[]).await;
    conn.expect(ROUTE, "", "", &["80"]).await;
    conn.assert_quiet().await;
    assert_eq!(harness.stats.connection_attempts(), 2);

    // The server may resend what the agent already has.
    harness.sink.accept(CLUSTER);
    conn.respond(CLUSTER, "v1", "m1", clusters(&["a"]));
    conn.expect_ack(CLUSTER, "v1", "m1", &[]).await;
    conn.assert_quiet().await;
}

#[tokio::test]
async fn stream_error_reconnects() {
    let mut harness = Harness::start(FakeSink::default()).await;
    let mut conn = harness.connection().await;
    accept_first_clusters(&mut conn).await;
    conn.fail(Status::unavailable("control plane shutting down"))
        .unwrap();

    let mut conn = harness.connection().await;
    expect_first_request(&mut conn, "v1").await;
    conn.expect(ENDPOINT, "", "", &["a"]).await;
    conn.expect(LISTENER, "", "", &[]).await;
}

#[tokio::test]
async fn unreachable_server_is_retried() {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = closed.local_addr().unwrap().to_string();
    drop(closed);
    let (ready_tx, _ready) = watch::channel(false);
    let client = AdsClient::new(
        ControlPlane::plaintext(&address).unwrap(),
        Node::default(),
        Arc::new(FakeSink::default()),
        ready_tx,
    );
    let stats = client.stats();
    let task = tokio::spawn(client.run());
    tokio::time::timeout(WAIT, async {
        while stats.connection_attempts() < 3 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the client stopped retrying");
    assert!(!stats.connected());
    task.abort();
}
