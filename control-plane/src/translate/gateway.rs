//! LDS and RDS for gateways (`router` proxies): a listener per port of the
//! Gateway servers that select this proxy. HTTP servers read routes from
//! `http.<port>` built from the VirtualServices bound to the Gateway, with
//! `httpsRedirect` as Envoy's `require_tls: ALL`; TLS PASSTHROUGH servers
//! route by SNI from the VirtualServices' `tls` routes; servers that
//! terminate TLS (SIMPLE, MUTUAL, OPTIONAL_MUTUAL, ISTIO_MUTUAL; the TLS
//! context in `gateway_tls`) match their hosts by SNI, and route HTTPS by
//! `https.<port>.<port name>.<gateway>.<namespace>` or TLS by the
//! VirtualServices' `tcp` routes; plain TCP servers (TCP, MONGO) proxy by
//! those routes too (`gateway_tcp`).

use std::collections::{BTreeMap, BTreeSet};

use proto::pb::envoy::config::core::v3::TrafficDirection;
use proto::pb::envoy::config::listener::v3::{FilterChain, FilterChainMatch, Listener};
use proto::pb::envoy::config::route::v3::{
    DirectResponseAction, Route, RouteConfiguration, RouteMatch, VirtualHost, route, route_match,
    virtual_host::TlsRequirementType,
};
use shared::naming;

use crate::config::Resource;
use crate::config::hosts;
use crate::config::model::{Gateway, Server, ServerTlsMode};

use super::filters::{self, DOWNSTREAM_TLS_CONTEXT, TLS_TRANSPORT_SOCKET};
use super::gateway_tcp::{gateway_tcp_chain, gateway_tcp_filter};
use super::gateway_tls::{self, server_tls_context};
use super::registry::{GatewayRef, MeshView, Protocol};
use super::route::{http_routes, virtual_host};
use super::tls_chains::tls_route_chains;
/// Stands, among the SNI names claimed on a listener, for a chain without
/// `server_names` (it matches every name).
const MATCH_ALL_SNI: &str = "*";

/// A Gateway server as this proxy serves it.
struct BoundServer<'a> {
    gateway: GatewayRef,
    gateway_name: &'a str,
    gateway_ns: &'a str,
    server: &'a Server,
    listen_port: u32,
}

impl BoundServer<'_> {
    fn protocol(&self) -> Protocol {
        Protocol::of(&self.server.port)
    }

    fn tls_mode(&self) -> Option<ServerTlsMode> {
        self.server.tls.as_ref().map(|tls| tls.mode)
    }

    fn is_passthrough(&self) -> bool {
        !self.protocol().is_http()
            && matches!(
                self.tls_mode(),
                Some(ServerTlsMode::Passthrough | ServerTlsMode::AutoPassthrough)
            )
    }

    /// An HTTPS, TLS or TCP server (any but HTTP, as istiod) whose TLS the
    /// gateway terminates.
    fn terminates_tls(&self) -> bool {
        !self.protocol().is_http() && self.tls_mode().is_some_and(gateway_tls::terminates)
    }

    /// An HTTPS server that terminates TLS and routes HTTP.
    fn terminates_https(&self) -> bool {
        self.protocol() == Protocol::Https && self.terminates_tls()
    }

    /// An HTTP server that redirects every request to HTTPS.
    fn redirects_to_https(&self) -> bool {
        self.server
            .tls
            .as_ref()
            .is_some_and(|tls| tls.https_redirect)
    }

    /// Istio's route configuration name for a TLS-terminating HTTPS server.
    fn https_route_name(&self) -> String {
        naming::gateway_https_route(
            u16::try_from(self.server.port.number).unwrap_or_default(),
            &self.server.port.name,
            self.gateway_name,
            self.gateway_ns,
        )
    }

    /// The SNI names the server's hosts match (without their namespace
    /// part); empty when any host is `*`, which matches every name.
    fn server_names(&self) -> Vec<String> {
        let names: Vec<String> = self
            .server
            .hosts
            .iter()
            .map(|entry| hosts::split_namespace(entry).1.to_string())
            .collect();
        if names.iter().any(|h| h == "*") {
            Vec::new()
        } else {
            names
        }
    }

    /// Whether this server admits `host` of a VirtualService in `vs_ns`
    /// (server hosts are `host`, `ns/host`, `./host` or `*/host`).
    fn admits(&self, host: &str, vs_ns: &str) -> bool {
        self.server.hosts.iter().any(|entry| {
            let (namespace, pattern) = hosts::split_namespace(entry);
            hosts::namespace_selects(namespace, vs_ns, self.gateway_ns)
                && (hosts::matches(pattern, host) || hosts::matches(host, pattern))
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
                gateway_name: &gateway.meta.name,
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
                    filters: vec![filters::gateway_http_connection_manager(
                        &format!("outbound_{name}"),
                        &route,
                        view.snapshot.mesh.path_normalization.normalization,
                    )],
                    ..Default::default()
                }],
                ..base
            });
        } else if servers
            .iter()
            .any(|s| s.terminates_tls() || s.is_passthrough())
        {
            let mut claimed = BTreeSet::new();
            let mut chains = Vec::new();
            for server in servers.iter().filter(|s| s.terminates_tls()) {
                chains.extend(terminating_chain(view, &name, server, &mut claimed));
            }
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
        } else if let Some(server) = servers.iter().find(|s| s.protocol() == Protocol::Tcp) {
            let port = server.server.port.number;
            let chain =
                gateway_tcp_chain(view, &server.gateway, port, |h, ns| server.admits(h, ns));
            listeners.extend(chain.map(|chain| Listener {
                filter_chains: vec![chain],
                ..base
            }));
        } else {
            tracing::warn!(
                listener = %name,
                "gateway servers on this port use a protocol or TLS mode this control plane does not serve yet; skipped"
            );
        }
    }
    listeners
}

