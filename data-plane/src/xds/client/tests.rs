//! The client against the fake ADS server of [`crate::testing`], whose
//! streams the test drives, and a fake sink that records what it applies and
//! can be told to reject.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use proto::pb::envoy::config::core::v3::Node;
use proto::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use proto::wkt::Any;
use shared::type_url::{CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET};
use tokio::sync::watch;
use tonic::Status;

use super::{AdsClient, resource_name};
use crate::testing::fake_ads::{Connection, FakeAds, SotwAds, SotwConnection};
use crate::testing::resources::{clusters, endpoints, listeners, routes};
use crate::xds::{ConfigSink, ControlPlane, Rejection, UpdateResult, XdsStats, error_chain};

/// How long to wait for something that should happen.
const WAIT: Duration = Duration::from_secs(5);
/// How long to wait before concluding that nothing else is sent.
const QUIET: Duration = Duration::from_millis(200);

// === fake ADS streams ===

impl<Req, Resp> Connection<Req, Resp> {
    async fn request(&mut self) -> Req {
        tokio::time::timeout(WAIT, self.next_request())
            .await
            .expect("timed out waiting for a request")
            .expect("the stream ended")
    }

    async fn assert_quiet(&mut self)
    where
        Req: std::fmt::Debug,
    {
        if let Ok(request) = tokio::time::timeout(QUIET, self.next_request()).await {
            panic!("unexpected request {request:?}");
        }
    }
}

impl<Req, Resp> FakeAds<Req, Resp> {
    async fn accept(&mut self) -> Connection<Req, Resp> {
        tokio::time::timeout(WAIT, self.connection())
            .await
            .expect("timed out waiting for the client to connect")
            .expect("the server stopped")
    }
}

impl SotwConnection {
    /// Receives the next request and checks everything but the node and
    /// error detail, which it returns.
    async fn expect(
        &mut self,
        type_url: &str,
        version: &str,
        nonce: &str,
        names: &[&str],
    ) -> DiscoveryRequest {
        let request = self.request().await;
        assert_eq!(
            (
                request.type_url.as_str(),
                request.version_info.as_str(),
                request.response_nonce.as_str(),
                request.resource_names.clone()
            ),
            (
                type_url,
                version,
                nonce,
                names.iter().map(|n| n.to_string()).collect()
            ),
            "unexpected request {request:?}"
        );
        request
    }

    /// Receives the next request and checks that it is an ACK.
    async fn expect_ack(&mut self, type_url: &str, version: &str, nonce: &str, names: &[&str]) {
        let request = self.expect(type_url, version, nonce, names).await;
        assert_eq!(
            request.error_detail, None,
            "expected an ACK, got {request:?}"
        );
        assert_eq!(request.node, None);
    }

    fn respond(&self, type_url: &str, version: &str, nonce: &str, resources: Vec<Any>) {
        self.send(DiscoveryResponse {
            version_info: version.to_string(),
            resources,
            type_url: type_url.to_string(),
            nonce: nonce.to_string(),
            ..Default::default()
        })
        .expect("the client closed the stream");
    }
}

// === fake sink ===

/// EDS wants the name of every applied cluster; RDS wants, for every
/// applied listener, the route configuration of the same name.
#[derive(Default)]
struct FakeSink {
    state: Mutex<SinkState>,
}

#[derive(Default)]
struct SinkState {
    /// Every call to `apply`: the type and the resource names.
    applies: Vec<(String, Vec<String>)>,
    /// Types to reject, with the error to return.
    rejections: HashMap<String, String>,
    clusters: Vec<String>,
    listeners: Vec<String>,
}

impl FakeSink {
    fn with_config(clusters: &[&str], listeners: &[&str]) -> Self {
        let sink = Self::default();
        {
            let mut state = sink.state.lock();
            state.clusters = clusters.iter().map(|c| c.to_string()).collect();
            state.listeners = listeners.iter().map(|l| l.to_string()).collect();
        }
        sink
    }

    fn reject(&self, type_url: &str, error: &str) {
        self.state
            .lock()
            .rejections
            .insert(type_url.to_string(), error.to_string());
    }

    fn accept(&self, type_url: &str) {
        self.state.lock().rejections.remove(type_url);
    }

