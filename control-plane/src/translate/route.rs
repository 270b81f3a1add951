//! RDS: route configurations. Sidecars get one per HTTP port (`<port>`),
//! with a virtual host per service (`<host>:<port>`) and a fall-through
//! (`allow_any` or `block_all`); VirtualService `http` routes become Envoy
//! routes (`http`), as istiod builds them.

use std::collections::BTreeSet;

use proto::pb::envoy::config::core::v3::{
    DataSource, SubstitutionFormatString, data_source, substitution_format_string,
};
use proto::pb::envoy::config::route::v3::{
    Decorator, DirectResponseAction, Route, RouteAction, RouteConfiguration, RouteMatch,
    VirtualHost, route, route_action, route_match,
};
use shared::naming::{self, ALLOW_ANY_ROUTE, BLOCK_ALL_ROUTE, ClusterName, PASSTHROUGH_CLUSTER};

use crate::config::Resource;
use crate::config::hosts;
use crate::config::model::{Destination, VirtualService};

use super::egress_policy::OutboundPolicy;
use super::filters;
use super::hash_policy;
use super::registry::{GatewayRef, MeshView};

mod domains;
mod headers;
mod http;
mod http_policy;
mod matching;
mod retry;

pub use http::http_routes;

/// The port whose route gets a VirtualService's hosts when none of its
/// services speaks HTTP (istiod's default for hosts without a port).
const PLAIN_HTTP_PORT: u32 = 80;

pub fn build_sidecar_routes(view: &MeshView<'_>) -> Vec<RouteConfiguration> {
    let http_ports: BTreeSet<u32> = view
        .services
        .iter()
        .filter(|s| s.protocol().is_http())
        .map(|s| s.port.number)
        .collect();
    let bound = view.virtual_services_for(&GatewayRef::Mesh);
    http_ports
        .into_iter()
        .map(|port| {
            let mut virtual_hosts: Vec<VirtualHost> = view
                .services
                .iter()
                .filter(|s| s.port.number == port && s.protocol().is_http())
                .map(|service| {
                    let routes: Vec<Route> = bound
                        .iter()
                        .filter(|(_, vs_hosts)| {
                            vs_hosts.iter().any(|h| hosts::matches(h, &service.host))
                        })
                        .flat_map(|(vs, _)| http_routes(view, vs, port, &GatewayRef::Mesh))
                        .collect();
                    let routes = if routes.is_empty() {
                        let mut route = default_route(&service.host, port);
                        if let Some(route::Action::Route(action)) = &mut route.action {
                            action.hash_policy = hash_policy::for_service(view, service)
                                .into_iter()
                                .collect();
                        }
                        vec![route]
                    } else {
                        routes
                    };
                    let domains = domains::service_domains(service, port, &view.proxy.namespace);
                    VirtualHost {
                        domains,
                        ..virtual_host(&service.host, port, routes)
                    }
                })
                .collect();
            dedupe_domains(&mut virtual_hosts);
            for host in virtual_service_hosts(view, &bound, port) {
                // Envoy refuses a domain twice in one route configuration;
                // `*` is the fall-through's.
                let taken = |domain: &String| {
                    domain == "*"
                        || virtual_hosts
                            .iter()
                            .any(|known| known.domains.contains(domain))
                };
                if !host.domains.iter().any(taken) {
                    virtual_hosts.push(host);
                }
            }
            virtual_hosts.push(fallthrough_host(view.policy));
            RouteConfiguration {
                name: naming::sidecar_route(u16::try_from(port).unwrap_or_default()),
                virtual_hosts,
                validate_clusters: Some(filters::bool_value(false)),
                ..Default::default()
            }
        })
        .collect()
}

/// The virtual hosts of route `port` for the hosts of mesh VirtualServices
/// that name no service of that port, as istiod adds them: on the port of a
/// service of the same VirtualService that speaks HTTP there, and on port 80
/// when none of its services does (so a VirtualService for a TLS service on
/// 443 routes plain `http://<host>` requests).
fn virtual_service_hosts(
    view: &MeshView<'_>,
    bound: &[(&Resource<VirtualService>, Vec<String>)],
    port: u32,
) -> Vec<VirtualHost> {
    let on_port: Vec<_> = view
        .services
        .iter()
        .filter(|s| s.port.number == port)
        .collect();
    let mut virtual_hosts = Vec::new();
    for (vs, vs_hosts) in bound {
        let (registry, plain): (Vec<&String>, Vec<&String>) = vs_hosts
            .iter()
            .partition(|h| on_port.iter().any(|s| hosts::matches(h, &s.host)));
        let speaks_http = on_port
            .iter()
            .any(|s| s.protocol().is_http() && registry.iter().any(|h| hosts::matches(h, &s.host)));
        if plain.is_empty() || !(speaks_http || port == PLAIN_HTTP_PORT) {
            continue;
        }
        let routes = http_routes(view, vs, port, &GatewayRef::Mesh);
        if routes.is_empty() {
            continue;
        }
        virtual_hosts.extend(
            plain
                .into_iter()
                .map(|host| virtual_host(host, port, routes.clone())),
        );
    }
    virtual_hosts
}

