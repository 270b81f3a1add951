//! Conversion tests: the docs' Gateway API tabs against their classic
//! tabs, and the conversion's own rules.

use serde_json::Value;
use shared::node::{NodeId, NodeType};

use crate::config::Checked;
use crate::config::gateway_api::GATEWAY_NAME_LABEL;
use crate::translate::test_proxies::served_json;
use crate::translate::{Proxy, Workload};

mod docs;
mod rules;
mod unresolved;

/// The proxy Istio deploys for Gateway `name` in `default`, started by hand
/// with the labels Istio gives it.
pub(super) fn gateway_api_proxy(name: &str) -> Proxy {
    Proxy {
        id: NodeId::new(
            NodeType::Router,
            "10.1.0.9",
            &format!("{name}-istio-1"),
            "default",
        )
        .to_string(),
        node_type: NodeType::Router,
        namespace: "default".to_string(),
        labels: [(GATEWAY_NAME_LABEL.to_string(), name.to_string())].into(),
        ips: vec!["10.1.0.9".to_string()],
        service_account: format!("{name}-istio"),
        dns_capture: false,
    }
}

/// What `proxy` is served, the gateway proxy connected as a trusted gateway.
pub(super) fn xds(checked: &Checked, gateway: &Proxy, proxy: &Proxy) -> Value {
    let workloads: Vec<Workload> = gateway
        .as_workload()
        .map(|workload| Workload {
            trusted_gateway: true,
            ..workload
        })
        .into_iter()
        .collect();
    served_json(&checked.snapshot, &workloads, proxy)
}
