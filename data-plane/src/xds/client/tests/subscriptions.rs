//! What the client subscribes to, in ADS order, and how the sink's wanted
//! names change the subscriptions.

use shared::type_url::ROUTE;

use super::*;
use crate::testing::resources::{endpoints, listeners, routes};

#[tokio::test]
async fn empty_sink_subscribes_to_clusters_then_listeners_with_the_node_first() {
    let mut harness = Harness::start(FakeSink::default()).await;
    let mut conn = harness.connection().await;
    expect_first_request(&mut conn, "").await;
    let lds = conn.expect(LISTENER, "", "", &[]).await;
    assert_eq!(lds.node, None, "only the first request carries the node");
    conn.assert_quiet().await;
    assert!(harness.stats.connected());
}

#[tokio::test]
async fn subscriptions_follow_ads_order_with_the_wanted_names() {
    let sink = FakeSink::with_config(
        &["outbound|80||b.example", "outbound|80||a.example"],
        &["80"],
    );
    let mut harness = Harness::start(sink).await;
    let mut conn = harness.connection().await;
    expect_first_request(&mut conn, "").await;
    let eds = conn
        .expect(
            ENDPOINT,
            "",
            "",
            &["outbound|80||a.example", "outbound|80||b.example"],
        )
        .await;
    assert_eq!(eds.node, None);
    conn.expect(LISTENER, "", "", &[]).await;
    conn.expect(ROUTE, "", "", &["80"]).await;
    conn.assert_quiet().await;
}

#[tokio::test]
async fn listener_updates_change_the_route_subscription() {
    let mut harness = Harness::start(FakeSink::default()).await;
    let mut conn = harness.connection().await;
    expect_first_request(&mut conn, "").await;
    conn.expect(LISTENER, "", "", &[]).await;

    conn.respond(LISTENER, "l1", "n1", listeners(&["80"]));
    conn.expect_ack(LISTENER, "l1", "n1", &[]).await;
    conn.expect(ROUTE, "", "", &["80"]).await;
    conn.respond(ROUTE, "r1", "n2", routes(&["80"]));
    conn.expect_ack(ROUTE, "r1", "n2", &["80"]).await;

    conn.respond(LISTENER, "l2", "n3", listeners(&["8080", "80"]));
    conn.expect_ack(LISTENER, "l2", "n3", &[]).await;
    conn.expect(ROUTE, "r1", "n2", &["80", "8080"]).await;

    // No listener needs routes any more: an empty list unsubscribes, once.
    conn.respond(LISTENER, "l3", "n4", Vec::new());
    conn.expect_ack(LISTENER, "l3", "n4", &[]).await;
    conn.expect(ROUTE, "r1", "n2", &[]).await;
    conn.respond(LISTENER, "l4", "n5", Vec::new());
    conn.expect_ack(LISTENER, "l4", "n5", &[]).await;
    conn.assert_quiet().await;
}

#[test]
fn resource_name_reads_the_name_of_every_type() {
    assert_eq!(resource_name(&clusters(&["c"])[0]).as_deref(), Some("c"));
    assert_eq!(resource_name(&endpoints(&["e"])[0]).as_deref(), Some("e"));
    assert_eq!(resource_name(&listeners(&["l"])[0]).as_deref(), Some("l"));
    assert_eq!(resource_name(&routes(&["r"])[0]).as_deref(), Some("r"));
}
