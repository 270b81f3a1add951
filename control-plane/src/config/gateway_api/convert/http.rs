//! HTTPRoutes into VirtualService `http` routes: matches, filters,
//! weighted backends and timeouts, one VirtualService per attached parent.

use super::backends::{destination, resolve};
use super::parents::{Attachment, Route, attach};
use super::{
    Context, Converted, GATEWAY_SEMANTICS, ROUTE_SEMANTICS_ANNOTATION, generated, invalid,
    route_status, unsupported, virtual_service_name,
};
use crate::config::gateway_api::status::Condition;
use crate::config::gateway_api::{
    HeaderModifier, HttpRouteFilter, HttpRouteRule, HttpRouteSpec, PathMatchType, PathModifierType,
    ValueMatchType,
};
use crate::config::gateways::MESH_GATEWAY;
use crate::config::model::{
    Destination, HeaderOperations, Headers, HttpMatchRequest, HttpMirrorPolicy, HttpRedirect,
    HttpRetry, HttpRewrite, HttpRoute, HttpRouteDestination, Percent, StringMatch, VirtualService,
};
use crate::config::{ConfigError, Kind, Resource};

/// Istio's default retry attempts, kept when `backendRequest` sets the
/// timeout of each attempt.
const DEFAULT_ATTEMPTS: u32 = 2;

/// Converts every HTTPRoute; `attached` gets the listeners each attaches to.
pub(super) fn convert_all(context: &Context<'_>, out: &mut Converted, attached: &mut Vec<usize>) {
    for route in &context.api.http_routes {
        let errors = refused(route);
        if !errors.is_empty() {
            out.errors.extend(errors);
            continue;
        }
        let namespace = route.meta.namespace.as_str();
        let mut resolved_refs = None;
        let mut http = Vec::new();
        for (index, rule) in route.spec.rules.iter().enumerate() {
            let (routes, problem) = convert_rule(context, route, index, rule);
            http.extend(routes);
            if resolved_refs.is_none() {
                resolved_refs = problem;
            }
        }
        let resolved_refs = resolved_refs.unwrap_or_else(|| {
            Condition::ok("ResolvedRefs", "ResolvedRefs", "All references resolved")
        });
        let attaching = Route {
            kind: "HTTPRoute",
            namespace,
            hostnames: &route.spec.hostnames,
        };
        let mut parents = Vec::new();
        let mut n = 0;
        for parent in &route.spec.parent_refs {
            let accepted = match attach(context, &attaching, parent) {
                Ok(_) if http.is_empty() => {
                    Condition::ok("Accepted", "Accepted", "Route was valid")
                }
                Ok(attachment) => {
                    let spec = match attachment {
                        Attachment::Gateway {
                            gateways,
                            hosts,
                            listeners,
                        } => {
                            attached.extend(listeners);
                            VirtualService {
                                hosts,
                                gateways,
                                http: http.clone(),
                                ..VirtualService::default()
                            }
                        }
                        Attachment::Mesh { hosts, port } => VirtualService {
                            hosts,
                            gateways: vec![MESH_GATEWAY.to_string()],
                            http: http.iter().cloned().map(|r| on_port(r, port)).collect(),
                            ..VirtualService::default()
                        },
                    };
                    let name = virtual_service_name(&route.meta.name, "", n);
                    n += 1;
                    let mut generated =
                        generated(name, ("HTTPRoute", &route.meta), &route.origin, spec);
                    generated.meta.annotations.insert(
                        ROUTE_SEMANTICS_ANNOTATION.to_string(),
                        GATEWAY_SEMANTICS.to_string(),
                    );
                    out.virtual_services.push(generated);
                    Condition::ok("Accepted", "Accepted", "Route was valid")
                }
                Err(condition) => condition,
            };
            parents.push((parent, accepted));
        }
        out.statuses.push(route_status(
            "HTTPRoute",
            context.api.api_version(Kind::HttpRoute, &route.meta),
            (&route.meta, &route.origin),
            parents,
            resolved_refs,
        ));
    }
}

