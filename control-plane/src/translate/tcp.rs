//! Plain TCP filter chains as istiod builds them: a service's own chain and
//! VirtualService `tcp` routes (matched by port, gateway, source and
//! destination subnets), with what each chain matches before it joins a
//! listener.

use proto::pb::envoy::config::core::v3::CidrRange;
use proto::pb::envoy::config::listener::v3::{Filter, FilterChain, FilterChainMatch};
use shared::naming::ClusterName;

use crate::config::Resource;
use crate::config::hosts;
use crate::config::model::{L4MatchAttributes, RouteDestination, VirtualService};

use super::filters::{self, TcpTarget};
use super::hash_policy;
use super::registry::{GatewayRef, MeshView, Service, ServiceAddress, labels_match};
use super::route::destination_clusters;

/// A filter chain before it joins a listener: its match (SNI names and
/// destination CIDRs) and its network filter. A sidecar's plain TCP chain
/// is named for the service it was built for (`outbound|<port>||<host>`,
/// whatever cluster its route reaches); Envoy only shows the name (access
/// log `%FILTER_CHAIN_NAME%`, config dump), the agent's explicit proxy
/// finds a `CONNECT host:port` target's chain by it.
#[derive(Debug, Clone)]
pub struct ChainOpts {
    pub name: String,
    pub server_names: Vec<String>,
    pub destination_cidrs: Vec<String>,
    pub filter: Filter,
}

impl ChainOpts {
    /// Matches every connection: Envoy's default chain, as istiod moves it.
    pub fn matches_all(&self) -> bool {
        self.server_names.is_empty() && self.destination_cidrs.is_empty()
    }

    /// Whether both chains match the same connections; Envoy rejects a
    /// listener with two such chains, so istiod keeps the first.
    pub fn conflicts_with(&self, other: &ChainOpts) -> bool {
        sorted(&self.server_names) == sorted(&other.server_names)
            && sorted(&self.destination_cidrs) == sorted(&other.destination_cidrs)
    }

    pub fn into_filter_chain(self) -> FilterChain {
        let prefix_ranges: Vec<CidrRange> = sorted(&self.destination_cidrs)
            .iter()
            .filter_map(|cidr| cidr_range(cidr))
            .collect();
        let filter_chain_match =
            (!self.server_names.is_empty() || !prefix_ranges.is_empty()).then(|| {
                FilterChainMatch {
                    server_names: self.server_names,
                    prefix_ranges,
                    ..Default::default()
                }
            });
        FilterChain {
            name: self.name,
            filter_chain_match,
            filters: vec![self.filter],
            ..Default::default()
        }
    }
}

fn sorted(items: &[String]) -> Vec<String> {
    let mut items = items.to_vec();
    items.sort();
    items
}

/// An address or CIDR as Envoy's `CidrRange` (an IP is its own `/32` or
/// `/128`); `None` for the unspecified address, which istiod leaves out,
/// and for anything that is not an address.
pub fn cidr_range(written: &str) -> Option<CidrRange> {
    let (prefix, len) = match ServiceAddress::parse(written)? {
        ServiceAddress::Ip(ip) => (ip, if ip.is_ipv4() { 32 } else { 128 }),
        ServiceAddress::Cidr { prefix, len } => (prefix, u32::from(len)),
    };
    (!prefix.is_unspecified()).then(|| CidrRange {
        address_prefix: prefix.to_string(),
        prefix_len: Some(filters::u32_value(len)),
    })
}

