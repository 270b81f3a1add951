//! TLSRoutes and TCPRoutes into VirtualService `tls` and `tcp` routes,
//! one VirtualService per attached parent.

use super::backends::resolve;
use super::parents::{Attachment, Route, attach};
use super::{Context, Converted, generated, route_status, unsupported, virtual_service_name};
use crate::config::gateway_api::status::Condition;
use crate::config::gateway_api::{L4RouteRule, ParentReference};
use crate::config::gateways::MESH_GATEWAY;
use crate::config::model::{
    L4MatchAttributes, RouteDestination, TcpRoute, TlsMatchAttributes, TlsRoute, VirtualService,
};
use crate::config::{Kind, Meta, Origin};

/// The parts of a TLSRoute or TCPRoute conversion reads.
struct L4Route<'a> {
    kind: Kind,
    /// `TLSRoute` or `TCPRoute`.
    name_of_kind: &'static str,
    meta: &'a Meta,
    origin: &'a Origin,
    parents: &'a [ParentReference],
    hostnames: &'a [String],
    rules: &'a [L4RouteRule],
}

/// Converts every TLSRoute and TCPRoute; `attached` gets the listeners each
/// attaches to.
pub(super) fn convert_all(context: &Context<'_>, out: &mut Converted, attached: &mut Vec<usize>) {
    for route in &context.api.tls_routes {
        let route = L4Route {
            kind: Kind::TlsRoute,
            name_of_kind: "TLSRoute",
            meta: &route.meta,
            origin: &route.origin,
            parents: &route.spec.parent_refs,
            hostnames: &route.spec.hostnames,
            rules: &route.spec.rules,
        };
        convert(context, &route, out, attached);
    }
    for route in &context.api.tcp_routes {
        let route = L4Route {
            kind: Kind::TcpRoute,
            name_of_kind: "TCPRoute",
            meta: &route.meta,
            origin: &route.origin,
            parents: &route.spec.parent_refs,
            hostnames: &[],
            rules: &route.spec.rules,
        };
        convert(context, &route, out, attached);
    }
}

fn convert(
    context: &Context<'_>,
    route: &L4Route<'_>,
    out: &mut Converted,
    attached: &mut Vec<usize>,
) {
    let namespace = route.meta.namespace.as_str();
    let refused: Vec<_> = route
        .rules
        .iter()
        .enumerate()
        .flat_map(|(i, rule)| {
            rule.backend_refs
                .iter()
                .enumerate()
                .filter(|(_, backend)| !backend.filters.is_empty())
                .map(move |(b, _)| format!("spec.rules[{i}].backendRefs[{b}].filters"))
        })
        .map(|field| {
            let resource = crate::config::Resource {
                meta: route.meta.clone(),
                origin: route.origin.clone(),
                spec: (),
            };
            unsupported(route.kind, &resource, field)
        })
        .collect();
    if !refused.is_empty() {
        out.errors.extend(refused);
        return;
    }
    let mut problem = None;
    let mut destinations = Vec::new();
    for rule in route.rules {
        let resolved = resolve(context, route.name_of_kind, namespace, &rule.backend_refs);
        if problem.is_none() {
            problem = resolved.problem;
        }
        let rule_destinations: Vec<RouteDestination> = resolved
            .destinations
            .into_iter()
            .map(|(destination, weight)| RouteDestination {
                destination,
                weight,
            })
            .collect();
        if !rule_destinations.is_empty() {
            destinations.push(rule_destinations);
        }
    }
    let resolved_refs = problem.unwrap_or_else(|| {
        Condition::ok("ResolvedRefs", "ResolvedRefs", "All references resolved")
    });
    let attaching = Route {
        kind: route.name_of_kind,
        namespace,
        hostnames: route.hostnames,
    };
    let short_kind = if route.kind == Kind::TlsRoute {
        "tls"
    } else {
        "tcp"
    };
    let mut parents = Vec::new();
    let mut n = 0;
    for parent in route.parents {
        let accepted = match attach(context, &attaching, parent) {
            Ok(attachment) => {
                let (hosts, gateways, port, sni) = match attachment {
                    Attachment::Gateway {
                        gateways,
                        hosts,
                        listeners,
                    } => {
                        attached.extend(listeners);
                        (hosts.clone(), gateways, None, hosts)
                    }
                    Attachment::Mesh { hosts, port } => {
                        let sni = if route.hostnames.is_empty() {
                            hosts.clone()
                        } else {
                            route.hostnames.to_vec()
                        };
                        (hosts, vec![MESH_GATEWAY.to_string()], port, sni)
                    }
                };
                let mut spec = VirtualService {
                    hosts: if route.kind == Kind::TcpRoute && gateways[0] != MESH_GATEWAY {
                        vec!["*".to_string()]
                    } else {
                        hosts
                    },
                    gateways,
                    ..VirtualService::default()
                };
                for route_to in &destinations {
                    if route.kind == Kind::TlsRoute {
                        spec.tls.push(TlsRoute {
                            matches: vec![TlsMatchAttributes {
                                sni_hosts: sni.clone(),
                                port,
                                ..TlsMatchAttributes::default()
                            }],
                            route: route_to.clone(),
                        });
                    } else {
                        spec.tcp.push(TcpRoute {
                            matches: port
                                .map(|port| L4MatchAttributes {
                                    port: Some(port),
                                    ..L4MatchAttributes::default()
                                })
                                .into_iter()
                                .collect(),
                            route: route_to.clone(),
                        });
                    }
                }
                if !destinations.is_empty() {
                    let name = virtual_service_name(&route.meta.name, short_kind, n);
                    n += 1;
                    out.virtual_services.push(generated(
                        name,
                        (route.name_of_kind, route.meta),
                        route.origin,
                        spec,
                    ));
                }
                Condition::ok("Accepted", "Accepted", "Route was valid")
            }
            Err(condition) => condition,
        };
        parents.push((parent, accepted));
    }
    out.statuses.push(route_status(
        route.name_of_kind,
        context.api.api_version(route.kind, route.meta),
        (route.meta, route.origin),
        parents,
        resolved_refs,
    ));
}