/// A mesh route bound to one port of the service: each match (or the one
/// implicit match) narrowed to it.
fn on_port(mut route: HttpRoute, port: Option<u32>) -> HttpRoute {
    if let Some(port) = port {
        if route.matches.is_empty() {
            route.matches.push(HttpMatchRequest::default());
        }
        for m in &mut route.matches {
            m.port = Some(port);
        }
    }
    route
}

/// How a match's path relates to a `ReplacePrefixMatch` rewrite.
#[derive(Clone, Copy)]
enum PathKind {
    /// The path itself (`/foo` of `PathPrefix /foo`).
    Whole,
    /// Below it (`/foo/` of `PathPrefix /foo`, or `/`).
    Below,
    /// Exact or regular expression: no prefix to replace.
    Other,
}

/// One rule into its routes (several when a prefix rewrite differs per
/// match), and the first backend that did not resolve.
fn convert_rule(
    context: &Context<'_>,
    route: &Resource<HttpRouteSpec>,
    index: usize,
    rule: &HttpRouteRule,
) -> (Vec<HttpRoute>, Option<Condition>) {
    let namespace = route.meta.namespace.as_str();
    let mut base = HttpRoute {
        name: format!("{namespace}.{}.{index}", route.meta.name),
        ..HttpRoute::default()
    };
    let mut problem = None;
    let mut prefix_rewrite = None;
    for filter in &rule.filters {
        if let Some(modifier) = &filter.request_header_modifier {
            base.headers.get_or_insert_with(Headers::default).request = Some(operations(modifier));
        }
        if let Some(modifier) = &filter.response_header_modifier {
            base.headers.get_or_insert_with(Headers::default).response = Some(operations(modifier));
        }
        if let Some(redirect) = &filter.request_redirect {
            base.redirect = Some(HttpRedirect {
                uri: redirect
                    .path
                    .as_ref()
                    .and_then(|path| path.replace_full_path.clone()),
                authority: redirect.hostname.clone(),
                port: redirect.port,
                scheme: redirect.scheme.clone(),
                redirect_code: redirect.status_code,
            });
        }
        if let Some(rewrite) = &filter.url_rewrite {
            prefix_rewrite = rewrite
                .path
                .as_ref()
                .and_then(|path| path.replace_prefix_match.clone());
            base.rewrite = Some(HttpRewrite {
                uri: None,
                authority: rewrite.hostname.clone(),
            });
        }
        if let Some(mirror) = &filter.request_mirror {
            match destination(context, "HTTPRoute", namespace, &mirror.backend_ref) {
                Ok(destination) => base.mirrors.push(HttpMirrorPolicy {
                    destination,
                    percentage: mirror_percent(mirror),
                }),
                Err(unresolved) => {
                    problem.get_or_insert(unresolved.condition);
                }
            }
        }
    }
    if let Some(timeouts) = &rule.timeouts {
        base.timeout = timeouts.request.or(timeouts.backend_request);
        if let (Some(_), Some(per_try)) = (timeouts.request, timeouts.backend_request) {
            base.retries = Some(HttpRetry {
                attempts: DEFAULT_ATTEMPTS,
                per_try_timeout: Some(per_try),
                ..HttpRetry::default()
            });
        }
    }
    if base.redirect.is_none() {
        let resolved = resolve(context, "HTTPRoute", namespace, &rule.backend_refs);
        if problem.is_none() {
            problem = resolved.problem;
        }
        base.route = resolved
            .destinations
            .into_iter()
            .map(|(destination, weight)| HttpRouteDestination {
                destination,
                weight,
                headers: None,
            })
            .collect();
        if base.route.is_empty() {
            // No backend with weight: istiod answers 500 directly; here
            // the rule goes to no cluster, which the proxy answers 500.
            base.route.push(HttpRouteDestination {
                destination: Destination::default(),
                weight: None,
                headers: None,
            });
        }
    }
    let matches: Vec<(HttpMatchRequest, PathKind)> =
        rule.matches.iter().flat_map(request_matches).collect();
    let routes = match prefix_rewrite {
        None => {
            base.matches = matches.into_iter().map(|(m, _)| m).collect();
            vec![base]
        }
        Some(replacement) if matches.is_empty() => {
            vec![with_rewrite(base, None, &replacement, PathKind::Below)]
        }
        Some(replacement) => matches
            .into_iter()
            .map(|(m, kind)| with_rewrite(base.clone(), Some(m), &replacement, kind))
            .collect(),
    };
    (routes, problem)
}

