//! The Envoy routes of a VirtualService's `http` routes, as istiod's
//! `BuildHTTPRoutesForVirtualService` builds them: one per match that
//! applies to the proxy (none after a catch-all), with the route's action
//! (destinations, redirect), headers, timeout, retries, mirrors, fault and
//! CORS.

use proto::pb::envoy::config::route::v3::{
    Decorator, RedirectAction, Route, RouteAction, RouteMatch, WeightedCluster, redirect_action,
    route, route_action, route_match, weighted_cluster,
};
use shared::naming::ClusterName;

use crate::config::gateway_api::convert::has_gateway_semantics;
use crate::config::model::{Destination, HttpMatchRequest, HttpRoute, VirtualService};
use crate::config::{Kind, Resource};
use crate::translate::config_metadata::config_metadata;
use crate::translate::registry::{GatewayRef, MeshView};
use crate::translate::{filters, hash_policy};

use super::headers::{HeaderEdits, header_edits};
use super::matching::{applies_to, is_catch_all, route_match};
use super::{destination_cluster, http_policy, prefix_match, retry};

/// The Envoy routes for one VirtualService on `port` of `gateway`: one per
/// applicable `match` of each `http` route, in order, up to the first
/// route that matches every request.
pub fn http_routes(
    view: &MeshView<'_>,
    vs: &Resource<VirtualService>,
    port: u32,
    gateway: &GatewayRef,
) -> Vec<Route> {
    let mut routes = Vec::new();
    for http in &vs.spec.http {
        if http.matches.is_empty() {
            routes.push(envoy_route(view, vs, http, None, port));
            break;
        }
        let mut catch_all = false;
        let applying = http
            .matches
            .iter()
            .filter(|m| applies_to(m, view.proxy, port, |g| gateway.is(g, &vs.meta.namespace)));
        for m in applying {
            let route = envoy_route(view, vs, http, Some(m), port);
            catch_all = route.r#match.as_ref().is_some_and(is_catch_all);
            routes.push(route);
            if catch_all {
                break;
            }
        }
        if catch_all {
            break;
        }
    }
    routes
}

/// `<route name>.<match name>`, or whichever of them is set.
fn route_name(http: &HttpRoute, m: Option<&HttpMatchRequest>) -> String {
    match m.map(|m| m.name.as_str()).filter(|name| !name.is_empty()) {
        Some(match_name) => format!("{}.{match_name}", http.name),
        None => http.name.clone(),
    }
}

fn envoy_route(
    view: &MeshView<'_>,
    vs: &Resource<VirtualService>,
    http: &HttpRoute,
    m: Option<&HttpMatchRequest>,
    port: u32,
) -> Route {
    let route_match = m.map_or_else(|| prefix_match("/"), route_match);
    let mut edits = http.headers.as_ref().map(header_edits).unwrap_or_default();
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
        None => route::Action::Route(route_action(view, vs, http, port, &mut edits)),
    };
    Route {
        name: route_name(http, m),
        decorator: Some(Decorator {
            operation: decorator_operation(vs, &action, &route_match, port),
            ..Default::default()
        }),
        r#match: Some(route_match),
        action: Some(action),
        request_headers_to_add: edits.request_add,
        request_headers_to_remove: edits.request_remove,
        response_headers_to_add: edits.response_add,
        response_headers_to_remove: edits.response_remove,
        typed_per_filter_config: http_policy::per_filter_config(http),
        metadata: Some(config_metadata(Kind::VirtualService, &vs.meta)),
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

/// The route action. Route-level `headers` are in `edits`; a lone
/// destination's headers are appended to them (its authority rewrites the
/// host unless the route already does), each of several destinations keeps
/// its own on its weighted cluster.
fn route_action(
    view: &MeshView<'_>,
    vs: &Resource<VirtualService>,
    http: &HttpRoute,
    port: u32,
    edits: &mut HeaderEdits,
) -> RouteAction {
    let cluster_of = |destination: &Destination| {
        destination_cluster(view, &vs.meta.namespace, destination, port)
    };
    let mut host_rewrite = http
        .rewrite
        .as_ref()
        .and_then(|rewrite| rewrite.authority.clone())
        .or_else(|| edits.authority.clone());
    let cluster_specifier = match http.route.as_slice() {
        [only] => {
            if let Some(headers) = &only.headers {
                let own = header_edits(headers);
                host_rewrite = host_rewrite.or_else(|| own.authority.clone());
                edits.extend(own);
            }
            route_action::ClusterSpecifier::Cluster(cluster_of(&only.destination))
        }
        several => route_action::ClusterSpecifier::WeightedClusters(WeightedCluster {
            clusters: several
                .iter()
                .filter(|to| to.weight.unwrap_or(0) > 0)
                .map(|to| {
                    let own = to.headers.as_ref().map(header_edits).unwrap_or_default();
                    weighted_cluster::ClusterWeight {
                        name: cluster_of(&to.destination),
                        weight: Some(filters::u32_value(to.weight.unwrap_or(0))),
                        host_rewrite_specifier: own.authority.map(
                            weighted_cluster::cluster_weight::HostRewriteSpecifier::HostRewriteLiteral,
                        ),
                        request_headers_to_add: own.request_add,
                        request_headers_to_remove: own.request_remove,
                        response_headers_to_add: own.response_add,
                        response_headers_to_remove: own.response_remove,
                        ..Default::default()
                    }
                })
                .collect(),
            ..Default::default()
        }),
    };
    let hash_policy = hash_policy::for_http_route(view, &vs.meta.namespace, &http.route);
    // istiod keeps a lone consistently hashed destination's host on retries.
    let consistent_hash = http.route.len() == 1 && !hash_policy.is_empty();
    let cluster_not_found = if has_gateway_semantics(&vs.meta) {
        route_action::ClusterNotFoundResponseCode::InternalServerError
    } else {
        route_action::ClusterNotFoundResponseCode::ServiceUnavailable
    };
    RouteAction {
        cluster_specifier: Some(cluster_specifier),
        cluster_not_found_response_code: cluster_not_found as i32,
        hash_policy,
        timeout: Some(
            http.timeout
                .map_or(filters::seconds(0), |d| filters::duration(d.0)),
        ),
        retry_policy: retry::retry_policy(http.retries.as_ref(), consistent_hash),
        request_mirror_policies: http_policy::mirror_policies(http, cluster_of),
        prefix_rewrite: http
            .rewrite
            .as_ref()
            .and_then(|rewrite| rewrite.uri.clone())
            .unwrap_or_default(),
        host_rewrite_specifier: host_rewrite
            .map(route_action::HostRewriteSpecifier::HostRewriteLiteral),
        ..Default::default()
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
