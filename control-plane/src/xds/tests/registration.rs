//! Which connected proxies become workloads: only proxies authenticated on
//! the secure port, with their token's service account, trusted as a
//! gateway only for the gateway's service account on a router node.

use shared::type_url;

use super::*;

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