fn with_rewrite(
    mut route: HttpRoute,
    matched: Option<HttpMatchRequest>,
    replacement: &str,
    kind: PathKind,
) -> HttpRoute {
    let uri = match kind {
        PathKind::Below if !replacement.ends_with('/') => format!("{replacement}/"),
        _ => replacement.to_string(),
    };
    route.matches = matched.into_iter().collect();
    route.rewrite.get_or_insert_with(HttpRewrite::default).uri = Some(uri);
    route
}

fn mirror_percent(mirror: &crate::config::gateway_api::RequestMirror) -> Option<Percent> {
    if let Some(percent) = mirror.percent {
        return Some(Percent {
            value: f64::from(percent),
        });
    }
    mirror.fraction.as_ref().map(|fraction| Percent {
        value: f64::from(fraction.numerator) * 100.0
            / f64::from(fraction.denominator.unwrap_or(100).max(1)),
    })
}

fn operations(modifier: &HeaderModifier) -> HeaderOperations {
    let pairs = |values: &[crate::config::gateway_api::HeaderValue]| {
        values
            .iter()
            .map(|header| (header.name.to_ascii_lowercase(), header.value.clone()))
            .collect()
    };
    HeaderOperations {
        set: pairs(&modifier.set),
        add: pairs(&modifier.add),
        remove: modifier.remove.clone(),
    }
}

/// One HTTPRoute match as VirtualService matches: a `PathPrefix` keeps
/// its segment semantics (`/foo` matches `/foo` and `/foo/...`, never
/// `/foobar`) as an exact match and a prefix match below it.
fn request_matches(
    matched: &crate::config::gateway_api::HttpRouteMatch,
) -> Vec<(HttpMatchRequest, PathKind)> {
    let mut base = HttpMatchRequest {
        method: matched.method.clone().map(StringMatch::Exact),
        ..HttpMatchRequest::default()
    };
    for header in &matched.headers {
        base.headers
            .insert(header.name.to_ascii_lowercase(), value_match(header));
    }
    for param in &matched.query_params {
        base.query_params
            .insert(param.name.clone(), value_match(param));
    }
    let Some(path) = &matched.path else {
        return vec![(base, PathKind::Other)];
    };
    let value = path.value.clone().unwrap_or_else(|| "/".to_string());
    let with = |uri: StringMatch, kind: PathKind| {
        let mut m = base.clone();
        m.uri = Some(uri);
        (m, kind)
    };
    match path.kind {
        PathMatchType::Exact => vec![with(StringMatch::Exact(value), PathKind::Other)],
        PathMatchType::RegularExpression => {
            vec![with(StringMatch::Regex(value), PathKind::Other)]
        }
        PathMatchType::PathPrefix => {
            let trimmed = value.trim_end_matches('/');
            if trimmed.is_empty() {
                vec![with(StringMatch::Prefix("/".into()), PathKind::Below)]
            } else {
                vec![
                    with(StringMatch::Exact(trimmed.to_string()), PathKind::Whole),
                    with(StringMatch::Prefix(format!("{trimmed}/")), PathKind::Below),
                ]
            }
        }
    }
}

fn value_match(value: &crate::config::gateway_api::ValueMatch) -> StringMatch {
    match value.kind {
        ValueMatchType::Exact => StringMatch::Exact(value.value.clone()),
        ValueMatchType::RegularExpression => StringMatch::Regex(value.value.clone()),
    }
}

