//! LDS for sidecars: `virtualOutbound` on 15001 (captured traffic, handed
//! to the listener for the original destination) and the listeners istiod
//! builds per port: HTTP → HCM with RDS `<port>` on `0.0.0.0_<port>`,
//! TLS/HTTPS and TCP → a listener per service address (`<ip>_<port>`),
//! CIDR ranges as destination matches on the wildcard, which also holds
//! the SNI chains of TLS services without addresses.
//! Unknown destinations fall through to PassthroughCluster (ALLOW_ANY, and
//! REGISTRY_ONLY's dry run, marked `would_block`) or BlackHoleCluster
//! (REGISTRY_ONLY, marked `blocked`).

use std::collections::BTreeMap;

use crate::config::model::PathNormalization;
use proto::pb::envoy::config::core::v3::TrafficDirection;
use proto::pb::envoy::config::listener::v3::{FilterChain, FilterChainMatch, Listener};
use shared::naming::{self, BLACKHOLE_CLUSTER, VIRTUAL_OUTBOUND_LISTENER};
use shared::ports::OUTBOUND_CAPTURE;

use super::access_log_service::add_grpc_access_logs;
use super::egress_policy::OutboundPolicy;
use super::filters::{self, TcpTarget};
use super::registry::{MeshView, Protocol, Service, ServiceAddress};
use super::tcp::{ChainOpts, sidecar_tcp_chains};
use super::tls_chains::{addressed_tls_chains, wildcard_tls_chains};

/// The IPv4 wildcard address that listeners without a service address bind.
const WILDCARD: &str = "0.0.0.0";

pub fn build_sidecar_listeners(view: &MeshView<'_>) -> Vec<Listener> {
    let mut listeners = vec![virtual_outbound(view.policy)];
    let mut by_port: BTreeMap<u32, Vec<&Service<'_>>> = BTreeMap::new();
    for service in &view.services {
        by_port
            .entry(service.port.number)
            .or_default()
            .push(service);
    }
    for (port, services) in by_port {
        let http = services.iter().any(|s| s.protocol().is_http());
        if http {
            listeners.push(http_listener(
                port,
                view.snapshot.mesh.path_normalization.normalization,
            ));
        }
        let mut by_bind: BTreeMap<String, Vec<ChainOpts>> = BTreeMap::new();
        let unaddressed_tls: Vec<&Service<'_>> = services
            .iter()
            .filter(|s| s.protocol().is_tls() && s.entry.spec.addresses.is_empty())
            .copied()
            .collect();
        if !http && !unaddressed_tls.is_empty() {
            let chains = wildcard_tls_chains(view, port, &unaddressed_tls);
            by_bind.insert(WILDCARD.to_string(), chains);
        }
        for service in &services {
            let tls = service.protocol().is_tls();
            let addressed = !service.entry.spec.addresses.is_empty();
            if service.protocol() != Protocol::Tcp && !(tls && addressed) {
                continue;
            }
            for (bind, cidr) in tcp_bindings(service) {
                if http && bind == WILDCARD {
                    tracing::debug!(host = %service.host, port, "an HTTP service holds the wildcard listener of this port; TCP service left out");
                    continue;
                }
                let chains = if tls {
                    addressed_tls_chains(view, service, port, cidr.as_deref())
                } else {
                    sidecar_tcp_chains(view, service, port, cidr.as_deref())
                };
                merge_chains(by_bind.entry(bind).or_default(), chains);
            }
        }
        for (bind, chains) in by_bind {
            listeners.push(network_listener(view.policy, &bind, port, chains));
        }
    }
    if view.snapshot.mesh.enable_envoy_access_log_service {
        add_grpc_access_logs(&mut listeners);
    }
    listeners.sort_by(|a, b| a.name.cmp(&b.name));
    listeners
}

/// Where istiod puts a TCP service's listeners: one per address, bound to
/// that IP, or on the wildcard with a destination CIDR match for a range;
/// a service without addresses takes the wildcard and every destination.
fn tcp_bindings(service: &Service<'_>) -> Vec<(String, Option<String>)> {
    if service.entry.spec.addresses.is_empty() {
        return vec![(WILDCARD.to_string(), None)];
    }
    service
        .addresses()
        .into_iter()
        .map(|address| match address {
            ServiceAddress::Ip(ip) => (ip.to_string(), None),
            cidr @ ServiceAddress::Cidr { .. } => (WILDCARD.to_string(), Some(cidr.to_string())),
        })
        .collect()
}

/// Adds `incoming` chains to a listener's, leaving out each that matches
/// the same connections as one already there (Envoy would reject both).
fn merge_chains(chains: &mut Vec<ChainOpts>, incoming: Vec<ChainOpts>) {
    for chain in incoming {
        if chains.iter().any(|c| c.conflicts_with(&chain)) {
            tracing::debug!(cidrs = ?chain.destination_cidrs, names = ?chain.server_names, "a filter chain with the same match exists; left out");
            continue;
        }
        chains.push(chain);
    }
}

/// A TLS or TCP listener from its chains, as istiod finishes one: a chain
/// that matches everything becomes the default chain (or the only chain);
/// without one, unmatched traffic falls through.
fn network_listener(
    policy: OutboundPolicy,
    bind: &str,
    port: u32,
    chains: Vec<ChainOpts>,
) -> Listener {
    let inspect_tls = chains.iter().any(|c| !c.server_names.is_empty());
    let (match_all, specific): (Vec<ChainOpts>, Vec<ChainOpts>) =
        chains.into_iter().partition(ChainOpts::matches_all);
    let mut filter_chains: Vec<FilterChain> = specific
        .into_iter()
        .map(ChainOpts::into_filter_chain)
        .collect();
    let default_filter_chain = match match_all.into_iter().next() {
        Some(chain) if filter_chains.is_empty() => {
            filter_chains.push(chain.into_filter_chain());
            None
        }
        Some(chain) => Some(chain.into_filter_chain()),
        None => Some(fallthrough_chain(policy)),
    };
    Listener {
        listener_filters: inspect_tls
            .then(filters::tls_inspector)
            .into_iter()
            .collect(),
        continue_on_listener_filters_timeout: true,
        filter_chains,
        default_filter_chain,
        ..outbound_listener(format!("{bind}_{port}"), bind, port)
    }
}

/// The chain for connections no other chain matches, marked with the
/// policy's `egress_policy`.
fn fallthrough_chain(policy: OutboundPolicy) -> FilterChain {
    let cluster = policy.fallthrough_cluster();
    FilterChain {
        name: "PassthroughFilterChain".to_string(),
        filters: vec![filters::tcp_proxy(
            cluster,
            TcpTarget::Cluster(cluster.to_string()),
        )],
        metadata: policy.metadata(),
        ..Default::default()
    }
}

fn virtual_outbound(policy: OutboundPolicy) -> Listener {
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
        default_filter_chain: Some(fallthrough_chain(policy)),
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

fn http_listener(port: u32, paths: PathNormalization) -> Listener {
    let name = naming::wildcard_listener(u16::try_from(port).unwrap_or_default());
    let route = naming::sidecar_route(u16::try_from(port).unwrap_or_default());
    Listener {
        filter_chains: vec![FilterChain {
            filters: vec![filters::http_connection_manager(
                &format!("outbound_{name}"),
                &route,
                paths,
            )],
            ..Default::default()
        }],
        ..outbound_listener(name, WILDCARD, port)
    }
}
