//! The node a token may describe, as a pure function.

use crate::auth::AuthError;
use crate::xds::admission::admit;

use super::*;

fn account(namespace: &str, name: &str) -> ServiceAccount {
    ServiceAccount::new(namespace, name).expect("valid names")
}

fn gateways() -> TrustedGateways {
    TrustedGateways::new([account(
        "istio-system",
        "istio-egressgateway-service-account",
    )])
}

fn admitted(node: &Node, token: &ServiceAccount) -> Result<crate::translate::Workload, AuthError> {
    let proxy = Proxy::from_node(node).expect("a node");
    admit(node, proxy, token, &gateways()).map(|a| a.workload.expect("a workload"))
}

#[test]
fn the_node_must_be_the_tokens_namespace_and_service_account() {
    let token = account("default", "sleep");
    assert!(admitted(&sidecar("default", "sleep"), &token).is_ok());
    assert_eq!(
        admitted(&sidecar("prod", "sleep"), &token),
        Err(AuthError::NodeMismatch {
            claimed: "prod/sleep".to_string(),
            token: "default/sleep".to_string(),
        })
    );
    assert_eq!(
        admitted(&sidecar("default", "admin"), &token),
        Err(AuthError::NodeMismatch {
            claimed: "default/admin".to_string(),
            token: "default/sleep".to_string(),
        })
    );
}

#[test]
fn the_node_ids_namespace_must_be_the_tokens_too() {
    let token = account("default", "sleep");
    let mut node = sidecar("default", "sleep");
    node.id = NodeId::new(NodeType::Sidecar, "10.1.0.5", "pod-1", "prod").to_string();
    let error = admitted(&node, &token).expect_err("the id says prod");
    assert_eq!(error.reason(), "node_mismatch");
}

#[test]
fn only_a_router_of_a_trusted_service_account_is_a_trusted_gateway() {
    let gateway = account("istio-system", "istio-egressgateway-service-account");
    let router = node(
        NodeType::Router,
        "istio-system",
        "istio-egressgateway-service-account",
        &[],
    );
    assert!(
        admitted(&router, &gateway)
            .expect("admitted")
            .trusted_gateway
    );
    let as_sidecar = sidecar("istio-system", "istio-egressgateway-service-account");
    assert!(
        !admitted(&as_sidecar, &gateway)
            .expect("admitted")
            .trusted_gateway
    );
    let other = account("istio-system", "other-gateway");
    let other_router = node(NodeType::Router, "istio-system", "other-gateway", &[]);
    let workload = admitted(&other_router, &other).expect("admitted");
    assert!(!workload.trusted_gateway);
    assert_eq!(workload.service_account, "other-gateway");
}
