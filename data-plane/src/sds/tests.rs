//! The SDS server over its Unix socket, with a tonic client as Envoy's
//! `sds-grpc` cluster uses it: what each protocol serves, ACKs that send
//! nothing, the push at rotation, names it does not have, and who may
//! connect.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use proto::pb::envoy::config::core::v3::{Node, data_source};
use proto::pb::envoy::extensions::transport_sockets::tls::v3::{Secret, secret};
use proto::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use proto::pb::envoy::service::secret::v3::secret_discovery_service_client::SecretDiscoveryServiceClient;
use proto::wkt::Any;
use shared::type_url;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::transport::{Channel, Endpoint};

use super::{AccessLogRelay, SdsError, SdsListener, socket};
use crate::identity::{SpiffeId, WorkloadCertificate};
use crate::testing::fake_ca::TestCa;
use crate::xds::ControlPlane;

const WAIT: Duration = Duration::from_secs(5);
const QUIET: Duration = Duration::from_millis(200);

fn sleep_id() -> SpiffeId {
    SpiffeId {
        trust_domain: "cluster.local".into(),
        namespace: "default".into(),
        service_account: "sleep".into(),
    }
}

/// A server on a socket in a temporary directory, and the CA whose
/// certificates it serves.
struct Harness {
    dir: tempfile::TempDir,
    ca: TestCa,
    certificates: watch::Sender<Arc<WorkloadCertificate>>,
}

impl Harness {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::default();
        let first = Arc::new(ca.workload_certificate(&sleep_id(), Duration::from_secs(3600)));
        let (certificates, current) = watch::channel(first);
        let listener = SdsListener::bind(&dir.path().join("sds/socket")).unwrap();
        let relay = AccessLogRelay::new(
            ControlPlane::plaintext("127.0.0.1:9").unwrap(),
            Arc::default(),
        );
        tokio::spawn(listener.serve(current, relay));
        Self {
            dir,
            ca,
            certificates,
        }
    }

    fn current(&self) -> Arc<WorkloadCertificate> {
        self.certificates.borrow().clone()
    }

    fn rotate(&self) -> Arc<WorkloadCertificate> {
        let next = Arc::new(
            self.ca
                .workload_certificate(&sleep_id(), Duration::from_secs(3600)),
        );
        self.certificates.send_replace(next.clone());
        next
    }

    async fn client(&self) -> SecretDiscoveryServiceClient<Channel> {
        let uri = format!("unix:{}", self.dir.path().join("sds/socket").display());
        let channel = Endpoint::from_shared(uri).unwrap().connect().await.unwrap();
        SecretDiscoveryServiceClient::new(channel)
    }
}

fn decode(any: &Any) -> Secret {
    assert_eq!(any.type_url, type_url::SECRET);
    Secret::decode(any.value.as_slice()).unwrap()
}

fn inline_text(source: Option<&proto::pb::envoy::config::core::v3::DataSource>) -> String {
    match source.and_then(|s| s.specifier.as_ref()) {
        Some(data_source::Specifier::InlineBytes(bytes)) => {
            String::from_utf8(bytes.clone()).unwrap()
        }
        other => panic!("expected inline bytes, got {other:?}"),
    }
}

/// The chain PEM of a `default` secret.
fn chain_of(secret: &Secret) -> String {
    match &secret.r#type {
        Some(secret::Type::TlsCertificate(cert)) => {
            assert!(inline_text(cert.private_key.as_ref()).contains("PRIVATE KEY"));
            inline_text(cert.certificate_chain.as_ref())
        }
        other => panic!("expected a tls_certificate, got {other:?}"),
    }
}

fn request(names: &[&str], version: &str, nonce: &str) -> DiscoveryRequest {
    DiscoveryRequest {
        node: Some(Node {
            id: "sidecar~127.0.0.1~sleep.default~default.svc.cluster.local".into(),
            ..Default::default()
        }),
        version_info: version.into(),
        resource_names: names.iter().map(|n| n.to_string()).collect(),
        type_url: type_url::SECRET.into(),
        response_nonce: nonce.into(),
        ..Default::default()
    }
}

async fn next<T>(stream: &mut tonic::Streaming<T>) -> T {
    tokio::time::timeout(WAIT, stream.message())
        .await
        .expect("a response in time")
        .unwrap()
        .expect("the stream is open")
}

async fn assert_quiet<T: std::fmt::Debug>(stream: &mut tonic::Streaming<T>) {
    if let Ok(message) = tokio::time::timeout(QUIET, stream.message()).await {
        panic!("unexpected {message:?}");
    }
}

