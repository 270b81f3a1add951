//! LDS for sidecars: `virtualOutbound` on 15001 (captured traffic, handed
//! to the listener for the original destination port) and one listener per
//! service port: HTTP → HCM with RDS `<port>`, TLS/HTTPS → SNI filter chains,
//! TCP → TCP proxy. Unknown destinations fall through to PassthroughCluster
//! (ALLOW_ANY) or BlackHoleCluster (REGISTRY_ONLY).

use std::collections::{BTreeMap, BTreeSet};

use proto::pb::envoy::config::core::v3::TrafficDirection;
use proto::pb::envoy::config::listener::v3::{FilterChain, FilterChainMatch, Listener};
use shared::naming::{
    self, BLACKHOLE_CLUSTER, ClusterName, PASSTHROUGH_CLUSTER, VIRTUAL_OUTBOUND_LISTENER,
};
use shared::ports::OUTBOUND_CAPTURE;

use crate::config::Resource;
use crate::config::hosts;
use crate::config::model::{OutboundMode, TlsRoute, VirtualService};

use super::filters::{self, TcpTarget};
use super::registry::{GatewayRef, MeshView, Protocol, Service};
use super::route::destination_clusters;

pub fn build_sidecar_listeners(view: &MeshView<'_>) -> Vec<Listener> {
    let mut listeners = vec![virtual_outbound(view.mode)];
    let mut by_port: BTreeMap<u32, Vec<&Service<'_>>> = BTreeMap::new();
    for service in &view.services {
        by_port
            .entry(service.port.number)
            .or_default()
            .push(service);
    }
    for (port, services) in by_port {
        if services.iter().any(|s| s.protocol().is_http()) {
            listeners.push(http_listener(port));
        } else if services.iter().any(|s| s.protocol().is_tls()) {
            listeners.push(tls_listener(view, port, &services));
        } else {
            listeners.extend(tcp_listeners(port, &services));
        }
    }
    listeners.sort_by(|a, b| a.name.cmp(&b.name));
    listeners
}

fn fallthrough_cluster(mode: OutboundMode) -> &'static str {
    match mode {
        OutboundMode::AllowAny => PASSTHROUGH_CLUSTER,
        OutboundMode::RegistryOnly => BLACKHOLE_CLUSTER,
    }
}

fn fallthrough_chain(mode: OutboundMode) -> FilterChain {
    let cluster = fallthrough_cluster(mode);
    FilterChain {
        name: "PassthroughFilterChain".to_string(),
        filters: vec![filters::tcp_proxy(
            cluster,
            TcpTarget::Cluster(cluster.to_string()),
        )],
        ..Default::default()
    }
}

fn virtual_outbound(mode: OutboundMode) -> Listener {
    let port = u32::from(OUTBOUND_CAPTURE);
    Listener {
        name: VIRTUAL_OUTBOUND_LISTENER.to_string(),
        address: Some(filters::socket_address("0.0.0.0", port)),
        use_original_dst: Some(filters::bool_value(true)),
        traffic_direction: TrafficDirection::Outbound as i32,
        filter_chains: vec![FilterChain {
            name: "virtualOutbound-blackhole".to_string(),
            filter_chain_match: Some(FilterChainMatch {
                destination_port: Some(filters::u32_value(port)),
                ..Default::default()
            }),
            filters: vec![filters::tcp_proxy(
                BLACKHOLE_CLUSTER,
                TcpTarget::Cluster(BLACKHOLE_CLUSTER.to_string()),
            )],
            ..Default::default()
        }],
        default_filter_chain: Some(fallthrough_chain(mode)),
        ..Default::default()
    }
}

/// A listener that only receives connections handed over by virtualOutbound.
fn outbound_listener(name: String, address: &str, port: u32) -> Listener {
    Listener {
        name,
        address: Some(filters::socket_address(address, port)),
        bind_to_port: Some(filters::bool_value(false)),
        traffic_direction: TrafficDirection::Outbound as i32,
        ..Default::default()
    }
}

fn port_name(port: u32) -> String {
    naming::wildcard_listener(u16::try_from(port).unwrap_or_default())
}

