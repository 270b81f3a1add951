//! RDS: route configurations. Sidecars get one per HTTP port (`<port>`),
//! with a virtual host per service (`<host>:<port>`) and a fall-through
//! (`allow_any` or `block_all`); VirtualService `http` routes become Envoy
//! routes, as istiod builds them.

use std::collections::BTreeSet;

use proto::pb::envoy::config::core::v3::{
    DataSource, SubstitutionFormatString, data_source, substitution_format_string,
};
use proto::pb::envoy::config::route::v3::{
    Decorator, DirectResponseAction, RedirectAction, RetryPolicy, Route, RouteAction,
    RouteConfiguration, RouteMatch, VirtualHost, WeightedCluster, redirect_action, retry_policy,
    route, route_action, route_match, weighted_cluster,
};
use shared::naming::{self, ALLOW_ANY_ROUTE, BLOCK_ALL_ROUTE, ClusterName, PASSTHROUGH_CLUSTER};

use crate::config::Resource;
use crate::config::hosts;
use crate::config::model::{Destination, HttpMatchRequest, HttpRoute, VirtualService};

use super::egress_policy::OutboundPolicy;
use super::filters;
use super::registry::{GatewayRef, MeshView, vs_gateways};

mod headers;
mod matching;

use headers::header_operations;
use matching::route_match;

/// Istio's default retry policy for routes without `retries`.
const DEFAULT_RETRY_ON: &str =
    "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes";
const DEFAULT_RETRIES: u32 = 2;
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
                        vec![default_route(&service.host, port)]
                    } else {
                        routes
                    };
                    virtual_host(&service.host, port, routes)
                })
                .collect();
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
            retry_policy: Some(default_retry_policy()),
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

fn default_retry_policy() -> RetryPolicy {
    RetryPolicy {
        retry_on: DEFAULT_RETRY_ON.to_string(),
        num_retries: Some(filters::u32_value(DEFAULT_RETRIES)),
        retry_host_predicate: vec![retry_policy::RetryHostPredicate {
            name: "envoy.retry_host_predicates.previous_hosts".to_string(),
            config_type: Some(retry_policy::retry_host_predicate::ConfigType::TypedConfig(
                proto::pack_named(
                    "envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate",
                    &proto::pb::envoy::extensions::retry::host::previous_hosts::v3::PreviousHostsPredicate::default(),
                ),
            )),
        }],
        host_selection_retry_max_attempts: 5,
        retriable_status_codes: vec![503],
        ..Default::default()
    }
}

/// The Envoy routes for one VirtualService on `port` of `gateway`: one per
/// applicable `match` of each `http` route, in order.
pub fn http_routes(
    view: &MeshView<'_>,
    vs: &Resource<VirtualService>,
    port: u32,
    gateway: &GatewayRef,
) -> Vec<Route> {
    let vs_gateways = vs_gateways(vs);
    let mut routes = Vec::new();
    for http in &vs.spec.http {
        let applies = |m: &HttpMatchRequest| {
            m.port.is_none_or(|p| p == port)
                && if m.gateways.is_empty() {
                    vs_gateways
                        .iter()
                        .any(|g| gateway.is(g, &vs.meta.namespace))
                } else {
                    m.gateways.iter().any(|g| gateway.is(g, &vs.meta.namespace))
                }
        };
        if http.matches.is_empty() {
            if vs_gateways
                .iter()
                .any(|g| gateway.is(g, &vs.meta.namespace))
            {
                routes.push(envoy_route(view, vs, http, None, port));
            }
        } else {
            for m in http.matches.iter().filter(|m| applies(m)) {
                routes.push(envoy_route(view, vs, http, Some(m), port));
            }
        }
    }
    routes
}

fn envoy_route(
    view: &MeshView<'_>,
    vs: &Resource<VirtualService>,
    http: &HttpRoute,
    m: Option<&HttpMatchRequest>,
    port: u32,
) -> Route {
    let route_match = m.map_or_else(|| prefix_match("/"), route_match);
    let action = match &http.redirect {
        Some(redirect) => route::Action::Redirect(RedirectAction {
            host_redirect: redirect.authority.clone().unwrap_or_default(),
            port_redirect: redirect.port.unwrap_or_default(),
            response_code: redirect_code(redirect.redirect_code) as i32,
            scheme_rewrite_specifier: redirect
                .scheme
                .clone()
                .map(redirect_action::SchemeRewriteSpecifier::SchemeRedirect),
            path_rewrite_specifier: redirect
                .uri
                .clone()
                .map(redirect_action::PathRewriteSpecifier::PathRedirect),
            ..Default::default()
        }),
        None => route::Action::Route(route_action(view, vs, http, port)),
    };
    let mut request_add = Vec::new();
    let mut request_remove = Vec::new();
    let mut response_add = Vec::new();
    let mut response_remove = Vec::new();
    let single_destination_headers = match http.route.as_slice() {
        [only] => only.headers.as_ref(),
        _ => None,
    };
    for headers in [http.headers.as_ref(), single_destination_headers]
        .into_iter()
        .flatten()
    {
        header_operations(
            headers,
            &mut request_add,
            &mut request_remove,
            &mut response_add,
            &mut response_remove,
        );
    }
    Route {
        name: if http.name.is_empty() {
            String::new()
        } else {
            http.name.clone()
        },
        decorator: Some(Decorator {
            operation: decorator_operation(vs, &action, &route_match, port),
            ..Default::default()
        }),
        r#match: Some(route_match),
        action: Some(action),
        request_headers_to_add: request_add,
        request_headers_to_remove: request_remove,
        response_headers_to_add: response_add,
        response_headers_to_remove: response_remove,
        ..Default::default()
    }
}

