//! SNI filter chains for TLS that proxies do not terminate, as istiod builds
//! them: VirtualService `tls` routes that apply on the port, else the
//! service's own chain. A service with `addresses` has its own listener per
//! address (`<ip>_<port>`), where its chain matches every connection; on
//! the wildcard listener (no addresses, or a CIDR range) chains match by
//! SNI (and by the range).

use std::collections::BTreeSet;

use proto::pb::envoy::config::listener::v3::FilterChain;
use shared::naming::ClusterName;

use crate::config::Resource;
use crate::config::hosts;
use crate::config::model::VirtualService;

use super::filters::TcpTarget;
use super::hash_policy;
use super::registry::{GatewayRef, MeshView, Service, labels_match};
use super::tcp::{ChainOpts, route_filter};

/// The chains of the wildcard listener of `port` for the TLS services
/// without addresses: `tls` routes of the VirtualServices for their hosts
/// first, then each host to its own cluster.
pub fn wildcard_tls_chains(
    view: &MeshView<'_>,
    port: u32,
    services: &[&Service<'_>],
) -> Vec<ChainOpts> {
    let mut claimed: BTreeSet<String> = BTreeSet::new();
    let mut chains = mesh_route_chains(
        view,
        port,
        |vs_hosts| for_any_service(vs_hosts, services),
        &mut claimed,
        &[],
    );
    for service in services {
        if claimed.insert(service.host.clone()) {
            chains.push(own_chain(
                view,
                service,
                vec![service.host.clone()],
                Vec::new(),
            ));
        }
    }
    chains
}

/// The chains of a TLS service with addresses on the listener for one of
/// them: bound to the address (`destination_cidr` is `None`), or on the
/// wildcard for a range. Its VirtualServices' `tls` routes come first,
/// matched by SNI (and the range, unless a route names subnets of its
/// own); without any, the service's own chain takes every connection to
/// the address, or, on a range, the connections whose SNI is its host.
pub fn addressed_tls_chains(
    view: &MeshView<'_>,
    service: &Service<'_>,
    port: u32,
    destination_cidr: Option<&str>,
) -> Vec<ChainOpts> {
    let service_cidrs: Vec<String> = destination_cidr.map(str::to_string).into_iter().collect();
    let mut claimed: BTreeSet<String> = BTreeSet::new();
    let mut chains = mesh_route_chains(
        view,
        port,
        |vs_hosts| vs_hosts.iter().any(|h| hosts::matches(h, &service.host)),
        &mut claimed,
        &service_cidrs,
    );
    if chains.is_empty() {
        let names = if destination_cidr.is_some() {
            vec![service.host.clone()]
        } else {
            Vec::new()
        };
        chains.push(own_chain(view, service, names, service_cidrs));
    }
    chains
}

/// The chains of the `tls` routes on `port` of the mesh VirtualServices
/// whose hosts `applies` accepts, in VirtualService order; `cidrs` are the
/// destination ranges the chains match when a route names none.
fn mesh_route_chains(
    view: &MeshView<'_>,
    port: u32,
    applies: impl Fn(&[String]) -> bool,
    claimed: &mut BTreeSet<String>,
    cidrs: &[String],
) -> Vec<ChainOpts> {
    let mut chains = Vec::new();
    for (vs, vs_hosts) in view.virtual_services_for(&GatewayRef::Mesh) {
        if applies(&vs_hosts) {
            chains.extend(route_chain_opts(
                view,
                vs,
                &vs_hosts,
                port,
                &GatewayRef::Mesh,
                claimed,
                cidrs,
            ));
        }
    }
    chains
}

/// Filter chains for a VirtualService's `tls` routes that apply on `port`
/// of `gateway`. SNI names already `claimed` by an earlier chain are skipped,
/// since Envoy rejects two chains with the same match.
pub fn tls_route_chains(
    view: &MeshView<'_>,
    vs: &Resource<VirtualService>,
    vs_hosts: &[String],
    port: u32,
    gateway: &GatewayRef,
    claimed: &mut BTreeSet<String>,
) -> Vec<FilterChain> {
    route_chain_opts(view, vs, vs_hosts, port, gateway, claimed, &[])
        .into_iter()
        .map(ChainOpts::into_filter_chain)
        .collect()
}

/// Whether a VirtualService's hosts cover one of `services`.
fn for_any_service(vs_hosts: &[String], services: &[&Service<'_>]) -> bool {
    services
        .iter()
        .any(|s| vs_hosts.iter().any(|h| hosts::matches(h, &s.host)))
}

/// A service's own chain: to `outbound|<port>||<host>`. Named for its
/// host when it matches by SNI; without server names, named for the
/// service as a plain TCP service's chain (`outbound|<port>||<host>`), by
/// which the explicit proxy finds a CONNECT target's chain.
fn own_chain(
    view: &MeshView<'_>,
    service: &Service<'_>,
    server_names: Vec<String>,
    cidrs: Vec<String>,
) -> ChainOpts {
    let cluster = ClusterName::outbound(service.port_number(), "", &service.host).to_string();
    let name = if server_names.is_empty() {
        cluster.clone()
    } else {
        service.host.clone()
    };
    ChainOpts {
        name,
        server_names,
        destination_cidrs: cidrs,
        filter: hash_policy::tcp_proxy(
            view,
            &service.host,
            "",
            &cluster,
            TcpTarget::Cluster(cluster.clone()),
        ),
    }
}

/// The chains of a VirtualService's `tls` routes; a match without
/// destination subnets takes `service_cidrs`, as istiod gives it the
/// service's range.
fn route_chain_opts(
    view: &MeshView<'_>,
    vs: &Resource<VirtualService>,
    vs_hosts: &[String],
    port: u32,
    gateway: &GatewayRef,
    claimed: &mut BTreeSet<String>,
    service_cidrs: &[String],
) -> Vec<ChainOpts> {
    let vs_gateways = super::registry::vs_gateways(vs);
    let mut chains = Vec::new();
    for tls in &vs.spec.tls {
        for m in &tls.matches {
            let gateway_ok = if m.gateways.is_empty() {
                vs_gateways
                    .iter()
                    .any(|g| gateway.is(g, &vs.meta.namespace))
            } else {
                m.gateways.iter().any(|g| gateway.is(g, &vs.meta.namespace))
            };
            // Sidecars only: istiod's gateways ignore the source of a TLS match.
            let source_ok = *gateway != GatewayRef::Mesh
                || (labels_match(&m.source_labels, &view.proxy.labels)
                    && (m.source_namespace.is_empty()
                        || m.source_namespace == view.proxy.namespace));
            if !gateway_ok || !source_ok || m.port.is_some_and(|p| p != port) {
                continue;
            }
            let snis: Vec<String> = if m.sni_hosts.is_empty() {
                vs_hosts.to_vec()
            } else {
                m.sni_hosts.clone()
            }
            .into_iter()
            .filter(|sni| vs_hosts.iter().any(|h| hosts::matches(h, sni)))
            .filter(|sni| claimed.insert(sni.clone()))
            .collect();
            if snis.is_empty() {
                continue;
            }
            let Some(filter) = route_filter(view, vs, &tls.route, port) else {
                continue;
            };
            let destination_cidrs = if m.destination_subnets.is_empty() {
                service_cidrs.to_vec()
            } else {
                m.destination_subnets.clone()
            };
            chains.push(ChainOpts {
                name: snis.join(","),
                server_names: snis,
                destination_cidrs,
                filter,
            });
        }
    }
    chains
}
