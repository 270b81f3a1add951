//! Istio's `virtualservice.GatewayAnalyzer`: each Gateway a VirtualService
//! binds to exists (IST0101) and has a server for one of its hosts
//! (IST0132).

use super::generated;
use super::message::{
    HOST_NOT_FOUND_IN_GATEWAY, Message, REFERENCED_RESOURCE_NOT_FOUND, Subject, quoted,
};
use crate::config::gateways::{MESH_GATEWAY, gateway_named};
use crate::config::{ConfigSnapshot, Kind};

pub(super) fn analyze(snapshot: &ConfigSnapshot, out: &mut Vec<Message>) {
    for vs in snapshot
        .virtual_services
        .iter()
        .filter(|vs| !generated(&vs.meta))
    {
        let vs_namespace = &vs.meta.namespace;
        for (index, reference) in vs.spec.gateways.iter().enumerate() {
            if reference == MESH_GATEWAY {
                continue;
            }
            let (namespace, name) = gateway_named(reference, vs_namespace);
            let gateway = snapshot
                .gateways
                .iter()
                .find(|g| g.meta.namespace == namespace && g.meta.name == name);
            let field = Some(format!("spec.gateways[{index}]"));
            if gateway.is_none() {
                out.push(Message::istio(
                    REFERENCED_RESOURCE_NOT_FOUND,
                    Subject::of(Kind::VirtualService, vs, field.clone()),
                    format!("Referenced gateway not found: {}", quoted(reference)),
                ));
            }
            let servers = gateway
                .map(|g| g.spec.servers.as_slice())
                .unwrap_or_default();
            let gateway_hosts: Vec<&str> = servers
                .iter()
                .flat_map(|server| &server.hosts)
                .filter_map(|entry| visible_name(entry, namespace, vs_namespace))
                .collect();
            let found = gateway_hosts
                .iter()
                .any(|gh| vs.spec.hosts.iter().any(|h| names_match(gh, h)));
            if !found {
                out.push(Message::istio(
                    HOST_NOT_FOUND_IN_GATEWAY,
                    Subject::of(Kind::VirtualService, vs, field),
                    format!(
                        "one or more host [{}] defined in VirtualService {vs_namespace}/{} not found in Gateway {namespace}/{name}.",
                        vs.spec.hosts.join(" "),
                        vs.meta.name
                    ),
                ));
            }
        }
    }
}

/// The host name of a Gateway server's `hosts` entry (of a Gateway in
/// `gateway_ns`) as a VirtualService of `vs_ns` sees it: `*/h` and a bare
/// `h` everywhere, `./h` in the Gateway's namespace, `ns/h` in `ns`.
fn visible_name<'e>(entry: &'e str, gateway_ns: &str, vs_ns: &str) -> Option<&'e str> {
    match entry.split_once('/') {
        None => Some(entry),
        Some(("*", name)) => Some(name),
        Some((".", name)) => (gateway_ns == vs_ns).then_some(name),
        Some((namespace, name)) => (namespace == vs_ns).then_some(name),
    }
}

/// Istio's `host.Name.Matches`: equal names, or a wildcard on either side
/// covering the other (both wildcards: the longer ends with the shorter).
pub(super) fn names_match(a: &str, b: &str) -> bool {
    match (a.strip_prefix('*'), b.strip_prefix('*')) {
        (Some(a), Some(b)) => {
            if a.len() < b.len() {
                b.ends_with(a)
            } else {
                a.ends_with(b)
            }
        }
        (Some(suffix), None) => b.ends_with(suffix),
        (None, Some(suffix)) => a.ends_with(suffix),
        (None, None) => a == b,
    }
}
