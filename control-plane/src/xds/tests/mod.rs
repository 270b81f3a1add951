//! The servers end to end on 127.0.0.1: the secure port (TLS with the mesh
//! root, a bearer token on every call) and the plaintext one, with tonic
//! clients as proxies and operators would call them.

mod access_log;
mod admission;
mod certificates;
mod limits;
mod name_table;
mod registration;
mod secrets;
mod secure;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use proto::pb::envoy::config::core::v3::Node;
use proto::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use proto::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use shared::node::{NodeId, NodeType};
use shared::type_url;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::MetadataValue;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Request, Status};

use super::state::MeshStatePublisher;
use super::{
    DEFAULT_GATEWAY_SERVICE_ACCOUNT, Limits, SecureServer, TrustedGateways, XdsContext,
    serve_plaintext, serve_secure,
};
use crate::auth::{Authenticator, ServiceAccount, TokenSigningKey};
use crate::ca::{self, CertificateAuthority, DEFAULT_WORKLOAD_CERT_TTL};
use crate::config::ConfigSnapshot;
use crate::egress::{self, LiveInventory};
use crate::metrics::Metrics;
use crate::translate::Proxy;
use shared::identity::CONTROL_PLANE_SERVER_NAME;

/// An upper bound for anything the server does, so a broken test fails
/// instead of hanging.
const WAIT: Duration = Duration::from_secs(10);

/// A control plane on two loopback ports, its CA directory and token key.
struct Mesh {
    context: Arc<XdsContext>,
    /// What the AccessLogService recorded.
    inventory: Arc<LiveInventory>,
    secure: SocketAddr,
    plaintext: SocketAddr,
    root_pem: String,
    token_key_pem: String,
    signing: TokenSigningKey,
    /// Fires the servers' shutdown.
    stop: tokio::sync::watch::Sender<()>,
    secure_server: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
    _ca_dir: tempfile::TempDir,
}

/// Resolves when `stop` fires.
async fn stopped(mut stop: tokio::sync::watch::Receiver<()>) {
    let _ = stop.changed().await;
}

impl Mesh {
    async fn start() -> Self {
        Self::start_with(ConfigSnapshot::default()).await
    }

    async fn start_with(snapshot: ConfigSnapshot) -> Self {
        Self::start_with_limits(snapshot, Limits::default()).await
    }

    async fn start_with_limits(snapshot: ConfigSnapshot, limits: Limits) -> Self {
        let ca_dir = tempfile::tempdir().expect("tempdir");
        let ca = CertificateAuthority::load_or_create(
            ca_dir.path(),
            "cluster.local",
            DEFAULT_WORKLOAD_CERT_TTL,
        )
        .expect("CA");
        let token_key_pem = ca::load_or_create_token_key(ca_dir.path()).expect("token key");
        let signing = TokenSigningKey::from_pem(&token_key_pem).expect("token key");
        let root_pem = ca.root_pem().to_string();
        let metrics = Arc::new(Metrics::default());
        let inventory = Arc::new(
            LiveInventory::open(egress::Limits::default(), None, metrics.clone())
                .expect("inventory"),
        );
        let secure = SecureServer {
            certificate: ca
                .issue_server_certificate(&[])
                .expect("server certificate"),
            ca: Arc::new(ca),
            authenticator: Arc::new(Authenticator::new(&signing, None)),
            inventory: inventory.clone(),
        };
        let gateways = TrustedGateways::new([DEFAULT_GATEWAY_SERVICE_ACCOUNT
            .parse()
            .expect("the default gateway account")]);
        let context = XdsContext::new(
            MeshStatePublisher::new(Arc::new(snapshot)),
            metrics,
            gateways,
            limits,
        );
        let loopback = "127.0.0.1:0".parse().expect("address");
        let secure_listener = super::bind(loopback).await.expect("bind");
        let plaintext_listener = super::bind(loopback).await.expect("bind");
        let addresses = (
            secure_listener.local_addr().expect("address"),
            plaintext_listener.local_addr().expect("address"),
        );
        let (stop, stop_rx) = tokio::sync::watch::channel(());
        let secure_server = tokio::spawn(serve_secure(
            secure_listener,
            context.clone(),
            secure,
            stopped(stop_rx.clone()),
        ));
        tokio::spawn(serve_plaintext(
            plaintext_listener,
            context.clone(),
            stopped(stop_rx),
        ));
        Self {
            context,
            inventory,
            secure: addresses.0,
            plaintext: addresses.1,
            root_pem,
            token_key_pem,
            signing,
            stop,
            secure_server,
            _ca_dir: ca_dir,
        }
    }

