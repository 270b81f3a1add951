//! The client against the fake ADS server of [`crate::testing`], whose
//! streams the test drives, feeding the fake sink of [`sink`]: the harness
//! here, the tests by concern in the modules below.

use std::sync::Arc;
use std::time::Duration;

use proto::pb::envoy::config::core::v3::Node;
use proto::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use proto::wkt::Any;
use shared::type_url::{CLUSTER, ENDPOINT, LISTENER};
use tokio::sync::watch;

use super::{AdsClient, resource_name};
use crate::testing::fake_ads::{Connection, FakeAds, SotwAds, SotwConnection};
use crate::testing::resources::clusters;
use crate::xds::{ControlPlane, XdsStats};
use sink::FakeSink;

mod acks;
mod delta;
mod readiness;
mod reconnect;
mod sink;
mod subscriptions;

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
