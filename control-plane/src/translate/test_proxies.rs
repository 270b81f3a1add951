//! The proxies the translation unit tests translate for: a sidecar in `default` and the egress gateway in `istio-system`.

use shared::node::{NodeId, NodeType};

use super::Proxy;

/// The `sleep` sidecar in `default` (10.1.0.5), with `labels`.
pub(crate) fn sidecar_with(labels: &[(&str, &str)]) -> Proxy {
    Proxy {
        id: NodeId::new(NodeType::Sidecar, "10.1.0.5", "sleep-1", "default").to_string(),
        node_type: NodeType::Sidecar,
        namespace: "default".to_string(),
        labels: labels
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect(),
        ips: vec!["10.1.0.5".to_string()],
        service_account: "sleep".to_string(),
        dns_capture: false,
    }
}

/// Istio's egress gateway in `istio-system` (10.1.0.9), labelled
/// `istio: egressgateway`, with its install's service account.
pub(crate) fn egress_gateway() -> Proxy {
    Proxy {
        id: NodeId::new(
            NodeType::Router,
            "10.1.0.9",
            "istio-egressgateway-1",
            "istio-system",
        )
        .to_string(),
        node_type: NodeType::Router,
        namespace: "istio-system".to_string(),
        labels: [("istio".to_string(), "egressgateway".to_string())].into(),
        ips: vec!["10.1.0.9".to_string()],
        service_account: "istio-egressgateway-service-account".to_string(),
        dns_capture: false,
    }
}
