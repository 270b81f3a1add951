//! Route configurations (RDS, or inline in a listener) → model: virtual
//! hosts, route matches and actions (forward, redirect, direct response).

use std::time::Duration;

use proto::pb::envoy::config::core::v3::{HeaderValueOption, header_value_option};
use proto::pb::envoy::config::route::v3 as pb_route;
use proto::pb::envoy::r#type::matcher::v3::{StringMatcher, string_matcher};

use super::egress_policy::egress_policy;
use super::{At, data_source, duration, enabled_duration};
use crate::model::Error;
use crate::model::route::{
    ClusterTarget, Forward, HeaderMatch, HeaderToAdd, PathMatch, QueryMatch, Redirect, RetryPolicy,
    Route, RouteAction, RouteConfig, RouteMatch, StringMatch, VirtualHost,
};

/// Envoy's default route timeout when a route sets none.
const DEFAULT_ROUTE_TIMEOUT: Duration = Duration::from_secs(15);

/// A route configuration from RDS (or inline in a listener).
pub fn route_config(rc: &pb_route::RouteConfiguration) -> Result<RouteConfig, Error> {
    let at = At::resource("route configuration", &rc.name);
    let virtual_hosts = rc
        .virtual_hosts
        .iter()
        .enumerate()
        .map(|(i, vh)| virtual_host(vh, &at.field(format!("virtual_hosts[{i}]"))))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RouteConfig {
        name: rc.name.as_str().into(),
        virtual_hosts,
    })
}

fn virtual_host(vh: &pb_route::VirtualHost, at: &At<'_>) -> Result<VirtualHost, Error> {
    let routes = vh
        .routes
        .iter()
        .enumerate()
        .map(|(i, r)| route(r, &at.field(format!("routes[{i}]"))))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(VirtualHost {
        name: vh.name.as_str().into(),
        domains: vh.domains.iter().map(|d| d.to_ascii_lowercase()).collect(),
        routes,
        include_attempt_count: vh.include_request_attempt_count,
        require_tls: require_tls(vh.require_tls, &at.field("require_tls"))?,
    })
}

/// Envoy's `require_tls`: NONE, or ALL (every request over TLS). The agent
/// cannot tell internal requests apart, so EXTERNAL_ONLY is rejected.
fn require_tls(value: i32, at: &At<'_>) -> Result<bool, Error> {
    use pb_route::virtual_host::TlsRequirementType;
    match TlsRequirementType::try_from(value) {
        Ok(TlsRequirementType::None) => Ok(false),
        Ok(TlsRequirementType::All) => Ok(true),
        _ => {
            Err(at
                .error("only NONE and ALL are supported (EXTERNAL_ONLY needs internal addresses)"))
        }
    }
}

