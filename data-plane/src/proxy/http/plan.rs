//! The routing plan of one request, decided from the config alone: the
//! route it matches, the cluster that route picks, and the request head as
//! the upstream receives it, or the answer given locally when there is no
//! upstream to send it to.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::header::{self, HeaderName, HeaderValue};
use http::request::Parts;
use http::uri::PathAndQuery;
use http::{StatusCode, Uri};

use crate::model::RunningConfig;
use crate::model::cluster::Discovery;
use crate::model::route::{
    Forward, HeaderEdits, PathMatch, Redirect, RequestFacts, RetryPolicy, Route, RouteAction,
    RouteConfig, VirtualHost, WeightedCluster,
};
use crate::proxy::respond::LocalReply;
use shared::egress::EgressPolicy;

use super::headers::{self, text};

/// A request as it arrived, with what the plan needs of its connection.
pub(super) struct Request {
    pub(super) head: Parts,
    /// The request's authority (its URI's, else its Host header).
    pub(super) authority: Option<HeaderValue>,
    /// The downstream connection's original destination.
    pub(super) original_dst: Option<SocketAddr>,
    /// The proxy terminated TLS on the downstream connection.
    pub(super) tls: bool,
    /// The connection manager's `use_remote_address`.
    pub(super) use_remote_address: bool,
    /// The router's `suppress_envoy_headers`.
    pub(super) suppress_envoy_headers: bool,
}

/// The random choices of a plan, drawn by the caller.
pub(super) struct Draws {
    /// A uniform random number that picks among weighted clusters.
    pub(super) cluster_roll: u64,
    /// Makes the `x-request-id` of a request that has none.
    pub(super) request_id: fn() -> HeaderValue,
}

pub(super) struct Plan<'r> {
    /// The route the request matched.
    pub(super) route: Option<&'r Route>,
    /// The cluster the route picked.
    pub(super) cluster: Option<Arc<str>>,
    /// The request head: as the upstream gets it when the request is
    /// forwarded, as it came otherwise.
    pub(super) head: Parts,
    pub(super) action: Action<'r>,
}

pub(super) enum Action<'r> {
    /// Answer locally: no route, no cluster, or the route's direct response.
    Reply(LocalReply),
    /// Answer with the route's redirect.
    Redirect {
        status: StatusCode,
        location: Option<HeaderValue>,
    },
    /// Send the request upstream.
    Forward(Forwarding<'r>),
}

/// How a request goes upstream.
pub(super) struct Forwarding<'r> {
    /// The matched route, whose response header edits apply.
    pub(super) route: &'r Route,
    /// The picked weighted cluster entry's header edits, whose response
    /// edits apply before the route's.
    pub(super) cluster_edits: Option<&'r HeaderEdits>,
    pub(super) cluster: Arc<str>,
    pub(super) destination: Destination,
    /// The route timeout, over all attempts (`None`: no timeout).
    pub(super) timeout: Option<Duration>,
    pub(super) retry: Option<&'r RetryPolicy>,
    /// Whether each attempt carries `x-envoy-attempt-count`.
    pub(super) include_attempt_count: bool,
}

/// Where an ORIGINAL_DST cluster sends the request.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Destination {
    /// The connection's original destination, if it had one (clusters of
    /// other kinds ignore it).
    OriginalDst(Option<SocketAddr>),
    /// The request's authority, resolved: an explicit-proxy request to a
    /// passthrough cluster.
    Authority,
}

