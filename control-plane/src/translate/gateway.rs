//! LDS and RDS for gateways (`router` proxies): a listener per port of the
//! Gateway servers that select this proxy; HTTP servers read routes from
//! `http.<port>` built from the VirtualServices bound to the Gateway, TLS
//! PASSTHROUGH servers route by SNI from the VirtualServices' `tls` routes.

use std::collections::{BTreeMap, BTreeSet};

use proto::pb::envoy::config::core::v3::TrafficDirection;
use proto::pb::envoy::config::listener::v3::{FilterChain, Listener};
use proto::pb::envoy::config::route::v3::{
    DirectResponseAction, Route, RouteConfiguration, RouteMatch, VirtualHost, route, route_match,
};
use shared::naming;

use crate::config::Resource;
use crate::config::model::{Gateway, Server, ServerTlsMode};

use super::filters;
use super::hosts;
use super::listener::tls_route_chains;
use super::registry::{GatewayRef, MeshView, Protocol};
use super::route::{http_routes, virtual_host};

/// A Gateway server as this proxy serves it.
struct BoundServer<'a> {
    gateway: GatewayRef,
    gateway_ns: &'a str,
    server: &'a Server,
    listen_port: u32,
}

impl BoundServer<'_> {
    fn protocol(&self) -> Protocol {
        Protocol::of(&self.server.port)
    }

    fn is_passthrough(&self) -> bool {
        self.protocol().is_tls()
            && self.server.tls.as_ref().is_some_and(|tls| {
                matches!(
                    tls.mode,
                    ServerTlsMode::Passthrough | ServerTlsMode::AutoPassthrough
                )
            })
    }

    /// Whether this server admits `host` of a VirtualService in `vs_ns`
    /// (server hosts are `host`, `ns/host`, `./host` or `*/host`).
    fn admits(&self, host: &str, vs_ns: &str) -> bool {
        self.server.hosts.iter().any(|entry| {
            let (ns, pattern) = entry.split_once('/').unwrap_or(("*", entry));
            let ns_ok = match ns {
                "*" => true,
                "." => vs_ns == self.gateway_ns,
                ns => ns == vs_ns,
            };
            ns_ok && (hosts::matches(pattern, host) || hosts::matches(host, pattern))
        })
    }
}

fn bound_servers<'a>(view: &MeshView<'a>) -> BTreeMap<u32, Vec<BoundServer<'a>>> {
    let mut by_port: BTreeMap<u32, Vec<BoundServer<'a>>> = BTreeMap::new();
    for gateway in view.selected_gateways() {
        for server in &gateway.spec.servers {
            let listen_port = view.gateway_listen_port(server.port.number);
            by_port.entry(listen_port).or_default().push(BoundServer {
                gateway: gateway_ref(gateway),
                gateway_ns: &gateway.meta.namespace,
                server,
                listen_port,
            });
        }
    }
    by_port
}

fn gateway_ref(gateway: &Resource<Gateway>) -> GatewayRef {
    GatewayRef::Gateway {
        namespace: gateway.meta.namespace.clone(),
        name: gateway.meta.name.clone(),
    }
}

pub fn build_gateway_listeners(view: &MeshView<'_>) -> Vec<Listener> {
    let mut listeners = Vec::new();
    for (port, servers) in bound_servers(view) {
        let name = naming::wildcard_listener(u16::try_from(port).unwrap_or_default());
        let base = Listener {
            name: name.clone(),
            address: Some(filters::socket_address("0.0.0.0", port)),
            traffic_direction: TrafficDirection::Outbound as i32,
            ..Default::default()
        };
        if servers.iter().any(|s| s.protocol().is_http()) {
            let route = naming::gateway_route(u16::try_from(port).unwrap_or_default());
            listeners.push(Listener {
                filter_chains: vec![FilterChain {
                    filters: vec![filters::http_connection_manager(
                        &format!("outbound_{name}"),
                        &route,
                    )],
                    ..Default::default()
                }],
                ..base
            });
        } else if servers.iter().any(BoundServer::is_passthrough) {
            let mut claimed = BTreeSet::new();
            let mut chains = Vec::new();
            for server in servers.iter().filter(|s| s.is_passthrough()) {
                for (vs, vs_hosts) in view.virtual_services_for(&server.gateway) {
                    let admitted: Vec<String> = vs_hosts
                        .iter()
                        .filter(|h| server.admits(h, &vs.meta.namespace))
                        .cloned()
                        .collect();
                    chains.extend(tls_route_chains(
                        view,
                        vs,
                        &admitted,
                        server.server.port.number,
                        &server.gateway,
                        &mut claimed,
                    ));
                }
            }
            listeners.push(Listener {
                listener_filters: vec![filters::tls_inspector()],
                filter_chains: chains,
                ..base
            });
        } else {
            tracing::warn!(
                listener = %name,
                "gateway servers on this port use a protocol or TLS mode this control plane does not serve yet; skipped"
            );
        }
    }
    listeners
}

pub fn build_gateway_routes(view: &MeshView<'_>) -> Vec<RouteConfiguration> {
    bound_servers(view)
        .into_iter()
        .filter(|(_, servers)| servers.iter().any(|s| s.protocol().is_http()))
        .map(|(port, servers)| {
            let mut by_host: BTreeMap<(String, u32), Vec<Route>> = BTreeMap::new();
            for server in servers.iter().filter(|s| s.protocol().is_http()) {
                let server_port = server.server.port.number;
                for (vs, vs_hosts) in view.virtual_services_for(&server.gateway) {
                    let routes = http_routes(view, vs, server_port, &server.gateway);
                    if routes.is_empty() {
                        continue;
                    }
                    for host in vs_hosts
                        .iter()
                        .filter(|h| server.admits(h, &vs.meta.namespace))
                    {
                        by_host
                            .entry((host.clone(), server_port))
                            .or_default()
                            .extend(routes.iter().cloned());
                    }
                }
            }
            let mut virtual_hosts: Vec<VirtualHost> = by_host
                .into_iter()
                .map(|((host, server_port), routes)| virtual_host(&host, server_port, routes))
                .collect();
            if virtual_hosts.is_empty() {
                virtual_hosts.push(blackhole_host(
                    servers.first().map_or(port, |s| s.listen_port),
                ));
            }
            RouteConfiguration {
                name: naming::gateway_route(u16::try_from(port).unwrap_or_default()),
                virtual_hosts,
                validate_clusters: Some(filters::bool_value(false)),
                ..Default::default()
            }
        })
        .collect()
}

/// What a gateway port with no routes answers: 404, as Istio's `blackhole`.
fn blackhole_host(port: u32) -> VirtualHost {
    VirtualHost {
        name: format!("blackhole:{port}"),
        domains: vec!["*".to_string()],
        routes: vec![Route {
            name: "default".to_string(),
            r#match: Some(RouteMatch {
                path_specifier: Some(route_match::PathSpecifier::Prefix("/".to_string())),
                ..Default::default()
            }),
            action: Some(route::Action::DirectResponse(DirectResponseAction {
                status: 404,
                ..Default::default()
            })),
            ..Default::default()
        }],
        ..Default::default()
    }
}
