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

#[tokio::test]
async fn gateway_labels_with_a_sidecars_service_account_are_no_trusted_gateway() {
    let mesh = Mesh::start().await;
    let token = mesh.token("default", "sleep");
    let forged = node(NodeType::Router, "default", "sleep", GATEWAY_LABELS);
    let (_stream, _) = first_response(
        mesh.secure_channel().await,
        Some(&token),
        forged,
        type_url::CLUSTER,
    )
    .await
    .expect("served: it is who its token says");
    mesh.wait_for_workloads(|w| !w.is_empty()).await;
    let workloads = mesh.context.publisher.current().workloads.clone();
    assert_eq!(workloads.len(), 1);
    assert_eq!(workloads[0].service_account, "sleep");
    assert!(!workloads[0].trusted_gateway, "{workloads:?}");
}

#[tokio::test]
async fn the_gateways_service_account_on_a_router_is_a_trusted_gateway() {
    let mesh = Mesh::start().await;
    let token = mesh.token("istio-system", "istio-egressgateway-service-account");
    let gateway = node(
        NodeType::Router,
        "istio-system",
        "istio-egressgateway-service-account",
        GATEWAY_LABELS,
    );
    let (_stream, _) = first_response(
        mesh.secure_channel().await,
        Some(&token),
        gateway,
        type_url::CLUSTER,
    )
    .await
    .expect("served");
    mesh.wait_for_workloads(|w| !w.is_empty()).await;
    let workloads = mesh.context.publisher.current().workloads.clone();
    assert_eq!(workloads.len(), 1);
    assert_eq!(
        workloads[0].service_account,
        "istio-egressgateway-service-account"
    );
    assert!(workloads[0].trusted_gateway);
}

#[tokio::test]
async fn a_sidecar_with_the_gateways_service_account_is_no_trusted_gateway() {
    let mesh = Mesh::start().await;
    let token = mesh.token("istio-system", "istio-egressgateway-service-account");
    let sidecar = node(
        NodeType::Sidecar,
        "istio-system",
        "istio-egressgateway-service-account",
        GATEWAY_LABELS,
    );
    let (_stream, _) = first_response(
        mesh.secure_channel().await,
        Some(&token),
        sidecar,
        type_url::CLUSTER,
    )
    .await
    .expect("served");
    mesh.wait_for_workloads(|w| !w.is_empty()).await;
    assert!(!mesh.context.publisher.current().workloads[0].trusted_gateway);
}

#[tokio::test]
async fn a_node_without_a_service_account_takes_its_tokens() {
    let mesh = Mesh::start().await;
    let token = mesh.token("default", "sleep");
    let mut anonymous = sidecar("default", "ignored");
    if let Some(metadata) = anonymous.metadata.as_mut() {
        metadata.fields.remove(shared::node::META_SERVICE_ACCOUNT);
    }
    let (_stream, _) = first_response(
        mesh.secure_channel().await,
        Some(&token),
        anonymous,
        type_url::CLUSTER,
    )
    .await
    .expect("served");
    mesh.wait_for_workloads(|w| !w.is_empty()).await;
    assert_eq!(
        mesh.context.publisher.current().workloads[0].service_account,
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
    let plaintext_gateway = node(
        NodeType::Router,
        "istio-system",
        "istio-egressgateway-service-account",
        GATEWAY_LABELS,
    );
    let (_plaintext, response) =
        first_response(channel, None, plaintext_gateway, type_url::CLUSTER)
            .await
            .expect("config over plaintext");
    assert_eq!(response.type_url, type_url::CLUSTER);

    // A secure proxy connecting after it: once its workload is published,
    // the plaintext one would be too, had it been added.
    let token = mesh.token("default", "sleep");
    let (_secure, _) = first_response(
        mesh.secure_channel().await,
        Some(&token),
        sidecar("default", "sleep"),
        type_url::CLUSTER,
    )
    .await
    .expect("served");
    mesh.wait_for_workloads(|w| !w.is_empty()).await;
    let workloads = mesh.context.publisher.current().workloads.clone();
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
    let other = mesh.token("istio-system", "default");
    let forged = node_at(
        "10.1.0.66",
        NodeType::Router,
        "istio-system",
        "default",
        GATEWAY_LABELS,
    );
    let (_forged, _) = first_response(
        mesh.secure_channel().await,
        Some(&other),
        forged,
        type_url::CLUSTER,
    )
    .await
    .expect("served as what its token says");
    mesh.wait_for_workloads(|w| !w.is_empty()).await;

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

    let gateway_token = mesh.token("istio-system", "istio-egressgateway-service-account");
    let gateway = node_at(
        "10.1.0.9",
        NodeType::Router,
        "istio-system",
        "istio-egressgateway-service-account",
        GATEWAY_LABELS,
    );
    let (_gateway, _) = first_response(
        mesh.secure_channel().await,
        Some(&gateway_token),
        gateway,
        type_url::CLUSTER,
    )
    .await
    .expect("served");
    let pushed = sidecar.next().await.expect("EDS push");
    assert_eq!(endpoint_addresses(&pushed), ["10.1.0.9"]);
}