/// Plans `request` by `routes`; `config` knows the clusters. The app's
/// router control headers (`x-envoy-retry-on`, ..) go first, as Envoy's
/// connection manager removes them before routing: no route matches on
/// them.
pub(super) fn plan<'r>(
    routes: &'r RouteConfig,
    config: &RunningConfig,
    mut request: Request,
    draws: Draws,
) -> Plan<'r> {
    super::router_headers::remove_external_control(&mut request.head.headers);
    let facts = RequestFacts {
        authority: text(request.authority.as_ref()),
        path: request
            .head
            .uri
            .path_and_query()
            .map_or("", PathAndQuery::as_str),
        headers: &request.head.headers,
        method: &request.head.method,
        scheme: scheme(&request),
    };
    if let Some(location) = https_redirect(routes, &facts, &request) {
        return Plan {
            route: None,
            cluster: None,
            head: request.head,
            action: Action::Redirect {
                status: StatusCode::MOVED_PERMANENTLY,
                location: Some(location),
            },
        };
    }
    let Some((vhost, route)) = routes.route(&facts) else {
        return Plan {
            route: None,
            cluster: None,
            head: request.head,
            action: Action::Reply(LocalReply::no_route()),
        };
    };
    let action = match &route.action {
        RouteAction::Direct { .. } if route.egress_policy == Some(EgressPolicy::Blocked) => {
            Action::Reply(LocalReply::blocked(facts.authority))
        }
        RouteAction::Direct { status, body } => Action::Reply(LocalReply::direct(
            StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_GATEWAY),
            body.clone().unwrap_or_default(),
        )),
        RouteAction::Redirect(redirect) => Action::Redirect {
            status: StatusCode::from_u16(redirect.status).unwrap_or(StatusCode::MOVED_PERMANENTLY),
            location: location(redirect, &request),
        },
        RouteAction::Forward(forward) => {
            return forwarding(
                Matched {
                    vhost,
                    route,
                    forward,
                },
                config,
                request,
                draws,
            );
        }
    };
    Plan {
        route: Some(route),
        cluster: None,
        head: request.head,
        action,
    }
}

/// The route a request matched, with its virtual host and forward action.
struct Matched<'r> {
    vhost: &'r VirtualHost,
    route: &'r Route,
    forward: &'r Forward,
}

/// `:scheme` as Envoy's connection manager sets it: the request's own
/// (HTTP/2, or an absolute-form HTTP/1 request), else the downstream
/// connection's.
fn scheme(request: &Request) -> &str {
    match request.head.uri.scheme_str() {
        Some(scheme) => scheme,
        None if request.tls => "https",
        None => "http",
    }
}

/// Where a request that must use TLS and came without it goes, as Envoy
/// answers for a virtual host with `require_tls: ALL`: 301 to
/// `https://<host><path>`. A request counts as TLS when the proxy
/// terminated TLS or `x-forwarded-proto` says https.
fn https_redirect(
    routes: &RouteConfig,
    facts: &RequestFacts<'_>,
    request: &Request,
) -> Option<HeaderValue> {
    let vhost = routes.virtual_host(facts.authority)?;
    let forwarded_https = request
        .head
        .headers
        .get("x-forwarded-proto")
        .is_some_and(|proto| proto.as_bytes().eq_ignore_ascii_case(b"https"));
    if !vhost.require_tls || request.tls || forwarded_https {
        return None;
    }
    HeaderValue::from_str(&format!("https://{}{}", facts.authority, facts.path)).ok()
}

fn forwarding<'r>(
    matched: Matched<'r>,
    config: &RunningConfig,
    request: Request,
    draws: Draws,
) -> Plan<'r> {
    let Matched {
        vhost,
        route,
        forward,
    } = matched;
    let Some(picked) = forward.target.pick(draws.cluster_roll) else {
        return Plan {
            route: Some(route),
            cluster: None,
            head: request.head,
            action: Action::Reply(LocalReply::no_route()),
        };
    };
    let cluster = picked.name.clone();
    let entry = picked.entry;
    let Some(model) = config.cluster(&cluster) else {
        return Plan {
            route: Some(route),
            action: Action::Reply(LocalReply::no_cluster(forward.cluster_not_found)),
            cluster: Some(cluster),
            head: upstream_head(request, route, forward, entry, draws.request_id),
        };
    };
    let destination = match request.original_dst {
        None if matches!(model.discovery, Discovery::OriginalDst) => Destination::Authority,
        original_dst => Destination::OriginalDst(original_dst),
    };
    Plan {
        route: Some(route),
        cluster: Some(cluster.clone()),
        head: upstream_head(request, route, forward, entry, draws.request_id),
        action: Action::Forward(Forwarding {
            route,
            cluster_edits: entry.map(|entry| &entry.headers),
            cluster,
            destination,
            timeout: forward.timeout,
            retry: forward.retry.as_ref(),
            include_attempt_count: vhost.include_attempt_count,
        }),
    }
}

