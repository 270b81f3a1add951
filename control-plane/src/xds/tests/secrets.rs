//! `kubernetes://` secrets over ADS: a proxy gets those of its own namespace its config names and it asks for, never another namespace's or an unnamed one, and nothing without a verified identity.

use std::path::Path;

use prost::Message;
use proto::pb::envoy::extensions::transport_sockets::tls::v3::Secret;
use proto::pb::envoy::service::discovery::v3::DeltaDiscoveryRequest;

use super::*;
use crate::config::load::load_str;
use crate::config::model::secret::testing::TestCredential;

/// A mesh whose config holds a credential in `istio-system` (with its CA)
/// that a Gateway server selecting the egress gateway names, one there that
/// nothing names, and one in `team-a` a DestinationRule there names.
async fn mesh_with_credentials() -> Mesh {
    let credential = TestCredential::new("api.example.com");
    let yaml = format!(
        "{}---\n{}---\n{}---\n{CONFIG}",
        credential.tls_secret("client-cred", "istio-system", true),
        credential.tls_secret("unreferenced", "istio-system", true),
        credential.tls_secret("team-cred", "team-a", false)
    );
    let snapshot = load_str(Path::new("secrets.yaml"), &yaml).expect("loads");
    Mesh::start_with(snapshot).await
}

/// What references the credentials: a MUTUAL Gateway server, its
/// VirtualService, and a DestinationRule originating TLS for the sidecars
/// it selects.
const CONFIG: &str = "\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api, namespace: istio-system}
spec:
  hosts: [api.example.com]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: istio-system}
spec:
  selector: {istio: egressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [api.example.com]
    tls: {mode: MUTUAL, credentialName: client-cred}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: vs, namespace: istio-system}
spec:
  hosts: [api.example.com]
  gateways: [gw]
  http:
  - route:
    - destination: {host: api.example.com, port: {number: 80}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: api, namespace: team-a}
spec:
  host: api.example.com
  workloadSelector: {matchLabels: {app: sleep}}
  trafficPolicy:
    tls: {mode: MUTUAL, credentialName: team-cred, sni: api.example.com}
";

fn gateway(namespace: &str, service_account: &str) -> Node {
    node(
        NodeType::Router,
        namespace,
        service_account,
        &[("istio", "egressgateway")],
    )
}

/// The names of the secrets the first response to a subscription to
/// `names` carries.
async fn secrets_sent(
    channel: Channel,
    token: Option<&str>,
    node: Node,
    names: &[&str],
) -> Vec<String> {
    let request = DiscoveryRequest {
        node: Some(node),
        type_url: type_url::SECRET.to_string(),
        resource_names: names.iter().map(|n| n.to_string()).collect(),
        ..Default::default()
    };
    let mut stream = open_ads(channel, token, request).await.expect("served");
    let response = stream.next().await.expect("a response");
    assert_eq!(response.type_url, type_url::SECRET);
    response
        .resources
        .iter()
        .map(|any| Secret::decode(&any.value[..]).expect("a secret").name)
        .collect()
}

/// The names of the secrets a mesh with credentials first sends the proxy
/// `node_of(namespace, service_account)`, authenticated with a token for
/// that identity, that subscribes to `names`.
async fn secrets_sent_to_verified(
    node_of: fn(&str, &str) -> Node,
    (namespace, service_account): (&str, &str),
    names: &[&str],
) -> Vec<String> {
    let mesh = mesh_with_credentials().await;
    let token = mesh.token(namespace, service_account);
    let node = node_of(namespace, service_account);
    secrets_sent(mesh.secure_channel().await, Some(&token), node, names).await
}

/// The names of the secrets the first delta response to a subscription to
/// `names` carries.
async fn delta_secrets_sent(
    channel: Channel,
    token: &str,
    node: Node,
    names: &[&str],
) -> Vec<String> {
    let request = DeltaDiscoveryRequest {
        node: Some(node),
        type_url: type_url::SECRET.to_string(),
        resource_names_subscribe: names.iter().map(|n| n.to_string()).collect(),
        ..Default::default()
    };
    let (requests, rx) = mpsc::channel(1);
    requests.send(request).await.expect("queued");
    let mut responses = AggregatedDiscoveryServiceClient::new(channel)
        .delta_aggregated_resources(authorized(ReceiverStream::new(rx), Some(token)))
        .await
        .expect("served")
        .into_inner();
    let response = tokio::time::timeout(WAIT, responses.message())
        .await
        .expect("a response in time")
        .expect("no error")
        .expect("a response");
    assert_eq!(response.type_url, type_url::SECRET);
    response
        .resources
        .iter()
        .map(|resource| resource.name.clone())
        .collect()
}

#[tokio::test]
async fn a_delta_subscription_to_every_secret_gets_none() {
    let mesh = mesh_with_credentials().await;
    let token = mesh.token("istio-system", "istio-egressgateway-service-account");
    let node = gateway("istio-system", "istio-egressgateway-service-account");
    let sent = delta_secrets_sent(mesh.secure_channel().await, &token, node, &["*"]).await;
    assert!(sent.is_empty(), "`*` is not a wildcard for SDS: {sent:?}");
}

#[tokio::test]
async fn a_delta_subscription_by_name_gets_that_secret() {
    let mesh = mesh_with_credentials().await;
    let token = mesh.token("istio-system", "istio-egressgateway-service-account");
    let node = gateway("istio-system", "istio-egressgateway-service-account");
    let names = ["*", "kubernetes://client-cred"];
    let sent = delta_secrets_sent(mesh.secure_channel().await, &token, node, &names).await;
    assert_eq!(sent, ["kubernetes://client-cred"]);
}

#[tokio::test]
async fn a_proxy_gets_the_secrets_of_its_namespace_it_asks_for() {
    let sent = secrets_sent_to_verified(
        gateway,
        ("istio-system", "istio-egressgateway-service-account"),
        &[
            "kubernetes://client-cred",
            "kubernetes://client-cred-cacert",
        ],
    )
    .await;
    assert_eq!(
        sent,
        [
            "kubernetes://client-cred",
            "kubernetes://client-cred-cacert"
        ]
    );
}

#[tokio::test]
async fn a_proxy_asking_for_a_secret_its_config_does_not_name_gets_nothing() {
    let sent = secrets_sent_to_verified(
        gateway,
        ("istio-system", "istio-egressgateway-service-account"),
        &["kubernetes://unreferenced", "kubernetes://client-cred"],
    )
    .await;
    assert_eq!(
        sent,
        ["kubernetes://client-cred"],
        "only what its config names"
    );
}

#[tokio::test]
async fn a_proxy_asking_for_another_namespaces_secret_gets_nothing() {
    let sent = secrets_sent_to_verified(
        sidecar,
        ("team-a", "sleep"),
        &["kubernetes://client-cred", "kubernetes://team-cred"],
    )
    .await;
    assert_eq!(sent, ["kubernetes://team-cred"], "only its own namespace's");
}

#[tokio::test]
async fn a_proxy_without_a_verified_identity_gets_no_secret() {
    let mesh = mesh_with_credentials().await;
    let channel = mesh
        .plaintext_channel(mesh.plaintext)
        .await
        .expect("plaintext port");
    let sent = secrets_sent(
        channel,
        None,
        gateway("istio-system", "istio-egressgateway-service-account"),
        &["kubernetes://client-cred"],
    )
    .await;
    assert!(sent.is_empty(), "{sent:?}");
}
