//! Which connected proxies become workloads: only proxies authenticated on
//! the secure port, with their token's service account, trusted as a
//! gateway only for the gateway's service account on a router node.

use prost::Message;
use proto::pb::envoy::config::core::v3::address;
use proto::pb::envoy::config::endpoint::v3::{ClusterLoadAssignment, lb_endpoint};
use shared::type_url;

use super::*;
use crate::config;

const GATEWAY_LABELS: &[(&str, &str)] =
    &[("istio", "egressgateway"), ("app", "istio-egressgateway")];

/// The gateway's service account in the default install.
const GATEWAY_ACCOUNT: (&str, &str) = ("istio-system", "istio-egressgateway-service-account");

/// A node of the gateway's service account with the gateway's labels.
fn gateway_node(node_type: NodeType) -> Node {
    node(
        node_type,
        GATEWAY_ACCOUNT.0,
        GATEWAY_ACCOUNT.1,
        GATEWAY_LABELS,
    )
}

#[tokio::test]
async fn gateway_labels_with_a_sidecars_service_account_are_no_trusted_gateway() {
    let mesh = Mesh::start().await;
    let forged = node(NodeType::Router, "default", "sleep", GATEWAY_LABELS);
    let _stream = mesh.connect_as("default", "sleep", forged).await;
    let workloads = mesh.registered_workloads().await;
    assert_eq!(workloads.len(), 1);
    assert_eq!(workloads[0].service_account, "sleep");
    assert!(!workloads[0].trusted_gateway, "{workloads:?}");
}

#[tokio::test]
async fn the_gateways_service_account_on_a_router_is_a_trusted_gateway() {
    let mesh = Mesh::start().await;
    let (namespace, name) = GATEWAY_ACCOUNT;
    let _stream = mesh
        .connect_as(namespace, name, gateway_node(NodeType::Router))
        .await;
    let workloads = mesh.registered_workloads().await;
    assert_eq!(workloads.len(), 1);
    assert_eq!(workloads[0].service_account, name);
    assert!(workloads[0].trusted_gateway);
}

#[tokio::test]
async fn a_sidecar_with_the_gateways_service_account_is_no_trusted_gateway() {
    let mesh = Mesh::start().await;
    let (namespace, name) = GATEWAY_ACCOUNT;
    let _stream = mesh
        .connect_as(namespace, name, gateway_node(NodeType::Sidecar))
        .await;
    assert!(!mesh.registered_workloads().await[0].trusted_gateway);
}

#[tokio::test]
async fn a_node_without_a_service_account_takes_its_tokens() {
    let mesh = Mesh::start().await;
    let mut anonymous = sidecar("default", "ignored");
    if let Some(metadata) = anonymous.metadata.as_mut() {
        metadata.fields.remove(shared::node::META_SERVICE_ACCOUNT);
    }
    let _stream = mesh.connect_as("default", "sleep", anonymous).await;
    assert_eq!(
        mesh.registered_workloads().await[0].service_account,
        "sleep"
    );
    assert_eq!(
        mesh.context.connections.list()[0].proxy.service_account,
        "sleep"
    );
}

#[tokio::test]
async fn plaintext_proxies_get_config_but_never_become_workloads() {
    let mesh = Mesh::start().await;
    let channel = mesh
        .plaintext_channel(mesh.plaintext)
        .await
        .expect("plaintext connection");
    let (_plaintext, response) = first_response(
        channel,
        None,
        gateway_node(NodeType::Router),
        type_url::CLUSTER,
    )
    .await
    .expect("config over plaintext");
    assert_eq!(response.type_url, type_url::CLUSTER);

    // A secure proxy connecting after it: once its workload is published,
    // the plaintext one would be too, had it been added.
    let _secure = mesh
        .connect_as("default", "sleep", sidecar("default", "sleep"))
        .await;
    let workloads = mesh.registered_workloads().await;
    assert_eq!(workloads.len(), 1, "{workloads:?}");
    assert_eq!(workloads[0].namespace, "default");
    assert_eq!(mesh.context.connections.len(), 2);
}

#[tokio::test]
async fn secrets_are_not_served_over_ads() {
    let mesh = Mesh::start().await;
    let token = mesh.token("default", "sleep");
    let request = DiscoveryRequest {
        node: Some(sidecar("default", "sleep")),
        type_url: type_url::SECRET.to_string(),
        resource_names: vec!["default".to_string(), "ROOTCA".to_string()],
        ..Default::default()
    };
    let mut stream = open_ads(mesh.secure_channel().await, Some(&token), request)
        .await
        .expect("stream");
    let response = stream.next().await.expect("a response");
    assert_eq!(response.type_url, type_url::SECRET);
    assert!(
        response.resources.is_empty(),
        "the control plane holds no workload key"
    );
}

/// The endpoint addresses of an EDS response.
fn endpoint_addresses(response: &DiscoveryResponse) -> Vec<String> {
    let mut addresses = Vec::new();
    for any in &response.resources {
        let assignment = ClusterLoadAssignment::decode(any.value.as_slice()).expect("EDS");
        for lb in assignment.endpoints.iter().flat_map(|l| &l.lb_endpoints) {
            if let Some(lb_endpoint::HostIdentifier::Endpoint(endpoint)) = &lb.host_identifier
                && let Some(address::Address::SocketAddress(socket)) =
                    endpoint.address.as_ref().and_then(|a| a.address.as_ref())
            {
                addresses.push(socket.address.clone());
            }
        }
    }
    addresses
}

#[tokio::test]
async fn sidecars_never_route_to_a_forged_gateway_but_do_to_the_real_one() {
    let seed = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/seed/06-egress-gateway-http");
    let snapshot = config::load::load_validated(&seed, None).expect("the seed loads");
    let mesh = Mesh::start_with(snapshot).await;

    // Another workload of the gateway's namespace claims its labels.
    let forged = node_at(
        "10.1.0.66",
        NodeType::Router,
        "istio-system",
        "default",
        GATEWAY_LABELS,
    );
    let _forged = mesh.connect_as("istio-system", "default", forged).await;
    mesh.registered_workloads().await;

    const GATEWAY_CLUSTER: &str = "outbound|80||istio-egressgateway.istio-system.svc.cluster.local";
    let eds = DiscoveryRequest {
        node: Some(sidecar("default", "sleep")),
        type_url: type_url::ENDPOINT.to_string(),
        resource_names: vec![GATEWAY_CLUSTER.to_string()],
        ..Default::default()
    };
    let sleep = mesh.token("default", "sleep");
    let mut sidecar = open_ads(mesh.secure_channel().await, Some(&sleep), eds)
        .await
        .expect("stream");
    let first = sidecar.next().await.expect("EDS");
    assert_eq!(
        endpoint_addresses(&first),
        Vec::<String>::new(),
        "no forged endpoint"
    );
    sidecar.ack(&first, &[GATEWAY_CLUSTER]).await;

    let (namespace, name) = GATEWAY_ACCOUNT;
    let gateway = node_at(
        "10.1.0.9",
        NodeType::Router,
        namespace,
        name,
        GATEWAY_LABELS,
    );
    let _gateway = mesh.connect_as(namespace, name, gateway).await;
    let pushed = sidecar.next().await.expect("EDS push");
    assert_eq!(endpoint_addresses(&pushed), ["10.1.0.9"]);
}