/// The fields of an HTTPRoute this control plane cannot honour, and filters
/// that do not say what they are: each leaves the route out.
fn refused(route: &Resource<HttpRouteSpec>) -> Vec<ConfigError> {
    let kind = Kind::HttpRoute;
    let mut errors = Vec::new();
    for (i, rule) in route.spec.rules.iter().enumerate() {
        let field = |name: String| format!("spec.rules[{i}].{name}");
        if rule.retry.is_some() {
            errors.push(unsupported(kind, route, field("retry".into())));
        }
        if rule.session_persistence.is_some() {
            errors.push(unsupported(kind, route, field("sessionPersistence".into())));
        }
        for (b, backend) in rule.backend_refs.iter().enumerate() {
            if !backend.filters.is_empty() {
                errors.push(unsupported(
                    kind,
                    route,
                    field(format!("backendRefs[{b}].filters")),
                ));
            }
        }
        let has_prefix_path = rule.matches.iter().all(|m| {
            m.path
                .as_ref()
                .is_none_or(|path| path.kind == PathMatchType::PathPrefix)
        });
        for (f, filter) in rule.filters.iter().enumerate() {
            let at = |name: &str| field(format!("filters[{f}].{name}"));
            if let Some(error) = filter_error(route, filter, &at, has_prefix_path) {
                errors.push(error);
            }
        }
        let redirects = rule
            .filters
            .iter()
            .filter(|f| f.request_redirect.is_some())
            .count();
        let rewrites = rule
            .filters
            .iter()
            .filter(|f| f.url_rewrite.is_some())
            .count();
        if redirects > 0 && rewrites > 0 {
            errors.push(invalid(
                kind,
                route,
                field("filters".into()),
                "RequestRedirect and URLRewrite in one rule".to_string(),
                "keep one of them: a redirected request is not forwarded",
            ));
        }
    }
    errors
}

fn filter_error(
    route: &Resource<HttpRouteSpec>,
    filter: &HttpRouteFilter,
    at: &dyn Fn(&str) -> String,
    has_prefix_path: bool,
) -> Option<ConfigError> {
    let kind = Kind::HttpRoute;
    let present = match filter.kind.as_str() {
        "RequestHeaderModifier" => filter.request_header_modifier.is_some(),
        "ResponseHeaderModifier" => filter.response_header_modifier.is_some(),
        "RequestRedirect" => filter.request_redirect.is_some(),
        "URLRewrite" => filter.url_rewrite.is_some(),
        "RequestMirror" => filter.request_mirror.is_some(),
        "ExtensionRef" => return Some(unsupported(kind, route, at("extensionRef"))),
        "CORS" => return Some(unsupported(kind, route, at("cors"))),
        other => {
            return Some(invalid(
                kind,
                route,
                at("type"),
                format!("filter type {other:?} is not known"),
                "use RequestHeaderModifier, ResponseHeaderModifier, RequestRedirect, URLRewrite or RequestMirror",
            ));
        }
    };
    if !present {
        return Some(invalid(
            kind,
            route,
            at("type"),
            format!("filter type {} without its settings", filter.kind),
            "add the field the type names (e.g. requestHeaderModifier for RequestHeaderModifier)",
        ));
    }
    if let Some(mirror) = &filter.request_mirror
        && !mirror.backend_ref.filters.is_empty()
    {
        return Some(unsupported(
            kind,
            route,
            at("requestMirror.backendRef.filters"),
        ));
    }
    let redirect_prefix = filter
        .request_redirect
        .as_ref()
        .and_then(|redirect| redirect.path.as_ref())
        .is_some_and(|path| path.kind == PathModifierType::ReplacePrefixMatch);
    if redirect_prefix {
        return Some(unsupported(
            kind,
            route,
            at("requestRedirect.path.replacePrefixMatch"),
        ));
    }
    let rewrite_path = filter
        .url_rewrite
        .as_ref()
        .and_then(|rewrite| rewrite.path.as_ref());
    match rewrite_path.map(|path| path.kind) {
        Some(PathModifierType::ReplaceFullPath) => Some(unsupported(
            kind,
            route,
            at("urlRewrite.path.replaceFullPath"),
        )),
        Some(PathModifierType::ReplacePrefixMatch) if !has_prefix_path => Some(invalid(
            kind,
            route,
            at("urlRewrite.path"),
            "ReplacePrefixMatch with a match that is not a PathPrefix".to_string(),
            "match the path with type PathPrefix, or remove the rewrite",
        )),
        _ => None,
    }
}
