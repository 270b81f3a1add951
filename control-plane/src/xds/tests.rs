//! The server end to end on 127.0.0.1: a proxy that connects gets the
//! `default` and `ROOTCA` secrets of its identity over ADS and SDS, shares
//! the certificate with proxies of the same identity, gets a new one when
//! it rotates, and CSDS lists secrets without their content.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use proto::pb::envoy::admin::v3::ClientResourceStatus;
use proto::pb::envoy::config::core::v3::{Node, data_source};
use proto::pb::envoy::extensions::transport_sockets::tls::v3::{Secret, secret};
use proto::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use proto::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use proto::pb::envoy::service::secret::v3::secret_discovery_service_client::SecretDiscoveryServiceClient;
use proto::pb::envoy::service::status::v3::ClientStatusRequest;
use proto::pb::envoy::service::status::v3::client_status_discovery_service_client::ClientStatusDiscoveryServiceClient;
use shared::node::{NodeId, NodeType};
use shared::type_url;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use x509_parser::extensions::GeneralName;

use super::cache::content_version;
use super::secrets::SecretCache;
use super::state::MeshStatePublisher;
use super::{XdsContext, serve};
use crate::ca::{CertificateAuthority, DEFAULT_WORKLOAD_CERT_TTL, Identity};
use crate::config::ConfigSnapshot;
use crate::metrics::Metrics;
use crate::translate::Proxy;

const WAIT: Duration = Duration::from_secs(10);

async fn start(ttl: Duration) -> (Arc<XdsContext>, Channel) {
    let publisher = MeshStatePublisher::new(Arc::new(ConfigSnapshot::default()));
    let ca = CertificateAuthority::generate("cluster.local", ttl).expect("CA");
    let context = XdsContext::new(publisher, Arc::new(Metrics::default()), Arc::new(ca));
    let listener = super::bind("127.0.0.1:0".parse().expect("address"))
        .await
        .expect("bind");
    let addr: SocketAddr = listener.local_addr().expect("address");
    tokio::spawn(serve(listener, context.clone(), std::future::pending()));
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    (context, channel)
}

fn node(pod: &str, service_account: &str) -> Node {
    Proxy {
        id: NodeId::new(NodeType::Sidecar, "10.1.0.5", pod, "default").to_string(),
        node_type: NodeType::Sidecar,
        namespace: "default".to_string(),
        labels: [("app".to_string(), "sleep".to_string())].into(),
        ips: vec!["10.1.0.5".to_string()],
        service_account: service_account.to_string(),
    }
    .to_node()
}

fn secrets_request(node: Option<Node>) -> DiscoveryRequest {
    DiscoveryRequest {
        node,
        type_url: type_url::SECRET.to_string(),
        resource_names: vec!["default".to_string(), "ROOTCA".to_string()],
        ..Default::default()
    }
}

/// An ADS stream subscribed to the two secrets.
struct SecretStream {
    requests: mpsc::Sender<DiscoveryRequest>,
    responses: tonic::Streaming<DiscoveryResponse>,
}

impl SecretStream {
    async fn open(channel: Channel, node: Node) -> Self {
        let (requests, rx) = mpsc::channel(4);
        requests
            .send(secrets_request(Some(node)))
            .await
            .expect("send");
        let responses = AggregatedDiscoveryServiceClient::new(channel)
            .stream_aggregated_resources(ReceiverStream::new(rx))
            .await
            .expect("stream")
            .into_inner();
        Self {
            requests,
            responses,
        }
    }

    /// The next response, ACKed.
    async fn next(&mut self) -> Secrets {
        let response = tokio::time::timeout(WAIT, self.responses.message())
            .await
            .expect("a response in time")
            .expect("stream healthy")
            .expect("stream open");
        assert_eq!(response.type_url, type_url::SECRET);
        self.requests
            .send(DiscoveryRequest {
                version_info: response.version_info.clone(),
                response_nonce: response.nonce.clone(),
                ..secrets_request(None)
            })
            .await
            .expect("ACK");
        Secrets::of(&response)
    }
}

/// The PEM contents of the two secrets of a response.
#[derive(Debug, Clone, PartialEq)]
struct Secrets {
    chain: String,
    key: String,
    root: String,
}