fn route(r: &pb_route::Route, at: &At<'_>) -> Result<Route, Error> {
    Ok(Route {
        name: r.name.as_str().into(),
        matcher: route_match(&r.r#match.clone().unwrap_or_default(), &at.field("match"))?,
        action: route_action(r, at)?,
        decorator: r
            .decorator
            .as_ref()
            .filter(|d| d.propagate.as_ref().is_none_or(|p| p.value))
            .map(|d| d.operation.as_str().into()),
        request_headers_to_add: headers_to_add(
            &r.request_headers_to_add,
            &at.field("request_headers_to_add"),
        )?,
        request_headers_to_remove: r.request_headers_to_remove.clone(),
        response_headers_to_add: headers_to_add(
            &r.response_headers_to_add,
            &at.field("response_headers_to_add"),
        )?,
        response_headers_to_remove: r.response_headers_to_remove.clone(),
        egress_policy: egress_policy(r.metadata.as_ref(), &at.field("metadata"))?,
    })
}

fn route_match(m: &pb_route::RouteMatch, at: &At<'_>) -> Result<RouteMatch, Error> {
    use pb_route::route_match::PathSpecifier;
    let path = match &m.path_specifier {
        Some(PathSpecifier::Prefix(p)) => PathMatch::Prefix(p.clone()),
        Some(PathSpecifier::Path(p)) => PathMatch::Exact(p.clone()),
        Some(PathSpecifier::SafeRegex(re)) => {
            PathMatch::Regex(regex(&re.regex, &at.field("safe_regex"))?)
        }
        _ => return Err(at.error("only prefix, path and safe_regex matches are supported")),
    };
    let headers = m
        .headers
        .iter()
        .enumerate()
        .map(|(i, h)| header_match(h, &at.field(format!("headers[{i}]"))))
        .collect::<Result<_, _>>()?;
    let query = m
        .query_parameters
        .iter()
        .enumerate()
        .map(|(i, q)| query_match(q, &at.field(format!("query_parameters[{i}]"))))
        .collect::<Result<_, _>>()?;
    Ok(RouteMatch {
        path,
        case_sensitive: m.case_sensitive.as_ref().is_none_or(|b| b.value),
        headers,
        query,
    })
}

// Envoy still accepts the deprecated header match fields; so do we.
#[allow(deprecated)]
fn header_match(h: &pb_route::HeaderMatcher, at: &At<'_>) -> Result<HeaderMatch, Error> {
    use pb_route::header_matcher::HeaderMatchSpecifier as S;
    let name = h.name.to_ascii_lowercase();
    if !name.starts_with(':') && http::HeaderName::from_bytes(name.as_bytes()).is_err() {
        return Err(at.error(format!("invalid header name {:?}", h.name)));
    }
    let (pattern, ignore_case) = match &h.header_match_specifier {
        Some(S::StringMatch(sm)) => (string_match(sm, at)?, sm.ignore_case),
        Some(S::ExactMatch(s)) => (StringMatch::Exact(s.clone()), false),
        Some(S::PrefixMatch(s)) => (StringMatch::Prefix(s.clone()), false),
        Some(S::SuffixMatch(s)) => (StringMatch::Suffix(s.clone()), false),
        Some(S::ContainsMatch(s)) => (StringMatch::Contains(s.clone()), false),
        Some(S::SafeRegexMatch(re)) => (StringMatch::Regex(regex(&re.regex, at)?), false),
        Some(S::PresentMatch(true)) | None => (StringMatch::Present, false),
        _ => return Err(at.error("unsupported header match")),
    };
    Ok(HeaderMatch {
        name,
        pattern,
        ignore_case,
        invert: h.invert_match,
    })
}

fn query_match(q: &pb_route::QueryParameterMatcher, at: &At<'_>) -> Result<QueryMatch, Error> {
    use pb_route::query_parameter_matcher::QueryParameterMatchSpecifier as Q;
    let (pattern, ignore_case) = match &q.query_parameter_match_specifier {
        Some(Q::StringMatch(sm)) => (string_match(sm, at)?, sm.ignore_case),
        Some(Q::PresentMatch(_)) | None => (StringMatch::Present, false),
    };
    Ok(QueryMatch {
        name: q.name.clone(),
        pattern,
        ignore_case,
    })
}

pub(super) fn string_match(m: &StringMatcher, at: &At<'_>) -> Result<StringMatch, Error> {
    use string_matcher::MatchPattern;
    Ok(match &m.match_pattern {
        Some(MatchPattern::Exact(s)) => StringMatch::Exact(s.clone()),
        Some(MatchPattern::Prefix(s)) => StringMatch::Prefix(s.clone()),
        Some(MatchPattern::Suffix(s)) => StringMatch::Suffix(s.clone()),
        Some(MatchPattern::Contains(s)) => StringMatch::Contains(s.clone()),
        Some(MatchPattern::SafeRegex(re)) => StringMatch::Regex(regex(&re.regex, at)?),
        _ => return Err(at.error("unsupported string matcher")),
    })
}

/// A regex, matched by callers against the whole value as Envoy's
/// safe_regex is. A syntax error is reported by its last line (the regex
/// crate draws the pattern above it), so the NACK stays on one line.
fn regex(pattern: &str, at: &At<'_>) -> Result<regex::Regex, Error> {
    regex::Regex::new(pattern).map_err(|e| {
        let detail = e.to_string();
        let detail = detail.lines().last().unwrap_or_default();
        let detail = detail.strip_prefix("error: ").unwrap_or(detail);
        at.error(format!("invalid regex {pattern:?}: {detail}"))
    })
}

fn route_action(r: &pb_route::Route, at: &At<'_>) -> Result<RouteAction, Error> {
    use pb_route::route::Action;
    match &r.action {
        Some(Action::Route(ra)) => Ok(RouteAction::Forward(forward(ra, &at.field("route"))?)),
        Some(Action::Redirect(rd)) => {
            Ok(RouteAction::Redirect(redirect(rd, &at.field("redirect"))?))
        }
        Some(Action::DirectResponse(dr)) => {
            let status = u16::try_from(dr.status)
                .ok()
                .filter(|s| (200..600).contains(s))
                .ok_or_else(|| {
                    at.field("direct_response.status")
                        .error(format!("{} is not an HTTP status", dr.status))
                })?;
            let body = dr
                .body
                .as_ref()
                .map(data_source::read)
                .transpose()
                .map_err(|e| at.field("direct_response.body").error(e))?
                .map(|b| String::from_utf8_lossy(&b).into_owned());
            Ok(RouteAction::Direct { status, body })
        }
        _ => Err(at
            .field("action")
            .error("route, redirect or direct_response is required")),
    }
}

// Envoy still accepts the deprecated `append` field; so do we.
#[allow(deprecated)]
fn headers_to_add(options: &[HeaderValueOption], at: &At<'_>) -> Result<Vec<HeaderToAdd>, Error> {
    options
        .iter()
        .filter_map(|o| o.header.as_ref().map(|h| (o, h)))
        .map(|(o, h)| {
            let name = http::HeaderName::from_bytes(h.key.as_bytes())
                .map_err(|_| at.error(format!("invalid header name {:?}", h.key)))?;
            let value = http::HeaderValue::from_str(&h.value)
                .map_err(|_| at.error(format!("invalid value for header {:?}", h.key)))?;
            let overwrite = o.append_action
                == header_value_option::HeaderAppendAction::OverwriteIfExistsOrAdd as i32
                || o.append.as_ref().is_some_and(|a| !a.value);
            Ok(HeaderToAdd {
                name,
                value,
                overwrite,
            })
        })
        .collect()
}

fn forward(ra: &pb_route::RouteAction, at: &At<'_>) -> Result<Forward, Error> {
    use pb_route::route_action::{ClusterSpecifier, HostRewriteSpecifier};
    let target = match &ra.cluster_specifier {
        Some(ClusterSpecifier::Cluster(name)) => ClusterTarget::Cluster(name.as_str().into()),
        Some(ClusterSpecifier::WeightedClusters(w)) => ClusterTarget::Weighted(
            w.clusters
                .iter()
                .map(|c| {
                    (
                        c.name.as_str().into(),
                        c.weight.as_ref().map_or(0, |w| w.value),
                    )
                })
                .collect(),
        ),
        _ => return Err(at.error("cluster or weighted_clusters is required")),
    };
    let timeout = match &ra.timeout {
        None => Some(DEFAULT_ROUTE_TIMEOUT),
        Some(d) => Some(duration(d)).filter(|d| !d.is_zero()),
    };
    let host_rewrite = match &ra.host_rewrite_specifier {
        Some(HostRewriteSpecifier::HostRewriteLiteral(host)) => Some(host.clone()),
        None => None,
        Some(_) => return Err(at.error("only host_rewrite_literal is supported")),
    };
    Ok(Forward {
        target,
        timeout,
        retry: ra.retry_policy.as_ref().map(retry_policy),
        prefix_rewrite: Some(ra.prefix_rewrite.clone()).filter(|p| !p.is_empty()),
        host_rewrite,
    })
}

/// Envoy's retry conditions: `5xx` includes connect failures and resets,
/// `gateway-error` includes connect failures.
fn retry_policy(rp: &pb_route::RetryPolicy) -> RetryPolicy {
    let on = |name: &str| rp.retry_on.split(',').any(|c| c.trim() == name);
    RetryPolicy {
        num_retries: rp.num_retries.as_ref().map_or(1, |n| n.value),
        per_try_timeout: enabled_duration(rp.per_try_timeout.as_ref()),
        on_connect_failure: on("connect-failure") || on("5xx") || on("gateway-error"),
        on_5xx: on("5xx"),
        on_gateway_error: on("gateway-error"),
        on_reset: on("reset") || on("5xx"),
        retriable_status_codes: if on("retriable-status-codes") {
            rp.retriable_status_codes
                .iter()
                .filter_map(|c| u16::try_from(*c).ok())
                .collect()
        } else {
            Vec::new()
        },
    }
}

fn redirect(rd: &pb_route::RedirectAction, at: &At<'_>) -> Result<Redirect, Error> {
    use pb_route::redirect_action::{
        PathRewriteSpecifier, RedirectResponseCode, SchemeRewriteSpecifier,
    };
    let status = match RedirectResponseCode::try_from(rd.response_code) {
        Ok(RedirectResponseCode::MovedPermanently) => 301,
        Ok(RedirectResponseCode::Found) => 302,
        Ok(RedirectResponseCode::SeeOther) => 303,
        Ok(RedirectResponseCode::TemporaryRedirect) => 307,
        Ok(RedirectResponseCode::PermanentRedirect) => 308,
        Err(_) => {
            return Err(at.field("response_code").error(format!(
                "unknown redirect response code {}",
                rd.response_code
            )));
        }
    };
    let path = match &rd.path_rewrite_specifier {
        Some(PathRewriteSpecifier::PathRedirect(p)) => Some(p.clone()),
        None => None,
        Some(_) => {
            return Err(at
                .field("path_rewrite_specifier")
                .error("only path_redirect is supported"));
        }
    };
    Ok(Redirect {
        status,
        scheme: match &rd.scheme_rewrite_specifier {
            Some(SchemeRewriteSpecifier::HttpsRedirect(true)) => Some("https".into()),
            Some(SchemeRewriteSpecifier::SchemeRedirect(s)) => Some(s.clone()),
            _ => None,
        },
        host: Some(rd.host_redirect.clone()).filter(|h| !h.is_empty()),
        port: u16::try_from(rd.port_redirect).ok().filter(|p| *p != 0),
        path,
    })
}
