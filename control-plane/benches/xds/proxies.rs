//! The proxies the benchmark plays: sidecars of one namespace, so that all
//! of them share one translation as a deployment's pods do.

use control_plane::translate::Proxy;
use shared::node::{NodeId, NodeType};

pub fn sidecar(i: usize) -> Proxy {
    Proxy {
        id: NodeId::new(
            NodeType::Sidecar,
            "10.0.0.1",
            &format!("app-{i}"),
            "default",
        )
        .to_string(),
        node_type: NodeType::Sidecar,
        namespace: "default".into(),
        labels: Default::default(),
        ips: vec![],
        service_account: "default".into(),
        dns_capture: false,
    }
}