impl Secrets {
    fn of(response: &DiscoveryResponse) -> Self {
        let mut chain = None;
        let mut key = None;
        let mut root = None;
        for any in &response.resources {
            assert_eq!(any.type_url, type_url::SECRET);
            let secret = Secret::decode(any.value.as_slice()).expect("a Secret");
            match (secret.name.as_str(), secret.r#type) {
                ("default", Some(secret::Type::TlsCertificate(tls))) => {
                    chain = tls.certificate_chain.map(inline);
                    key = tls.private_key.map(inline);
                }
                ("ROOTCA", Some(secret::Type::ValidationContext(validation))) => {
                    root = validation.trusted_ca.map(inline);
                }
                (name, other) => panic!("unexpected secret {name}: {other:?}"),
            }
        }
        Self {
            chain: chain.expect("default has a certificate chain"),
            key: key.expect("default has a private key"),
            root: root.expect("ROOTCA has trusted_ca"),
        }
    }

    fn spiffe_ids(&self) -> Vec<String> {
        let (_, pem) = x509_parser::pem::parse_x509_pem(self.chain.as_bytes()).expect("PEM");
        let leaf = pem.parse_x509().expect("X.509");
        let san = leaf.subject_alternative_name().expect("SAN").expect("SAN");
        san.value
            .general_names
            .iter()
            .map(|name| match name {
                GeneralName::URI(uri) => uri.to_string(),
                other => panic!("unexpected SAN {other:?}"),
            })
            .collect()
    }

    fn assert_signed_by_root_with_matching_key(&self) {
        let (_, leaf_pem) = x509_parser::pem::parse_x509_pem(self.chain.as_bytes()).expect("PEM");
        let leaf = leaf_pem.parse_x509().expect("X.509");
        let (_, root_pem) = x509_parser::pem::parse_x509_pem(self.root.as_bytes()).expect("PEM");
        let root = root_pem.parse_x509().expect("X.509");
        leaf.verify_signature(Some(root.public_key()))
            .expect("ROOTCA signed default");
        let key = rcgen::KeyPair::from_pem(&self.key).expect("PKCS#8 key");
        assert_eq!(
            key.public_key_raw(),
            leaf.public_key().subject_public_key.data.as_ref(),
            "the key is the certificate's"
        );
    }
}

fn inline(source: proto::pb::envoy::config::core::v3::DataSource) -> String {
    match source.specifier {
        Some(data_source::Specifier::InlineBytes(bytes)) => {
            String::from_utf8(bytes).expect("PEM is text")
        }
        other => panic!("expected inline_bytes, got {other:?}"),
    }
}

#[tokio::test]
async fn a_connected_proxy_gets_its_identity_secrets_shared_by_its_identity() {
    let (context, channel) = start(DEFAULT_WORKLOAD_CERT_TTL).await;
    let mut sleep_1 = SecretStream::open(channel.clone(), node("sleep-1", "sleep")).await;
    let first = sleep_1.next().await;
    assert_eq!(
        first.spiffe_ids(),
        ["spiffe://cluster.local/ns/default/sa/sleep"]
    );
    assert_eq!(first.root, context.secrets.ca().root_pem());
    first.assert_signed_by_root_with_matching_key();

    let mut sleep_2 = SecretStream::open(channel.clone(), node("sleep-2", "sleep")).await;
    assert_eq!(
        sleep_2.next().await,
        first,
        "proxies with one identity share one certificate"
    );

    let mut other = SecretStream::open(channel.clone(), node("other-1", "other")).await;
    let other = other.next().await;
    assert_eq!(
        other.spiffe_ids(),
        ["spiffe://cluster.local/ns/default/sa/other"]
    );
    assert_ne!(other.key, first.key);
    assert_eq!(other.root, first.root);

    let status = ClientStatusDiscoveryServiceClient::new(channel)
        .fetch_client_status(ClientStatusRequest::default())
        .await
        .expect("CSDS")
        .into_inner();
    let mut listed = 0;
    for config in &status.config {
        for resource in &config.generic_xds_configs {
            assert_eq!(resource.type_url, type_url::SECRET);
            assert!(
                resource.xds_config.is_none(),
                "CSDS never shows secret content"
            );
            listed += 1;
        }
    }
    assert_eq!(
        listed, 6,
        "two secrets for each of three proxies: {status:#?}"
    );
    assert!(
        status
            .config
            .iter()
            .all(|c| c.generic_xds_configs.iter().all(|r| {
                r.client_status == ClientResourceStatus::Acked as i32
                    || r.client_status == ClientResourceStatus::Requested as i32
            }))
    );
}