    fn applied_types(&self) -> Vec<String> {
        self.state
            .lock()
            .applies
            .iter()
            .map(|(t, _)| t.clone())
            .collect()
    }
}

impl ConfigSink for FakeSink {
    fn apply(&self, type_url: &str, resources: &[Any]) -> Result<(), Rejection> {
        let names: Vec<String> = resources.iter().filter_map(resource_name).collect();
        let mut state = self.state.lock();
        state.applies.push((type_url.to_string(), names.clone()));
        if let Some(error) = state.rejections.get(type_url) {
            return Err(error.clone().into());
        }
        match type_url {
            CLUSTER => state.clusters = names,
            LISTENER => state.listeners = names,
            _ => {}
        }
        Ok(())
    }

    fn wanted_names(&self, type_url: &str) -> Option<Vec<String>> {
        let state = self.state.lock();
        match type_url {
            ENDPOINT => Some(state.clusters.clone()),
            ROUTE => Some(state.listeners.clone()),
            SECRET => Some(Vec::new()),
            _ => None,
        }
    }
}

// === harness ===

const NODE_ID: &str = "sidecar~10.1.0.7~sleep-1.default~default.svc.cluster.local";

struct Harness {
    server: SotwAds,
    sink: Arc<FakeSink>,
    ready: watch::Receiver<bool>,
    stats: Arc<XdsStats>,
}

impl Harness {
    async fn start(sink: FakeSink) -> Self {
        let server = SotwAds::state_of_the_world().await.unwrap();
        let sink = Arc::new(sink);
        let (ready_tx, ready) = watch::channel(false);
        let client = connect(&server, sink.clone(), ready_tx);
        let stats = client.stats();
        tokio::spawn(client.run());
        Self {
            server,
            sink,
            ready,
            stats,
        }
    }

    async fn connection(&mut self) -> SotwConnection {
        self.server.accept().await
    }

    fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }
}

/// A client of `server` for [`NODE_ID`], not yet running.
fn connect<Req, Resp>(
    server: &FakeAds<Req, Resp>,
    sink: Arc<FakeSink>,
    ready: watch::Sender<bool>,
) -> AdsClient {
    let node = Node {
        id: NODE_ID.to_string(),
        ..Default::default()
    };
    let control_plane = ControlPlane::plaintext(&server.address().to_string()).unwrap();
    AdsClient::new(control_plane, node, sink, ready)
}

/// Checks a stream's first request: CDS, wildcard, with the node.
async fn expect_first_request(conn: &mut SotwConnection, cds_version: &str) {
    let first = conn.expect(CLUSTER, cds_version, "", &[]).await;
    assert_eq!(first.node.map(|n| n.id).as_deref(), Some(NODE_ID));
}

/// Takes a fresh client with an empty sink through CDS `v1` with cluster
/// `a`, leaving it subscribed to EDS for `a`.
async fn accept_first_clusters(conn: &mut SotwConnection) {
    expect_first_request(conn, "").await;
    conn.expect(LISTENER, "", "", &[]).await;
    conn.respond(CLUSTER, "v1", "n1", clusters(&["a"]));
    conn.expect_ack(CLUSTER, "v1", "n1", &[]).await;
    conn.expect(ENDPOINT, "", "", &["a"]).await;
}

// === tests ===

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

#[test]
fn resource_name_reads_the_name_of_every_type() {
    assert_eq!(resource_name(&clusters(&["c"])[0]).as_deref(), Some("c"));
    assert_eq!(resource_name(&endpoints(&["e"])[0]).as_deref(), Some("e"));
    assert_eq!(resource_name(&listeners(&["l"])[0]).as_deref(), Some("l"));
    assert_eq!(resource_name(&routes(&["r"])[0]).as_deref(), Some("r"));
}

#[test]
fn error_chain_joins_sources_without_repeats() {
    #[derive(Debug, thiserror::Error)]
    #[error("{message}")]
    struct Layer {
        message: &'static str,
        source: Option<Box<Layer>>,
    }
    let layer = |message, source| Layer { message, source };
    let error = layer(
        "transport error",
        Some(Box::new(layer(
            "tcp connect error",
            Some(Box::new(layer(
                "tcp connect error",
                Some(Box::new(layer("refused", None))),
            ))),
        ))),
    );
    assert_eq!(
        error_chain(&error),
        "transport error: tcp connect error: refused"
    );
}

mod delta;
