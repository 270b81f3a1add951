//! The proxies the translation tests translate for (the `sleep` sidecar, the egress gateway in `istio-system`) and the xDS they are served, as JSON.

use serde_json::Value;
use shared::node::{NodeId, NodeType};
use shared::type_url;

use super::{Proxy, Workload, to_json, translate};
use crate::config::ConfigSnapshot;

/// The `sleep` sidecar (10.1.0.5, labelled `app: sleep`) in `namespace`.
pub(crate) fn sidecar_in(namespace: &str) -> Proxy {
    Proxy {
        id: NodeId::new(NodeType::Sidecar, "10.1.0.5", "sleep-1", namespace).to_string(),
        node_type: NodeType::Sidecar,
        namespace: namespace.to_string(),
        labels: [("app".to_string(), "sleep".to_string())].into(),
        ips: vec!["10.1.0.5".to_string()],
        service_account: "sleep".to_string(),
        dns_capture: false,
    }
}

/// The `sleep` sidecar in `default` (10.1.0.5), with `labels`.
pub(crate) fn sidecar_with(labels: &[(&str, &str)]) -> Proxy {
    Proxy {
        labels: labels
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect(),
        ..sidecar_in("default")
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

/// The clusters, endpoints, listeners and routes `proxy` is served for
/// `snapshot` with `workloads`, as JSON.
pub(crate) fn served_json(
    snapshot: &ConfigSnapshot,
    workloads: &[Workload],
    proxy: &Proxy,
) -> Value {
    let resources = translate(snapshot, workloads, proxy).into_typed();
    let types = [
        type_url::CLUSTER,
        type_url::ENDPOINT,
        type_url::LISTENER,
        type_url::ROUTE,
    ];
    to_json(&resources, &types).expect("resources convert to JSON")
}
