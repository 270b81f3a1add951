//! Istio's `gateway.ConflictingGatewayAnalyzer`: two Gateways with the same
//! selector and a server on the same port whose hosts overlap conflict
//! (IST0145, on each server of each).

use std::collections::BTreeMap;

use super::gateways::names_match;
use super::generated;
use super::message::{CONFLICTING_GATEWAYS, Message, Subject};
use super::selectors::selector_string;
use crate::config::{ConfigSnapshot, Kind};

pub(super) fn analyze(snapshot: &ConfigSnapshot, out: &mut Vec<Message>) {
    let gateways: Vec<_> = snapshot
        .gateways
        .iter()
        .filter(|g| !generated(&g.meta))
        .collect();
    // (selector, port) → gateway name → the hosts of its (last) server there.
    let mut servers: BTreeMap<(String, u32), BTreeMap<String, &[String]>> = BTreeMap::new();
    for gateway in &gateways {
        let selector = selector_string(&gateway.spec.selector);
        let name = format!("{}/{}", gateway.meta.namespace, gateway.meta.name);
        for server in &gateway.spec.servers {
            servers
                .entry((selector.clone(), server.port.number))
                .or_default()
                .insert(name.clone(), &server.hosts);
        }
    }
    for gateway in &gateways {
        let selector = selector_string(&gateway.spec.selector);
        let name = format!("{}/{}", gateway.meta.namespace, gateway.meta.name);
        for server in &gateway.spec.servers {
            let number = server.port.number;
            let Some(others) = servers.get(&(selector.clone(), number)) else {
                continue;
            };
            let mut conflicting = Vec::new();
            for (other, hosts) in others.iter().filter(|(other, _)| **other != name) {
                for host in &server.hosts {
                    if hosts.iter().any(|h| names_match(host, h)) {
                        conflicting.push(other.as_str());
                    }
                }
            }
            if !conflicting.is_empty() {
                out.push(Message::istio(
                    CONFLICTING_GATEWAYS,
                    Subject::of(Kind::Gateway, gateway, None),
                    format!(
                        "Conflict with gateways {} (workload selector {selector}, port {number}, hosts {}).",
                        conflicting.join(","),
                        server.hosts.join(",")
                    ),
                ));
            }
        }
    }
}