#[tokio::test]
async fn a_certificate_is_rotated_and_re_sent_on_the_same_stream() {
    let (context, channel) = start(Duration::from_secs(2)).await;
    tokio::spawn(super::secrets::rotate_certificates(context.clone()));
    let mut stream = SecretStream::open(channel, node("sleep-1", "sleep")).await;
    let first = stream.next().await;
    let rotated = stream.next().await;
    assert_ne!(rotated.chain, first.chain, "a new certificate");
    assert_ne!(rotated.key, first.key, "with a new key");
    assert_eq!(rotated.root, first.root, "from the same root");
    assert_eq!(rotated.spiffe_ids(), first.spiffe_ids());
    rotated.assert_signed_by_root_with_matching_key();
}

#[tokio::test]
async fn the_secret_discovery_service_serves_secrets_only() {
    let (_context, channel) = start(DEFAULT_WORKLOAD_CERT_TTL).await;
    let mut sds = SecretDiscoveryServiceClient::new(channel);

    let fetched = sds
        .fetch_secrets(secrets_request(Some(node("sleep-1", "sleep"))))
        .await
        .expect("FetchSecrets")
        .into_inner();
    let fetched = Secrets::of(&fetched);
    assert_eq!(
        fetched.spiffe_ids(),
        ["spiffe://cluster.local/ns/default/sa/sleep"]
    );

    let (tx, rx) = mpsc::channel(4);
    tx.send(secrets_request(Some(node("sleep-1", "sleep"))))
        .await
        .expect("send");
    let mut responses = sds
        .stream_secrets(ReceiverStream::new(rx))
        .await
        .expect("StreamSecrets")
        .into_inner();
    let streamed = tokio::time::timeout(WAIT, responses.message())
        .await
        .expect("in time")
        .expect("healthy")
        .expect("open");
    assert_eq!(
        Secrets::of(&streamed),
        fetched,
        "one certificate per identity"
    );

    tx.send(DiscoveryRequest {
        type_url: type_url::CLUSTER.to_string(),
        ..Default::default()
    })
    .await
    .expect("send");
    let refused = tokio::time::timeout(WAIT, responses.message())
        .await
        .expect("in time")
        .expect_err("clusters are refused on SDS");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(refused.message().contains("over ADS"), "{refused}");
}

fn identity(service_account: &str) -> Identity {
    Identity {
        trust_domain: "cluster.local".to_string(),
        namespace: "default".to_string(),
        service_account: service_account.to_string(),
    }
}

#[test]
fn the_secret_cache_shares_per_identity_and_rotates_when_due() {
    let ca = Arc::new(
        CertificateAuthority::generate("cluster.local", DEFAULT_WORKLOAD_CERT_TTL).expect("CA"),
    );
    let cache = SecretCache::new(ca.clone());
    let sleep = cache.get(&identity("sleep")).expect("issued");
    let other = cache.get(&identity("other")).expect("issued");
    assert!(Arc::ptr_eq(
        &sleep,
        &cache.get(&identity("sleep")).expect("cached")
    ));
    let version = |secrets: &super::secrets::IdentitySecrets, name: &str| {
        secrets.resources[name].version.to_string()
    };
    assert_eq!(
        version(&sleep, "ROOTCA"),
        content_version(ca.root_pem().as_bytes())
    );
    assert_eq!(version(&sleep, "ROOTCA"), version(&other, "ROOTCA"));
    assert_ne!(version(&sleep, "default"), version(&other, "default"));

    assert_eq!(
        cache.next_rotation(),
        Some(sleep.rotate_at.min(other.rotate_at))
    );
    assert_eq!(
        cache.expire(sleep.rotate_at.min(other.rotate_at) - Duration::from_secs(1)),
        0
    );
    assert_eq!(cache.expire(sleep.rotate_at.max(other.rotate_at)), 2);
    assert_eq!(cache.next_rotation(), None);
    let renewed = cache.get(&identity("sleep")).expect("re-issued");
    assert_ne!(version(&renewed, "default"), version(&sleep, "default"));
    assert_eq!(version(&renewed, "ROOTCA"), version(&sleep, "ROOTCA"));
}