#[tokio::test]
async fn state_of_the_world_serves_default_then_pushes_each_rotation() {
    let harness = Harness::start().await;
    let (requests, outgoing) = mpsc::unbounded_channel();
    requests.send(request(&["default"], "", "")).unwrap();
    let mut responses = harness
        .client()
        .await
        .stream_secrets(UnboundedReceiverStream::new(outgoing))
        .await
        .unwrap()
        .into_inner();

    let first: DiscoveryResponse = next(&mut responses).await;
    let current = harness.current();
    assert_eq!(first.version_info, current.serial());
    assert_eq!(first.resources.len(), 1);
    let secret = decode(&first.resources[0]);
    assert_eq!(secret.name, "default");
    assert_eq!(chain_of(&secret), current.chain_pem());

    requests
        .send(request(&["default"], &first.version_info, &first.nonce))
        .unwrap();
    assert_quiet(&mut responses).await;

    let rotated = harness.rotate();
    let pushed = next(&mut responses).await;
    assert_eq!(pushed.version_info, rotated.serial());
    assert_ne!(pushed.nonce, first.nonce);
    assert_eq!(chain_of(&decode(&pushed.resources[0])), rotated.chain_pem());
}

#[tokio::test]
async fn rootca_is_the_root_as_a_validation_context() {
    let harness = Harness::start().await;
    let response = harness
        .client()
        .await
        .fetch_secrets(request(&["ROOTCA"], "", ""))
        .await
        .unwrap()
        .into_inner();
    let secret = decode(&response.resources[0]);
    assert_eq!(secret.name, "ROOTCA");
    match &secret.r#type {
        Some(secret::Type::ValidationContext(vc)) => {
            assert_eq!(inline_text(vc.trusted_ca.as_ref()), harness.ca.root_pem())
        }
        other => panic!("expected a validation_context, got {other:?}"),
    }
}

#[tokio::test]
async fn delta_sends_what_is_subscribed_and_answers_unknown_names_as_removed() {
    let harness = Harness::start().await;
    let (requests, outgoing) = mpsc::unbounded_channel();
    requests
        .send(DeltaDiscoveryRequest {
            type_url: type_url::SECRET.into(),
            resource_names_subscribe: vec![
                "default".into(),
                "ROOTCA".into(),
                "kubernetes://credential".into(),
            ],
            ..Default::default()
        })
        .unwrap();
    let mut responses = harness
        .client()
        .await
        .delta_secrets(UnboundedReceiverStream::new(outgoing))
        .await
        .unwrap()
        .into_inner();
    let first: DeltaDiscoveryResponse = next(&mut responses).await;
    let mut names: Vec<&str> = first.resources.iter().map(|r| r.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["ROOTCA", "default"]);
    assert!(
        first
            .resources
            .iter()
            .all(|r| r.version == harness.current().serial())
    );
    assert_eq!(first.removed_resources, ["kubernetes://credential"]);

    requests
        .send(DeltaDiscoveryRequest {
            type_url: type_url::SECRET.into(),
            response_nonce: first.nonce.clone(),
            resource_names_unsubscribe: vec!["ROOTCA".into()],
            ..Default::default()
        })
        .unwrap();
    assert_quiet(&mut responses).await;

    let rotated = harness.rotate();
    let pushed = next(&mut responses).await;
    let names: Vec<&str> = pushed.resources.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["default"], "only what is still subscribed");
    assert_eq!(pushed.resources[0].version, rotated.serial());
}

#[tokio::test]
async fn the_socket_is_private_and_replaces_a_stale_one_only() {
    let harness = Harness::start().await;
    let path = harness.dir.path().join("sds/socket");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    let again = harness.dir.path().join("again");
    drop(std::os::unix::net::UnixListener::bind(&again).unwrap());
    assert!(
        SdsListener::bind(&again).is_ok(),
        "a stale socket is replaced"
    );

    let file = harness.dir.path().join("file");
    std::fs::write(&file, "data").unwrap();
    let error = SdsListener::bind(&file)
        .err()
        .expect("a regular file is kept");
    assert!(matches!(error, SdsError::Socket { .. }), "{error}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "data");
}

#[tokio::test]
async fn the_socket_is_private_from_the_moment_it_is_bound() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("socket");
    let _listener = socket::bind_private(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(
        mode & 0o077,
        0,
        "no window in which another user may connect before chmod: {mode:o}"
    );
}

#[test]
fn only_this_user_and_root_may_fetch_the_key() {
    assert!(socket::is_trusted_peer(1337, 1337), "the agent's own Envoy");
    assert!(socket::is_trusted_peer(0, 1337), "root");
    assert!(!socket::is_trusted_peer(1000, 1337), "another local user");
    assert!(
        !socket::is_trusted_peer(1337, 0),
        "an agent running as root serves root only"
    );
}
