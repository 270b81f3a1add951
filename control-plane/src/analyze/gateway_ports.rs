//! Istio's `gateway.IngressGatewayPortAnalyzer`: each Gateway server port
//! is a target port of a Kubernetes Service of the gateway workload
//! (IST0162), so that it can be reached through the Service. Without such
//! a Service in the config there is nothing to compare with.

use std::collections::BTreeSet;

use super::generated;
use super::message::{GATEWAY_PORT_NOT_ON_SERVICE, Message, Subject};
use super::selectors::{gateway_services, selector_string};
use crate::config::model::kube::TargetPort;
use crate::config::{ConfigSnapshot, Kind};

pub(super) fn analyze(snapshot: &ConfigSnapshot, out: &mut Vec<Message>) {
    for gateway in snapshot.gateways.iter().filter(|g| !generated(&g.meta)) {
        let services = gateway_services(snapshot, &gateway.spec.selector);
        if services.is_empty() {
            continue;
        }
        // The port the proxy listens on is the one a Service port targets;
        // a named target port is not resolved (Istio reads it as unset).
        let target_ports: BTreeSet<u32> = services
            .iter()
            .flat_map(|service| &service.spec.spec.ports)
            .filter(|port| port.is_tcp())
            .map(|port| match port.target_port {
                Some(TargetPort::Number(number)) if number != 0 => number,
                _ => port.port,
            })
            .collect();
        let selector = selector_string(&gateway.spec.selector);
        let field = gateway
            .spec
            .selector
            .keys()
            .next()
            .map(|label| format!("spec.selector.{label}"));
        for server in &gateway.spec.servers {
            let number = server.port.number;
            if !target_ports.contains(&number) {
                out.push(Message::istio(
                    GATEWAY_PORT_NOT_ON_SERVICE,
                    Subject::of(Kind::Gateway, gateway, field.clone()),
                    format!(
                        "The gateway is listening on a target port (port {number}) that is not defined in the Service associated with its workload instances (Pod selector {selector}). If you need to access the gateway port through the gateway Service, it will not be available."
                    ),
                ));
            }
        }
    }
}
