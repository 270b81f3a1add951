//! The relay end to end: an Envoy-side client on the SDS socket in a
//! temporary directory, the fake access log service as the control plane.

use std::sync::Arc;
use std::time::Duration;

use proto::pb::envoy::config::core::v3::Node;
use proto::pb::envoy::data::accesslog::v3::{AccessLogCommon, TcpAccessLogEntry};
use proto::pb::envoy::service::accesslog::v3::StreamAccessLogsMessage;
use proto::pb::envoy::service::accesslog::v3::access_log_service_client::AccessLogServiceClient;
use proto::pb::envoy::service::accesslog::v3::stream_access_logs_message::{
    Identifier, LogEntries, TcpAccessLogEntries,
};
use shared::identity::CONTROL_PLANE_SERVER_NAME;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Endpoint;

use super::{AccessLogRelay, DROP_REPORT_INTERVAL, DropReport};
use crate::access_log_service::AccessLogStats;
use crate::identity::SpiffeId;
use crate::sds::SdsListener;
use crate::testing::fake_als::{FakeAls, RecordedStream};
use crate::testing::fake_ca::TestCa;
use crate::xds::{ControlPlane, TlsSettings};

/// The relay on a socket in a temporary directory, its control plane
/// `als`, with token `token-1`.
struct Relay {
    dir: tempfile::TempDir,
    stats: Arc<AccessLogStats>,
}

impl Relay {
    async fn start(als: &FakeAls) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("root-cert.pem"), als.root_pem()).unwrap();
        std::fs::write(dir.path().join("token"), "token-1\n").unwrap();
        let control_plane = ControlPlane::tls(
            &als.address().to_string(),
            &TlsSettings {
                ca_root: dir.path().join("root-cert.pem"),
                server_name: CONTROL_PLANE_SERVER_NAME.to_string(),
                token: dir.path().join("token"),
            },
        )
        .unwrap();
        let stats = Arc::new(AccessLogStats::default());
        let relay = AccessLogRelay::new(control_plane, stats.clone());
        let id = SpiffeId {
            trust_domain: "cluster.local".into(),
            namespace: "default".into(),
            service_account: "sleep".into(),
        };
        let certificate = TestCa::default().workload_certificate(&id, Duration::from_secs(3600));
        let (_, certificates) = watch::channel(Arc::new(certificate));
        let listener = SdsListener::bind(&dir.path().join("agent/socket")).unwrap();
        tokio::spawn(listener.serve(certificates, relay));
        Self { dir, stats }
    }

    /// An Envoy-side stream: its sender, and the call's outcome.
    async fn envoy_stream(
        &self,
    ) -> (
        mpsc::Sender<StreamAccessLogsMessage>,
        tokio::task::JoinHandle<Result<(), tonic::Status>>,
    ) {
        let uri = format!("unix:{}", self.dir.path().join("agent/socket").display());
        let channel = Endpoint::from_shared(uri).unwrap().connect().await.unwrap();
        let (messages, outgoing) = mpsc::channel(16);
        let call = tokio::spawn(async move {
            AccessLogServiceClient::new(channel)
                .stream_access_logs(ReceiverStream::new(outgoing))
                .await
                .map(drop)
        });
        (messages, call)
    }
}

fn identifier() -> Identifier {
    Identifier {
        node: Some(Node {
            id: "sidecar~10.0.0.3~envoy.default~default.svc.cluster.local".into(),
            ..Default::default()
        }),
        log_name: "egress".into(),
    }
}

fn tcp_message(sni: &str) -> StreamAccessLogsMessage {
    StreamAccessLogsMessage {
        identifier: None,
        log_entries: Some(LogEntries::TcpLogs(TcpAccessLogEntries {
            log_entry: vec![TcpAccessLogEntry {
                common_properties: Some(AccessLogCommon {
                    upstream_cluster: "BlackHoleCluster".into(),
                    route_name: sni.into(),
                    ..Default::default()
                }),
                connection_properties: None,
            }],
        })),
    }
}

fn delivered(streams: &[RecordedStream]) -> usize {
    streams.iter().map(|s| s.messages.len()).sum()
}

#[tokio::test]
async fn envoy_streams_reach_the_control_plane_as_they_are_with_the_token() {
    let als = FakeAls::start(CONTROL_PLANE_SERVER_NAME).await.unwrap();
    let relay = Relay::start(&als).await;
    let (envoy, call) = relay.envoy_stream().await;
    let first = StreamAccessLogsMessage {
        identifier: Some(identifier()),
        ..tcp_message("a.example")
    };
    envoy.send(first.clone()).await.unwrap();
    envoy.send(tcp_message("b.example")).await.unwrap();
    let streams = als.wait_for(|streams| delivered(streams) == 2).await;
    assert_eq!(streams.len(), 1, "one upstream stream per Envoy stream");
    assert_eq!(streams[0].authorization.as_deref(), Some("Bearer token-1"));
    assert_eq!(streams[0].messages, [first, tcp_message("b.example")]);
    assert_eq!(relay.stats.written(), 2);

    drop(envoy);
    assert!(call.await.unwrap().is_ok(), "Envoy's stream ends cleanly");
}

#[tokio::test]
async fn while_the_control_plane_refuses_envoys_stream_stays_up_and_drops() {
    let als = FakeAls::start(CONTROL_PLANE_SERVER_NAME).await.unwrap();
    als.refuse(Some(tonic::Status::unavailable("restarting")));
    let relay = Relay::start(&als).await;
    let (envoy, call) = relay.envoy_stream().await;
    envoy
        .send(StreamAccessLogsMessage {
            identifier: Some(identifier()),
            ..tcp_message("a.example")
        })
        .await
        .unwrap();
    while relay.stats.dropped() == 0 {
        envoy.send(tcp_message("dropped.example")).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    als.refuse(None);
    let sender = envoy.clone();
    let traffic = tokio::spawn(async move {
        loop {
            if sender.send(tcp_message("later.example")).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let streams = als
        .wait_for(|streams| streams.iter().any(|s| !s.messages.is_empty()))
        .await;
    traffic.abort();
    let accepted = streams.iter().find(|s| !s.messages.is_empty()).unwrap();
    assert_eq!(
        accepted.messages[0].identifier,
        Some(identifier()),
        "a new upstream stream names Envoy's node and log again"
    );
    assert!(
        !call.is_finished(),
        "Envoy's stream stayed up through the refusals"
    );
    drop(envoy);
    assert!(call.await.unwrap().is_ok());
}

#[test]
fn the_dropped_count_is_logged_at_most_once_a_minute_and_only_when_it_grew() {
    let start = tokio::time::Instant::now();
    let mut report = DropReport::default();
    assert!(report.due(start, 3), "the first drops are logged");
    let soon = start + Duration::from_secs(1);
    assert!(!report.due(soon, 10), "not again within the interval");
    let later = start + DROP_REPORT_INTERVAL;
    assert!(report.due(later, 10), "grown, a minute later");
    let much_later = later + DROP_REPORT_INTERVAL * 5;
    assert!(!report.due(much_later, 10), "not grown: nothing to say");
    assert!(report.due(much_later, 11));
}