/// The TCP chains of `service` on a sidecar listener for `port`, whose
/// connections to `destination_cidr` (a CIDR service address; `None` when
/// the listener is bound to the service's own address or the wildcard) it
/// takes, as istiod builds them: each `tcp` route of a VirtualService for
/// the host that applies to `mesh` on this port, in order; a route without
/// destination subnets ends the list; otherwise the service's own cluster
/// comes last.
pub fn sidecar_tcp_chains(
    view: &MeshView<'_>,
    service: &Service<'_>,
    port: u32,
    destination_cidr: Option<&str>,
) -> Vec<ChainOpts> {
    let service_cidrs: Vec<String> = destination_cidr.map(str::to_string).into_iter().collect();
    let cluster = ClusterName::outbound(service.port_number(), "", &service.host).to_string();
    let mut chains = Vec::new();
    for (vs, vs_hosts) in view.virtual_services_for(&GatewayRef::Mesh) {
        if !vs_hosts.iter().any(|h| hosts::matches(h, &service.host)) {
            continue;
        }
        for tcp in &vs.spec.tcp {
            let chain =
                |cidrs: Vec<String>| route_chain(view, vs, &tcp.route, port, &cluster, cidrs);
            if tcp.matches.is_empty() {
                chains.extend(chain(service_cidrs));
                return chains;
            }
            let mut subnets = Vec::new();
            for m in &tcp.matches {
                if !sidecar_match(view, vs, m, port) {
                    continue;
                }
                if m.destination_subnets.is_empty() {
                    chains.extend(chain(service_cidrs));
                    return chains;
                }
                subnets.extend(m.destination_subnets.iter().cloned());
            }
            if !subnets.is_empty() {
                let covers_service = sorted(&subnets) == sorted(&service_cidrs);
                chains.extend(chain(subnets));
                if covers_service {
                    return chains;
                }
            }
        }
    }
    chains.push(ChainOpts {
        name: cluster.clone(),
        server_names: Vec::new(),
        destination_cidrs: service_cidrs,
        filter: hash_policy::tcp_proxy(
            view,
            &service.host,
            "",
            &cluster,
            TcpTarget::Cluster(cluster.clone()),
        ),
    });
    chains
}

/// Whether an L4 match applies to this sidecar on `port`: its port, its
/// gateways (`mesh`), source labels and source namespace.
fn sidecar_match(
    view: &MeshView<'_>,
    vs: &Resource<VirtualService>,
    m: &L4MatchAttributes,
    port: u32,
) -> bool {
    let gateway_ok = m.gateways.is_empty()
        || m.gateways
            .iter()
            .any(|g| GatewayRef::Mesh.is(g, &vs.meta.namespace));
    gateway_ok
        && m.port.is_none_or(|p| p == port)
        && labels_match(&m.source_labels, &view.proxy.labels)
        && (m.source_namespace.is_empty() || m.source_namespace == view.proxy.namespace)
}

/// Whether a gateway server on `server_port` of `gateway` takes a `tcp`
/// route with these matches: any match whose port and gateways agree, or
/// no match at all.
pub fn gateway_match(
    vs: &Resource<VirtualService>,
    matches: &[L4MatchAttributes],
    gateway: &GatewayRef,
    server_port: u32,
) -> bool {
    matches.is_empty()
        || matches.iter().any(|m| {
            m.port.is_none_or(|p| p == server_port)
                && (m.gateways.is_empty()
                    || m.gateways.iter().any(|g| gateway.is(g, &vs.meta.namespace)))
        })
}

/// A chain named `name` for a `tcp` route; `None` for a route without
/// destinations.
fn route_chain(
    view: &MeshView<'_>,
    vs: &Resource<VirtualService>,
    routes: &[RouteDestination],
    port: u32,
    name: &str,
    destination_cidrs: Vec<String>,
) -> Option<ChainOpts> {
    Some(ChainOpts {
        name: name.to_string(),
        server_names: Vec::new(),
        destination_cidrs,
        filter: route_filter(view, vs, routes, port)?,
    })
}

/// The TCP proxy for a route's destinations on `port`: one cluster (its
/// name is the stat prefix), or weighted clusters (stat prefix
/// `<virtual service>.<namespace>`, zero weights left out). `None` for a
/// route without destinations.
pub fn route_filter(
    view: &MeshView<'_>,
    vs: &Resource<VirtualService>,
    routes: &[RouteDestination],
    port: u32,
) -> Option<Filter> {
    let clusters = destination_clusters(
        view,
        &vs.meta.namespace,
        routes.iter().map(|d| (&d.destination, d.weight)),
        port,
    );
    let first = &routes.first()?.destination;
    let host = hosts::resolve(&first.host, &vs.meta.namespace);
    match clusters.as_slice() {
        [] => None,
        [(cluster, _)] => Some(hash_policy::tcp_proxy(
            view,
            &host,
            &first.subset,
            cluster,
            TcpTarget::Cluster(cluster.clone()),
        )),
        _ => Some(hash_policy::tcp_proxy(
            view,
            &host,
            "",
            &format!("{}.{}", vs.meta.name, vs.meta.namespace),
            TcpTarget::Weighted(clusters.into_iter().filter(|(_, w)| *w > 0).collect()),
        )),
    }
}

#[cfg(test)]
mod tests;
