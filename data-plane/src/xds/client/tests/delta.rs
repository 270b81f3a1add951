//! The client over delta ADS, against a fake server that serves only delta.

use std::collections::HashMap;

use proto::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, Resource,
};

use super::*;
use crate::testing::fake_ads::{DeltaAds, DeltaConnection};

struct DeltaHarness {
    server: DeltaAds,
    sink: Arc<FakeSink>,
}

impl DeltaHarness {
    async fn start() -> Self {
        let server = DeltaAds::delta().await.unwrap();
        let sink = Arc::new(FakeSink::default());
        let (ready, _) = watch::channel(false);
        tokio::spawn(connect(&server, sink.clone(), ready).run());
        Self { server, sink }
    }

    async fn connection(&mut self) -> DeltaConnection {
        self.server.accept().await
    }
}

impl DeltaConnection {
    /// Receives the next request and checks its type, subscription change
    /// and nonce.
    async fn expect(
        &mut self,
        type_url: &str,
        subscribe: &[&str],
        unsubscribe: &[&str],
        nonce: &str,
    ) -> DeltaDiscoveryRequest {
        let request = self.request().await;
        assert_eq!(
            (
                request.type_url.as_str(),
                request.resource_names_subscribe.clone(),
                request.resource_names_unsubscribe.clone(),
                request.response_nonce.as_str(),
            ),
            (
                type_url,
                subscribe.iter().map(|n| n.to_string()).collect(),
                unsubscribe.iter().map(|n| n.to_string()).collect(),
                nonce,
            ),
            "unexpected request {request:?}"
        );
        request
    }

    async fn expect_ack(&mut self, type_url: &str, nonce: &str) {
        let ack = self.expect(type_url, &[], &[], nonce).await;
        assert_eq!(ack.error_detail, None, "expected an ACK, got {ack:?}");
    }

    fn respond(&self, type_url: &str, nonce: &str, updated: Vec<(Any, &str)>, removed: &[&str]) {
        self.send(DeltaDiscoveryResponse {
            system_version_info: format!("system-{nonce}"),
            resources: updated
                .into_iter()
                .map(|(any, version)| Resource {
                    name: resource_name(&any).unwrap(),
                    version: version.to_string(),
                    resource: Some(any),
                    ..Default::default()
                })
                .collect(),
            type_url: type_url.to_string(),
            removed_resources: removed.iter().map(|n| n.to_string()).collect(),
            nonce: nonce.to_string(),
            ..Default::default()
        })
        .expect("the client closed the stream");
    }
}

fn cluster(name: &str) -> Any {
    clusters(&[name]).remove(0)
}

/// Takes a fresh client through its first requests and CDS with cluster
/// `a` at version 1, leaving it subscribed to EDS for `a`.
async fn accept_cluster_a(conn: &mut DeltaConnection) {
    let first = conn.expect(CLUSTER, &[], &[], "").await;
    assert_eq!(first.node.map(|n| n.id).as_deref(), Some(NODE_ID));
    conn.expect(LISTENER, &[], &[], "").await;
    conn.respond(CLUSTER, "n1", vec![(cluster("a"), "1")], &[]);
    conn.expect_ack(CLUSTER, "n1").await;
    conn.expect(ENDPOINT, &["a"], &[], "").await;
}

#[tokio::test]
async fn delta_updates_and_removals_apply_to_the_whole_set() {
    let mut harness = DeltaHarness::start().await;
    let mut conn = harness.connection().await;
    accept_cluster_a(&mut conn).await;
    assert_eq!(harness.sink.last_applied(CLUSTER), ["a"]);

    conn.respond(CLUSTER, "n2", vec![(cluster("b"), "1")], &[]);
    conn.expect_ack(CLUSTER, "n2").await;
    assert_eq!(harness.sink.last_applied(CLUSTER), ["a", "b"]);
    conn.expect(ENDPOINT, &["b"], &[], "").await;

    conn.respond(CLUSTER, "n3", vec![], &["a"]);
    conn.expect_ack(CLUSTER, "n3").await;
    assert_eq!(harness.sink.last_applied(CLUSTER), ["b"]);
    conn.expect(ENDPOINT, &[], &["a"], "").await;
}

#[tokio::test]
async fn delta_nack_keeps_the_held_set_which_a_reconnect_declares() {
    let mut harness = DeltaHarness::start().await;
    let mut conn = harness.connection().await;
    accept_cluster_a(&mut conn).await;

    harness.sink.reject(CLUSTER, "bad cluster");
    conn.respond(CLUSTER, "n2", vec![(cluster("b"), "2")], &[]);
    let nack = conn.expect(CLUSTER, &[], &[], "n2").await;
    assert_eq!(
        nack.error_detail.map(|e| e.message).as_deref(),
        Some("bad cluster")
    );
    harness.sink.accept(CLUSTER);
    drop(conn);

    let mut conn = harness.connection().await;
    let first = conn.expect(CLUSTER, &[], &[], "").await;
    assert_eq!(
        first.initial_resource_versions,
        HashMap::from([("a".to_string(), "1".to_string())]),
        "declares what it holds, not what it rejected"
    );
}