    /// A TLS channel to the secure port that trusts the mesh root and
    /// verifies istiod's name, as an agent's.
    async fn secure_channel(&self) -> Channel {
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.root_pem))
            .domain_name(CONTROL_PLANE_SERVER_NAME);
        Endpoint::from_shared(format!("https://{}", self.secure))
            .expect("endpoint")
            .tls_config(tls)
            .expect("TLS config")
            .connect()
            .await
            .expect("TLS connection to the secure port")
    }

    async fn plaintext_channel(
        &self,
        addr: SocketAddr,
    ) -> Result<Channel, tonic::transport::Error> {
        Endpoint::from_shared(format!("http://{addr}"))
            .expect("endpoint")
            .connect_timeout(WAIT)
            .connect()
            .await
    }

    /// A valid token for `namespace/name`, for an hour.
    fn token(&self, namespace: &str, name: &str) -> String {
        let account = ServiceAccount::new(namespace, name).expect("valid names");
        self.signing
            .mint(&account, SystemTime::now(), Duration::from_secs(3600))
            .expect("mint")
    }

    /// How many calls were refused for `reason`, as `/metrics` shows it.
    fn auth_failures(&self, reason: &str) -> u64 {
        let metric = format!("pilot_xds_auth_failures_total{{reason=\"{reason}\"}} ");
        self.context
            .metrics
            .render()
            .lines()
            .find_map(|line| line.strip_prefix(&metric))
            .map_or(0, |count| count.parse().expect("a count"))
    }

    /// Opens an ADS stream on the secure port with `token`, subscribing
    /// `node` to clusters, and waits for the first response (or the status
    /// the stream ends with).
    async fn connect(
        &self,
        token: Option<&str>,
        node: Node,
    ) -> Result<(AdsStream, DiscoveryResponse), Status> {
        first_response(self.secure_channel().await, token, node, type_url::CLUSTER).await
    }

    /// Connects `node` on the secure port with a valid token for
    /// `namespace/name`; the stream stays open while the result lives.
    async fn connect_as(&self, namespace: &str, name: &str, node: Node) -> AdsStream {
        let token = self.token(namespace, name);
        let (stream, _) = self
            .connect(Some(&token), node)
            .await
            .expect("served as what its token says");
        stream
    }

    /// The published workloads, once there is one.
    async fn registered_workloads(&self) -> Arc<[crate::translate::Workload]> {
        self.wait_for_workloads(|w| !w.is_empty()).await;
        self.context.publisher.current().workloads.clone()
    }

    /// Waits until the published workloads satisfy `check`.
    async fn wait_for_workloads(&self, check: impl Fn(&[crate::translate::Workload]) -> bool) {
        let mut states = self.context.publisher.subscribe();
        tokio::time::timeout(WAIT, async {
            loop {
                if check(&states.borrow_and_update().workloads) {
                    return;
                }
                states.changed().await.expect("publisher alive");
            }
        })
        .await
        .expect("workloads in time");
    }
}

/// `message` with `authorization: Bearer <token>` when a token is given.
fn authorized<T>(message: T, token: Option<&str>) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(token) = token {
        let value = MetadataValue::try_from(format!("Bearer {token}")).expect("ASCII");
        request.metadata_mut().insert("authorization", value);
    }
    request
}

/// A node as an agent sends it.
fn node(
    node_type: NodeType,
    namespace: &str,
    service_account: &str,
    labels: &[(&str, &str)],
) -> Node {
    node_at("10.1.0.5", node_type, namespace, service_account, labels)
}

/// A node with the address `ip`.
fn node_at(
    ip: &str,
    node_type: NodeType,
    namespace: &str,
    service_account: &str,
    labels: &[(&str, &str)],
) -> Node {
    Proxy {
        id: NodeId::new(node_type, ip, "pod-1", namespace).to_string(),
        node_type,
        namespace: namespace.to_string(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ips: vec![ip.to_string()],
        service_account: service_account.to_string(),
        dns_capture: false,
    }
    .to_node()
}

fn sidecar(namespace: &str, service_account: &str) -> Node {
    node(
        NodeType::Sidecar,
        namespace,
        service_account,
        &[("app", "sleep")],
    )
}

/// An open ADS stream: its request sender (which also keeps it open) and
/// its responses.
struct AdsStream {
    requests: mpsc::Sender<DiscoveryRequest>,
    responses: tonic::Streaming<DiscoveryResponse>,
}

/// Opens an ADS stream with `first` as its first request.
async fn open_ads(
    channel: Channel,
    token: Option<&str>,
    first: DiscoveryRequest,
) -> Result<AdsStream, Status> {
    let (requests, rx) = mpsc::channel(4);
    requests.send(first).await.expect("queued");
    let responses = AggregatedDiscoveryServiceClient::new(channel)
        .stream_aggregated_resources(authorized(ReceiverStream::new(rx), token))
        .await?
        .into_inner();
    Ok(AdsStream {
        requests,
        responses,
    })
}

impl AdsStream {
    async fn next(&mut self) -> Result<DiscoveryResponse, Status> {
        tokio::time::timeout(WAIT, self.responses.message())
            .await
            .expect("a response in time")?
            .ok_or_else(|| Status::unknown("the stream ended without a status"))
    }

    /// ACKs `response` for the subscription `names`.
    async fn ack(&self, response: &DiscoveryResponse, names: &[&str]) {
        let ack = DiscoveryRequest {
            type_url: response.type_url.clone(),
            version_info: response.version_info.clone(),
            response_nonce: response.nonce.clone(),
            resource_names: names.iter().map(|n| n.to_string()).collect(),
            ..Default::default()
        };
        self.requests.send(ack).await.expect("stream open");
    }
}

/// Opens an ADS stream subscribing `node` to `type_url` and waits for the
/// first response (or the status the stream ends with).
async fn first_response(
    channel: Channel,
    token: Option<&str>,
    node: Node,
    type_url: &str,
) -> Result<(AdsStream, DiscoveryResponse), Status> {
    let request = DiscoveryRequest {
        node: Some(node),
        type_url: type_url.to_string(),
        ..Default::default()
    };
    let mut stream = open_ads(channel, token, request).await?;
    let response = stream.next().await?;
    Ok((stream, response))
}
