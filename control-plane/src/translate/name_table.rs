//! The name table (NDS) for one sidecar whose agent captures DNS: each visible service host with the IP addresses its agent answers with, as istiod's `BuildNameTable` makes it.

use std::collections::BTreeMap;
use std::net::IpAddr;

use proto::nds::NameTable;
use proto::nds::name_table::NameInfo;
use shared::node::NodeType;

use crate::config::model::{Labels, Resolution};

use super::registry::{MeshView, Service, ServiceAddress};

/// The registry istiod names for hosts that come from ServiceEntries.
pub const EXTERNAL_REGISTRY: &str = "External";

/// The table for the view's proxy: `None` unless it is a sidecar whose
/// agent captures DNS (gateways resolve nothing for an app).
///
/// A host's addresses are the IPs of its ServiceEntries' `addresses` (a
/// CIDR range is no answer, and is skipped). A host declared without
/// addresses has none to give, as istiod without address auto-allocation
/// has it: its queries go upstream, except for `resolution: NONE`, whose
/// endpoints' IPs (on the first port) are its answers.
pub fn build_name_table(view: &MeshView<'_>) -> Option<NameTable> {
    if view.proxy.node_type != NodeType::Sidecar || !view.proxy.dns_capture {
        return None;
    }
    let mut table: BTreeMap<String, NameInfo> = BTreeMap::new();
    for service in &view.services {
        let ips = host_ips(view, service);
        if ips.is_empty() {
            continue;
        }
        let info = table
            .entry(service.host.clone())
            .or_insert_with(|| NameInfo {
                registry: EXTERNAL_REGISTRY.to_string(),
                ..Default::default()
            });
        for ip in ips {
            if !info.ips.contains(&ip) {
                info.ips.push(ip);
            }
        }
    }
    Some(NameTable {
        table,
        name_info: None,
    })
}

/// The IPs one ServiceEntry gives its host (see [`build_name_table`]).
fn host_ips(view: &MeshView<'_>, service: &Service<'_>) -> Vec<String> {
    let spec = &service.entry.spec;
    if !spec.addresses.is_empty() {
        return service
            .addresses()
            .into_iter()
            .filter_map(|address| match address {
                ServiceAddress::Ip(ip) => Some(ip.to_string()),
                ServiceAddress::Cidr { .. } => None,
            })
            .collect();
    }
    let Some(first_port) = spec.ports.first() else {
        return Vec::new();
    };
    if spec.resolution != Resolution::None {
        return Vec::new();
    }
    let on_first_port = Service {
        port: first_port,
        ..service.clone()
    };
    view.endpoints(&on_first_port, &Labels::new())
        .into_iter()
        .filter_map(|endpoint| endpoint.address.parse::<IpAddr>().ok())
        .map(|ip| ip.to_string())
        .collect()
}

#[cfg(test)]
mod tests;