fn http_listener(port: u32) -> Listener {
    let name = port_name(port);
    let route = naming::sidecar_route(u16::try_from(port).unwrap_or_default());
    Listener {
        filter_chains: vec![FilterChain {
            filters: vec![filters::http_connection_manager(
                &format!("outbound_{name}"),
                &route,
            )],
            ..Default::default()
        }],
        ..outbound_listener(name, "0.0.0.0", port)
    }
}

/// SNI-routed TLS: VirtualService `tls` routes first, then each service
/// host to its own cluster; anything else falls through.
fn tls_listener(view: &MeshView<'_>, port: u32, services: &[&Service<'_>]) -> Listener {
    let mut chains = Vec::new();
    let mut claimed: BTreeSet<String> = BTreeSet::new();
    for (vs, vs_hosts) in view.virtual_services_for(&GatewayRef::Mesh) {
        chains.extend(tls_route_chains(
            view,
            vs,
            &vs_hosts,
            port,
            &GatewayRef::Mesh,
            &mut claimed,
        ));
    }
    for service in services.iter().filter(|s| s.protocol().is_tls()) {
        if claimed.insert(service.host.clone()) {
            let cluster =
                ClusterName::outbound(service.port_number(), "", &service.host).to_string();
            chains.push(sni_chain(
                vec![service.host.clone()],
                TcpTarget::Cluster(cluster),
            ));
        }
    }
    Listener {
        listener_filters: vec![filters::tls_inspector()],
        continue_on_listener_filters_timeout: true,
        filter_chains: chains,
        default_filter_chain: Some(fallthrough_chain(view.mode)),
        ..outbound_listener(port_name(port), "0.0.0.0", port)
    }
}

fn sni_chain(server_names: Vec<String>, target: TcpTarget) -> FilterChain {
    let stat_prefix = match &target {
        TcpTarget::Cluster(cluster) => cluster.clone(),
        TcpTarget::Weighted(_) => server_names.join(","),
    };
    FilterChain {
        name: server_names.join(","),
        filter_chain_match: Some(FilterChainMatch {
            server_names,
            ..Default::default()
        }),
        filters: vec![filters::tcp_proxy(&stat_prefix, target)],
        ..Default::default()
    }
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
            if !gateway_ok || m.port.is_some_and(|p| p != port) {
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
            chains.push(sni_chain(snis, tls_target(view, vs, tls, port)));
        }
    }
    chains
}

fn tls_target(
    view: &MeshView<'_>,
    vs: &Resource<VirtualService>,
    tls: &TlsRoute,
    port: u32,
) -> TcpTarget {
    let clusters = destination_clusters(
        view,
        &vs.meta.namespace,
        tls.route.iter().map(|d| (&d.destination, d.weight)),
        port,
    );
    match clusters.as_slice() {
        [(name, _)] => TcpTarget::Cluster(name.clone()),
        _ => TcpTarget::Weighted(clusters.into_iter().filter(|(_, w)| *w > 0).collect()),
    }
}

/// Plain TCP: a listener per service address, or one `0.0.0.0_<port>` for
/// the first service without addresses on that port.
fn tcp_listeners(port: u32, services: &[&Service<'_>]) -> Vec<Listener> {
    let mut listeners = Vec::new();
    let mut wildcard_taken = false;
    for service in services.iter().filter(|s| s.protocol() == Protocol::Tcp) {
        let cluster = ClusterName::outbound(service.port_number(), "", &service.host).to_string();
        let chain = |cluster: &str| FilterChain {
            filters: vec![filters::tcp_proxy(
                cluster,
                TcpTarget::Cluster(cluster.to_string()),
            )],
            ..Default::default()
        };
        let addresses = &service.entry.spec.addresses;
        if addresses.is_empty() {
            if !wildcard_taken {
                wildcard_taken = true;
                listeners.push(Listener {
                    filter_chains: vec![chain(&cluster)],
                    ..outbound_listener(port_name(port), "0.0.0.0", port)
                });
            }
        } else {
            for address in addresses.iter().filter(|a| !a.contains('/')) {
                listeners.push(Listener {
                    filter_chains: vec![chain(&cluster)],
                    ..outbound_listener(format!("{address}_{port}"), address, port)
                });
            }
        }
    }
    listeners
}
