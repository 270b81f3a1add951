//! Istio's `service.PortNameAnalyzer`: a Kubernetes Service port whose
//! protocol Istio cannot tell from its `appProtocol` or its name
//! (`<protocol>[-<suffix>]`) gets protocol sniffing (IST0118). Services of
//! Kubernetes' system namespaces and of Istio's control plane (labelled
//! `istio` or `release: istio`) are left alone.

use super::message::{Message, PORT_NAME_NOT_UNDER_CONVENTION, Subject};
use crate::config::model::kube::{KubeServicePort, TargetPort};
use crate::config::validate::PROTOCOLS;
use crate::config::{ConfigSnapshot, Kind};

/// The namespaces Istio's injection (and so its analyzers) ignore.
const SYSTEM_NAMESPACES: [&str; 4] = [
    "kube-system",
    "kube-public",
    "kube-node-lease",
    "local-path-storage",
];

pub(super) fn analyze(snapshot: &ConfigSnapshot, out: &mut Vec<Message>) {
    for service in &snapshot.services {
        let labels = &service.meta.labels;
        let control_plane =
            labels.contains_key("istio") || labels.get("release").is_some_and(|r| r == "istio");
        if control_plane || SYSTEM_NAMESPACES.contains(&service.meta.namespace.as_str()) {
            continue;
        }
        for (index, port) in service.spec.spec.ports.iter().enumerate() {
            if names_protocol(port) {
                continue;
            }
            let target = match &port.target_port {
                Some(TargetPort::Number(number)) => number.to_string(),
                Some(TargetPort::Name(name)) => name.clone(),
                None => port.port.to_string(),
            };
            out.push(Message::istio(
                PORT_NAME_NOT_UNDER_CONVENTION,
                Subject::of(
                    Kind::Service,
                    service,
                    Some(format!("spec.ports[{index}].name")),
                ),
                format!(
                    "Port name {} (port: {}, targetPort: {target}) doesn't follow the naming convention of Istio port.",
                    port.name, port.port
                ),
            ));
        }
    }
}

/// Whether Istio reads the port's protocol from it: a UDP port, an
/// `appProtocol` it knows, or a name starting with a protocol.
fn names_protocol(port: &KubeServicePort) -> bool {
    let known = |text: &str| {
        let lower = text.to_ascii_lowercase();
        lower.starts_with("grpc-web")
            || lower.starts_with("kubernetes.io/")
            || PROTOCOLS
                .iter()
                .any(|p| p.eq_ignore_ascii_case(lower.split('-').next().unwrap_or_default()))
    };
    let udp = port
        .protocol
        .as_deref()
        .is_some_and(|p| p.eq_ignore_ascii_case("UDP"));
    udp || port.app_protocol.as_deref().is_some_and(known) || known(&port.name)
}