/// Leaves each domain to the first virtual host that names it, as istiod
/// does: Envoy refuses a domain twice in one route configuration (two
/// services may share an address, or a short form).
fn dedupe_domains(virtual_hosts: &mut [VirtualHost]) {
    let mut seen = BTreeSet::new();
    for host in virtual_hosts {
        host.domains.retain(|domain| seen.insert(domain.clone()));
    }
}

/// A virtual host `<host>:<port>` answering to the host with and without port.
pub fn virtual_host(host: &str, port: u32, routes: Vec<Route>) -> VirtualHost {
    VirtualHost {
        name: format!("{host}:{port}"),
        domains: vec![host.to_string(), format!("{host}:{port}")],
        routes,
        include_request_attempt_count: true,
        ..Default::default()
    }
}

/// `allow_any` (to PassthroughCluster) or `block_all` (502 naming the
/// host), for hosts no service declares; marked with the policy's
/// `egress_policy` (`allow_any` only in dry run).
fn fallthrough_host(policy: OutboundPolicy) -> VirtualHost {
    let (name, action) = if policy.blocks() {
        (
            BLOCK_ALL_ROUTE,
            route::Action::DirectResponse(DirectResponseAction {
                status: 502,
                body_format: Some(blocked_body_format()),
                ..Default::default()
            }),
        )
    } else {
        (
            ALLOW_ANY_ROUTE,
            route::Action::Route(RouteAction {
                cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(
                    PASSTHROUGH_CLUSTER.to_string(),
                )),
                timeout: Some(filters::seconds(0)),
                ..Default::default()
            }),
        )
    };
    VirtualHost {
        name: name.to_string(),
        domains: vec!["*".to_string()],
        routes: vec![Route {
            name: name.to_string(),
            r#match: Some(prefix_match("/")),
            action: Some(action),
            metadata: policy.metadata(),
            ..Default::default()
        }],
        include_request_attempt_count: true,
        ..Default::default()
    }
}

/// The body of a blocked request, naming the host it asked for:
/// `no ServiceEntry allows <host> (REGISTRY_ONLY)`, as plain text.
fn blocked_body_format() -> SubstitutionFormatString {
    SubstitutionFormatString {
        format: Some(substitution_format_string::Format::TextFormatSource(
            DataSource {
                specifier: Some(data_source::Specifier::InlineString(
                    shared::egress::envoy_blocked_body_format(),
                )),
                ..Default::default()
            },
        )),
        content_type: "text/plain".to_string(),
        ..Default::default()
    }
}

/// The route for a service no VirtualService routes: everything to its cluster.
fn default_route(host: &str, port: u32) -> Route {
    let cluster =
        ClusterName::outbound(u16::try_from(port).unwrap_or_default(), "", host).to_string();
    Route {
        name: "default".to_string(),
        r#match: Some(prefix_match("/")),
        decorator: Some(Decorator {
            operation: naming::decorator_operation(host, u16::try_from(port).unwrap_or_default()),
            ..Default::default()
        }),
        action: Some(route::Action::Route(RouteAction {
            cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(cluster)),
            timeout: Some(filters::seconds(0)),
            retry_policy: Some(retry::default_retry_policy(false)),
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn prefix_match(prefix: &str) -> RouteMatch {
    RouteMatch {
        path_specifier: Some(route_match::PathSpecifier::Prefix(prefix.to_string())),
        ..Default::default()
    }
}

/// The clusters (and weights) of a route's destinations. A lone
/// destination without a weight takes all the traffic.
pub fn destination_clusters<'a>(
    view: &MeshView<'_>,
    vs_namespace: &str,
    destinations: impl ExactSizeIterator<Item = (&'a Destination, Option<u32>)>,
    port: u32,
) -> Vec<(String, u32)> {
    let single = destinations.len() == 1;
    destinations
        .map(|(destination, weight)| {
            (
                destination_cluster(view, vs_namespace, destination, port),
                weight.unwrap_or(if single { 100 } else { 0 }),
            )
        })
        .collect()
}

/// The cluster of one destination, reached from `port`.
pub(super) fn destination_cluster(
    view: &MeshView<'_>,
    vs_namespace: &str,
    destination: &Destination,
    port: u32,
) -> String {
    // A destination without host (an unresolved Gateway API backend) names
    // no service: its cluster `outbound|<port>||` is never built.
    let host = if destination.host.is_empty() {
        String::new()
    } else {
        hosts::resolve(&destination.host, vs_namespace)
    };
    let dest_port = destination_port(view, &host, destination.port.map(|p| p.number), port);
    ClusterName::outbound(
        u16::try_from(dest_port).unwrap_or_default(),
        &destination.subset,
        &host,
    )
    .to_string()
}

/// The port of a destination: as written, else the service's only port,
/// else the port the request came in on.
pub fn destination_port(
    view: &MeshView<'_>,
    host: &str,
    written: Option<u32>,
    listener_port: u32,
) -> u32 {
    if let Some(port) = written {
        return port;
    }
    match view.ports_of(host).as_slice() {
        [only] => *only,
        _ => listener_port,
    }
}

#[cfg(test)]
mod tests;
