//! Envoy route matches from a VirtualService `match`, as istiod's
//! `TranslateRouteMatch` writes them: path, headers and `withoutHeaders`
//! sorted by name, then `:method`, `:authority` and `:scheme`, query
//! parameters, and case sensitivity; and which matches apply to a proxy.

use proto::pb::envoy::config::route::v3::{
    HeaderMatcher, QueryParameterMatcher, RouteMatch, header_matcher, query_parameter_matcher,
    route_match,
};
use proto::pb::envoy::r#type::matcher::v3::{RegexMatcher, StringMatcher, string_matcher};

use crate::config::model::{HttpMatchRequest, StringMatch};
use crate::translate::filters;
use crate::translate::proxy::Proxy;
use crate::translate::registry::labels_match;

pub(super) fn route_match(m: &HttpMatchRequest) -> RouteMatch {
    let path_specifier = match &m.uri {
        Some(StringMatch::Exact(path)) => route_match::PathSpecifier::Path(path.clone()),
        Some(StringMatch::Prefix(prefix)) => route_match::PathSpecifier::Prefix(prefix.clone()),
        Some(StringMatch::Regex(regex)) => {
            route_match::PathSpecifier::SafeRegex(regex_matcher(regex))
        }
        None => route_match::PathSpecifier::Prefix("/".to_string()),
    };
    let mut headers: Vec<HeaderMatcher> = m
        .headers
        .iter()
        .map(|(name, value)| header_matcher(name, value))
        .chain(m.without_headers.iter().map(|(name, value)| {
            let present = is_present_match(value);
            HeaderMatcher {
                invert_match: true,
                // Envoy refuses it beside a present match.
                treat_missing_header_as_empty: !present,
                ..header_matcher(name, value)
            }
        }))
        .collect();
    headers.sort_by(|a, b| a.name.cmp(&b.name));
    for (name, value) in [
        (":method", &m.method),
        (":authority", &m.authority),
        (":scheme", &m.scheme),
    ] {
        if let Some(value) = value {
            headers.push(header_matcher(name, value));
        }
    }
    let query_parameters = m
        .query_params
        .iter()
        .map(|(name, value)| QueryParameterMatcher {
            name: name.clone(),
            query_parameter_match_specifier: Some(if is_present_match(value) {
                query_parameter_matcher::QueryParameterMatchSpecifier::PresentMatch(true)
            } else {
                query_parameter_matcher::QueryParameterMatchSpecifier::StringMatch(string_matcher(
                    value,
                ))
            }),
        })
        .collect();
    RouteMatch {
        path_specifier: Some(path_specifier),
        case_sensitive: Some(filters::bool_value(!m.ignore_uri_case)),
        headers,
        query_parameters,
        ..Default::default()
    }
}

/// Whether a match applies to `proxy` on `port`, as istiod's
/// `sourceMatchHTTP` decides: the port, then the match's gateways if it
/// names any (`gateway_named` tells whether the proxy is one), else its
/// source labels and namespace.
pub(super) fn applies_to(
    m: &HttpMatchRequest,
    proxy: &Proxy,
    port: u32,
    gateway_named: impl Fn(&str) -> bool,
) -> bool {
    if m.port.is_some_and(|p| p != port) {
        return false;
    }
    if !m.gateways.is_empty() {
        return m.gateways.iter().any(|g| gateway_named(g));
    }
    labels_match(&m.source_labels, &proxy.labels)
        && (m.source_namespace.is_empty() || m.source_namespace == proxy.namespace)
}

/// Whether a route with this match matches every request (a `/` prefix or
/// `.*` regex, nothing else): istiod sends no route after it.
pub(super) fn is_catch_all(m: &RouteMatch) -> bool {
    let all_paths = match &m.path_specifier {
        Some(route_match::PathSpecifier::Prefix(prefix)) => prefix == "/",
        Some(route_match::PathSpecifier::SafeRegex(regex)) => regex.regex == ".*",
        _ => false,
    };
    all_paths && m.headers.is_empty() && m.query_parameters.is_empty()
}

/// Istio reads the regex `*` (not RE2) as "present".
fn is_present_match(value: &StringMatch) -> bool {
    matches!(value, StringMatch::Regex(regex) if regex == "*")
}

fn regex_matcher(regex: &str) -> RegexMatcher {
    RegexMatcher {
        regex: regex.to_string(),
        ..Default::default()
    }
}

/// An Istio string match as Envoy's (exact, prefix or RE2 regex).
pub(super) fn string_matcher(value: &StringMatch) -> StringMatcher {
    let pattern = match value {
        StringMatch::Exact(s) => string_matcher::MatchPattern::Exact(s.clone()),
        StringMatch::Prefix(s) => string_matcher::MatchPattern::Prefix(s.clone()),
        StringMatch::Regex(s) => string_matcher::MatchPattern::SafeRegex(regex_matcher(s)),
    };
    StringMatcher {
        match_pattern: Some(pattern),
        ignore_case: false,
    }
}

fn header_matcher(name: &str, value: &StringMatch) -> HeaderMatcher {
    let specifier = if is_present_match(value) {
        header_matcher::HeaderMatchSpecifier::PresentMatch(true)
    } else {
        header_matcher::HeaderMatchSpecifier::StringMatch(string_matcher(value))
    };
    HeaderMatcher {
        name: name.to_string(),
        header_match_specifier: Some(specifier),
        ..Default::default()
    }
}
