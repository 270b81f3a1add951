//! ACKs and NACKs: the versions and nonces they carry, and the error of a
//! rejected update.

use shared::type_url::SECRET;

use super::*;
use crate::testing::resources::endpoints;
use crate::xds::UpdateResult;

#[tokio::test]
async fn ack_carries_the_response_version_and_nonce() {
    let mut harness = Harness::start(FakeSink::default()).await;
    let mut conn = harness.connection().await;
    accept_first_clusters(&mut conn).await;

    conn.respond(ENDPOINT, "e1", "n2", endpoints(&["a"]));
    conn.expect_ack(ENDPOINT, "e1", "n2", &["a"]).await;
    conn.assert_quiet().await;
    assert_eq!(harness.stats.updates(CLUSTER, UpdateResult::Accepted), 1);
    assert_eq!(harness.stats.updates(ENDPOINT, UpdateResult::Accepted), 1);
    assert_eq!(harness.sink.applied_types(), [CLUSTER, ENDPOINT]);
}

#[tokio::test]
async fn nack_carries_the_last_accepted_version_and_the_error() {
    let mut harness = Harness::start(FakeSink::default()).await;
    let mut conn = harness.connection().await;
    accept_first_clusters(&mut conn).await;

    harness
        .sink
        .reject(CLUSTER, "cluster \"b\": type: unsupported");
    conn.respond(CLUSTER, "v2", "n2", clusters(&["a", "b"]));
    let nack = conn.expect(CLUSTER, "v1", "n2", &[]).await;
    let error = nack.error_detail.expect("a NACK carries error_detail");
    assert_eq!(error.code, tonic::Code::InvalidArgument as i32);
    assert_eq!(error.message, "cluster \"b\": type: unsupported");
    // The rejected clusters did not change what EDS wants.
    conn.assert_quiet().await;
    assert_eq!(harness.stats.updates(CLUSTER, UpdateResult::Rejected), 1);

    harness.sink.accept(CLUSTER);
    conn.respond(CLUSTER, "v3", "n3", clusters(&["a", "b"]));
    conn.expect_ack(CLUSTER, "v3", "n3", &[]).await;
    conn.expect(ENDPOINT, "", "", &["a", "b"]).await;
}

#[tokio::test]
async fn response_for_an_unsubscribed_type_is_nacked() {
    let mut harness = Harness::start(FakeSink::default()).await;
    let mut conn = harness.connection().await;
    expect_first_request(&mut conn, "").await;
    conn.expect(LISTENER, "", "", &[]).await;

    conn.respond(SECRET, "s1", "n1", Vec::new());
    let nack = conn.expect(SECRET, "", "n1", &[]).await;
    let error = nack.error_detail.expect("a NACK carries error_detail");
    assert_eq!(error.code, tonic::Code::InvalidArgument as i32);
    assert!(
        error.message.contains("did not subscribe"),
        "{}",
        error.message
    );

    // EDS was not subscribed either: nothing is wanted yet.
    conn.respond(ENDPOINT, "e1", "n2", endpoints(&["a"]));
    let nack = conn.expect(ENDPOINT, "", "n2", &[]).await;
    assert!(nack.error_detail.is_some());
    assert!(harness.sink.applied_types().is_empty());
    assert_eq!(harness.stats.updates(SECRET, UpdateResult::Rejected), 1);
}