/// Istio's decorator: `<host>:<port><path>` of a single destination
/// cluster, `<virtual service name>:<listener port><path>` otherwise.
fn decorator_operation(
    vs: &Resource<VirtualService>,
    action: &route::Action,
    m: &RouteMatch,
    port: u32,
) -> String {
    let path = match &m.path_specifier {
        Some(route_match::PathSpecifier::Prefix(prefix)) => format!("{prefix}*"),
        Some(route_match::PathSpecifier::Path(path)) => path.clone(),
        Some(route_match::PathSpecifier::SafeRegex(regex)) => regex.regex.clone(),
        _ => "/*".to_string(),
    };
    let destination = match action {
        route::Action::Route(RouteAction {
            cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(cluster)),
            ..
        }) => ClusterName::parse(cluster).map(|c| format!("{}:{}", c.host, c.port)),
        _ => None,
    };
    let destination = destination.unwrap_or_else(|| format!("{}:{port}", vs.meta.name));
    format!("{destination}{path}")
}

fn route_action(
    view: &MeshView<'_>,
    vs: &Resource<VirtualService>,
    http: &HttpRoute,
    port: u32,
) -> RouteAction {
    let clusters = destination_clusters(
        view,
        &vs.meta.namespace,
        http.route.iter().map(|d| (&d.destination, d.weight)),
        port,
    );
    let cluster_specifier = match clusters.as_slice() {
        [(name, _)] => route_action::ClusterSpecifier::Cluster(name.clone()),
        _ => route_action::ClusterSpecifier::WeightedClusters(WeightedCluster {
            clusters: clusters
                .into_iter()
                .filter(|(_, weight)| *weight > 0)
                .map(|(name, weight)| weighted_cluster::ClusterWeight {
                    name,
                    weight: Some(filters::u32_value(weight)),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
    };
    let retry_policy = match &http.retries {
        None => Some(default_retry_policy()),
        Some(retries) if retries.attempts == 0 => None,
        Some(retries) => Some(RetryPolicy {
            retry_on: retries
                .retry_on
                .clone()
                .unwrap_or_else(|| DEFAULT_RETRY_ON.to_string()),
            num_retries: Some(filters::u32_value(retries.attempts)),
            per_try_timeout: retries.per_try_timeout.map(|d| filters::duration(d.0)),
            retriable_status_codes: vec![503],
            ..default_retry_policy()
        }),
    };
    let (prefix_rewrite, host_rewrite) = match &http.rewrite {
        Some(rewrite) => (
            rewrite.uri.clone().unwrap_or_default(),
            rewrite.authority.clone(),
        ),
        None => (String::new(), None),
    };
    RouteAction {
        cluster_specifier: Some(cluster_specifier),
        timeout: Some(
            http.timeout
                .map_or(filters::seconds(0), |d| filters::duration(d.0)),
        ),
        retry_policy,
        prefix_rewrite,
        host_rewrite_specifier: host_rewrite
            .map(route_action::HostRewriteSpecifier::HostRewriteLiteral),
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
            let host = hosts::resolve(&destination.host, vs_namespace);
            let dest_port = destination_port(view, &host, destination.port.map(|p| p.number), port);
            let name = ClusterName::outbound(
                u16::try_from(dest_port).unwrap_or_default(),
                &destination.subset,
                &host,
            );
            (
                name.to_string(),
                weight.unwrap_or(if single { 100 } else { 0 }),
            )
        })
        .collect()
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

fn redirect_code(code: Option<u32>) -> redirect_action::RedirectResponseCode {
    use redirect_action::RedirectResponseCode as Code;
    match code {
        Some(302) => Code::Found,
        Some(303) => Code::SeeOther,
        Some(307) => Code::TemporaryRedirect,
        Some(308) => Code::PermanentRedirect,
        _ => Code::MovedPermanently,
    }
}

#[cfg(test)]
mod tests;