/// The request head for the upstream: hop-by-hop headers dropped, Host
/// from the authority (or the route's host rewrite, else the weighted
/// cluster entry's), `x-forwarded-proto`, an `x-request-id` if there was
/// none, the route's decorator, the header edits (the weighted cluster
/// entry's, then the route's, as Envoy evaluates them), the path
/// (prefix-rewritten) as an origin-form URI, HTTP/1.1.
fn upstream_head(
    request: Request,
    route: &Route,
    forward: &Forward,
    entry: Option<&WeightedCluster>,
    request_id: fn() -> HeaderValue,
) -> Parts {
    let Request {
        mut head,
        authority,
        tls,
        use_remote_address,
        suppress_envoy_headers,
        ..
    } = request;
    let rewrite = forward
        .host_rewrite
        .as_ref()
        .or_else(|| entry.and_then(|entry| entry.host_rewrite.as_ref()));
    let host = match rewrite {
        Some(rewrite) => HeaderValue::from_str(rewrite).ok(),
        None => authority,
    };
    let path = rewrite_path(head.uri.path_and_query(), route, forward);
    let headers = &mut head.headers;
    headers::strip_hop_by_hop(headers);
    if let Some(host) = host {
        headers.insert(header::HOST, host);
    }
    super::router_headers::set_forwarded_proto(headers, tls, use_remote_address);
    if !headers.contains_key("x-request-id") {
        headers.insert(HeaderName::from_static("x-request-id"), request_id());
    }
    if !suppress_envoy_headers {
        super::router_headers::add_expected_timeout(headers, forward);
    }
    // The route's decorator replaces one from downstream (a sidecar's, at a
    // gateway), as Envoy does on outbound listeners, all the ones Istio has.
    if let Some(operation) = &route.decorator
        && let Ok(value) = HeaderValue::from_str(operation)
    {
        headers.insert(
            HeaderName::from_static("x-envoy-decorator-operation"),
            value,
        );
    }
    if let Some(entry) = entry {
        headers::edit(
            headers,
            &entry.headers.request_headers_to_remove,
            &entry.headers.request_headers_to_add,
        );
    }
    headers::edit(
        headers,
        &route.request_headers_to_remove,
        &route.request_headers_to_add,
    );
    head.uri = Uri::from(path);
    head.extensions
        .insert(crate::upstream::DownstreamVersion(head.version));
    head.version = http::Version::HTTP_11;
    head
}

/// The upstream request's path: the downstream one (shared, not copied),
/// or the route's `prefix_rewrite` applied to the matched prefix.
fn rewrite_path(path: Option<&PathAndQuery>, route: &Route, forward: &Forward) -> PathAndQuery {
    let root = || PathAndQuery::from_static("/");
    let Some(rewrite) = &forward.prefix_rewrite else {
        return path
            .filter(|p| !p.as_str().is_empty())
            .cloned()
            .unwrap_or_else(root);
    };
    let path = path.map_or("", PathAndQuery::as_str);
    let rewritten = match &route.matcher.path {
        PathMatch::Prefix(prefix) if path.starts_with(prefix.as_str()) => {
            format!("{rewrite}{}", &path[prefix.len()..])
        }
        _ => rewrite.clone(),
    };
    PathAndQuery::try_from(rewritten).unwrap_or_else(|_| root())
}

/// The `Location` of a redirect: the route's scheme, host, port and path,
/// each defaulting to the request's (`http`, the authority without its
/// port, no port, the path and query).
fn location(redirect: &Redirect, request: &Request) -> Option<HeaderValue> {
    let scheme = redirect.scheme.as_deref().unwrap_or("http");
    let host = redirect.host.as_deref().unwrap_or_else(|| {
        text(request.authority.as_ref())
            .split(':')
            .next()
            .unwrap_or_default()
    });
    let port = redirect.port.map(|p| format!(":{p}")).unwrap_or_default();
    let path = redirect.path.as_deref().unwrap_or_else(|| {
        request
            .head
            .uri
            .path_and_query()
            .map_or("/", PathAndQuery::as_str)
    });
    HeaderValue::from_str(&format!("{scheme}://{host}{port}{path}")).ok()
}

#[cfg(test)]
mod tests;