/// The filter chain of a server that terminates TLS: SNI match on its
/// hosts, its TLS context, then HTTP routed by the server's RDS (HTTPS) or
/// the TCP proxy of the VirtualServices' `tcp` routes (TLS). Names already
/// `claimed` by an earlier chain are left out (Envoy rejects two chains
/// with the same match); `None` when nothing is left, or when a TLS server
/// has no route (istiod then gives it no chain).
fn terminating_chain(
    view: &MeshView<'_>,
    listener: &str,
    server: &BoundServer<'_>,
    claimed: &mut BTreeSet<String>,
) -> Option<FilterChain> {
    let tls = server
        .server
        .tls
        .as_ref()
        .and_then(|tls| server_tls_context(tls, server.terminates_https()))?;
    let (name, filters) = if server.terminates_https() {
        let route = server.https_route_name();
        let hcm = filters::gateway_http_connection_manager(
            &format!("outbound_{listener}"),
            &route,
            view.snapshot.mesh.path_normalization.normalization,
        );
        (route, vec![hcm])
    } else {
        let filter = gateway_tcp_filter(
            view,
            &server.gateway,
            server.server.port.number,
            |host, vs_ns| server.admits(host, vs_ns),
        )?;
        (String::new(), vec![filter])
    };
    let names = server.server_names();
    let server_names = if names.is_empty() {
        claimed.insert(MATCH_ALL_SNI.to_string()).then(Vec::new)
    } else {
        let fresh: Vec<String> = names
            .into_iter()
            .filter(|n| claimed.insert(n.clone()))
            .collect();
        (!fresh.is_empty()).then_some(fresh)
    };
    let Some(server_names) = server_names else {
        tracing::warn!(
            listener,
            gateway = %format!("{}/{}", server.gateway_ns, server.gateway_name),
            port = server.server.port.number,
            "an earlier server on this port already matches every host of this server; skipped"
        );
        return None;
    };
    Some(FilterChain {
        name,
        filter_chain_match: (!server_names.is_empty()).then(|| FilterChainMatch {
            server_names,
            ..Default::default()
        }),
        filters,
        transport_socket: Some(filters::transport_socket(
            TLS_TRANSPORT_SOCKET,
            DOWNSTREAM_TLS_CONTEXT,
            &tls,
        )),
        ..Default::default()
    })
}

pub fn build_gateway_routes(view: &MeshView<'_>) -> Vec<RouteConfiguration> {
    let mut routes = Vec::new();
    for (port, servers) in bound_servers(view) {
        if servers.iter().any(|s| s.protocol().is_http()) {
            let http: Vec<&BoundServer<'_>> =
                servers.iter().filter(|s| s.protocol().is_http()).collect();
            routes.push(route_configuration(
                naming::gateway_route(u16::try_from(port).unwrap_or_default()),
                view,
                &http,
            ));
            continue;
        }
        let mut by_name: BTreeMap<String, Vec<&BoundServer<'_>>> = BTreeMap::new();
        for server in servers.iter().filter(|s| s.terminates_https()) {
            by_name
                .entry(server.https_route_name())
                .or_default()
                .push(server);
        }
        for (name, servers) in by_name {
            routes.push(route_configuration(name, view, &servers));
        }
    }
    routes.sort_by(|a, b| a.name.cmp(&b.name));
    routes
}

/// Routes for HTTP on `servers` (one port): a virtual host per admitted
/// VirtualService host, or a 404 `blackhole` host when there is none.
fn route_configuration(
    name: String,
    view: &MeshView<'_>,
    servers: &[&BoundServer<'_>],
) -> RouteConfiguration {
    let mut by_host: BTreeMap<(String, u32), Vec<Route>> = BTreeMap::new();
    for server in servers {
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
    let mut redirected: BTreeSet<(String, u32)> = BTreeSet::new();
    for server in servers.iter().filter(|s| s.redirects_to_https()) {
        let server_port = server.server.port.number;
        for (vs, vs_hosts) in view.virtual_services_for(&server.gateway) {
            redirected.extend(
                vs_hosts
                    .iter()
                    .filter(|h| server.admits(h, &vs.meta.namespace))
                    .map(|h| (h.clone(), server_port)),
            );
        }
        for entry in &server.server.hosts {
            let host = hosts::split_namespace(entry).1.to_string();
            by_host.entry((host.clone(), server_port)).or_default();
            redirected.insert((host, server_port));
        }
    }
    let mut virtual_hosts: Vec<VirtualHost> = by_host
        .into_iter()
        .map(|(key, routes)| {
            let require_tls = if redirected.contains(&key) {
                TlsRequirementType::All
            } else {
                TlsRequirementType::None
            };
            VirtualHost {
                require_tls: require_tls as i32,
                ..virtual_host(&key.0, key.1, routes)
            }
        })
        .collect();
    if virtual_hosts.is_empty() {
        virtual_hosts.push(blackhole_host(servers.first().map_or(0, |s| s.listen_port)));
    }
    RouteConfiguration {
        name,
        virtual_hosts,
        validate_clusters: Some(filters::bool_value(false)),
        ..Default::default()
    }
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
