//! Route configurations (RDS, or inline in a listener) → model: virtual
//! hosts, route matches and actions (forward, redirect, direct response).

use std::sync::Arc;
use std::time::Duration;

use proto::pb::envoy::config::route::v3 as pb_route;
use proto::wkt::{UInt32Value, UInt64Value};

mod headers;
mod matching;
mod retry;

pub(super) use matching::string_match;

use headers::{EditFields, header_edits, no_edits, weighted_clusters};

use super::egress_policy::egress_policy;
use super::mirror;
use super::{At, data_source, duration, http_filters};
use crate::model::Error;
use crate::model::http_filters::{FilterConfig, FilterConfigs};
use crate::model::route::{
    ClusterTarget, Forward, Redirect, Route, RouteAction, RouteConfig, VirtualHost,
};

/// Envoy's default route timeout when a route sets none.
const DEFAULT_ROUTE_TIMEOUT: Duration = Duration::from_secs(15);

/// A route configuration from RDS (or inline in a listener).
pub fn route_config(rc: &pb_route::RouteConfiguration) -> Result<RouteConfig, Error> {
    let at = At::resource("route configuration", &rc.name);
    no_edits(
        EditFields {
            request_add: &rc.request_headers_to_add,
            request_remove: &rc.request_headers_to_remove,
            response_add: &rc.response_headers_to_add,
            response_remove: &rc.response_headers_to_remove,
        },
        &at,
    )?;
    let filter_configs = http_filters::filter_configs(&rc.typed_per_filter_config, &at)?;
    let virtual_hosts = rc
        .virtual_hosts
        .iter()
        .enumerate()
        .map(|(i, vh)| {
            virtual_host(
                vh,
                &filter_configs,
                &at.field(format!("virtual_hosts[{i}]")),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RouteConfig {
        name: rc.name.as_str().into(),
        virtual_hosts,
    })
}

/// A virtual host; `outer_filter_configs` are its route configuration's.
fn virtual_host(
    vh: &pb_route::VirtualHost,
    outer_filter_configs: &[(Arc<str>, FilterConfig)],
    at: &At<'_>,
) -> Result<VirtualHost, Error> {
    let filter_configs = http_filters::filter_configs(&vh.typed_per_filter_config, at)?;
    #[allow(deprecated)]
    let deprecated_limit = vh.per_request_buffer_limit_bytes.as_ref();
    no_request_buffer_limit(deprecated_limit, vh.request_body_buffer_limit.as_ref(), at)?;
    no_edits(
        EditFields {
            request_add: &vh.request_headers_to_add,
            request_remove: &vh.request_headers_to_remove,
            response_add: &vh.response_headers_to_add,
            response_remove: &vh.response_headers_to_remove,
        },
        at,
    )?;
    let routes = vh
        .routes
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let at = at.field(format!("routes[{i}]"));
            let own = http_filters::filter_configs(&r.typed_per_filter_config, &at)?;
            let filter_configs =
                http_filters::resolve([&own, &filter_configs, outer_filter_configs]);
            route(r, filter_configs, &at)
        })
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

/// Envoy's request body buffer limits of a virtual host or route
/// (`request_body_buffer_limit`, and the deprecated
/// `per_request_buffer_limit_bytes`): the agent's router keeps a body for
/// retries up to its listener's limit only.
fn no_request_buffer_limit(
    deprecated: Option<&UInt32Value>,
    limit: Option<&UInt64Value>,
    at: &At<'_>,
) -> Result<(), Error> {
    let field = match (deprecated, limit) {
        (Some(_), _) => "per_request_buffer_limit_bytes",
        (None, Some(_)) => "request_body_buffer_limit",
        (None, None) => return Ok(()),
    };
    Err(at.field(field).error(
        "not supported: a request body is kept for retries up to the listener's 1 MiB buffer limit",
    ))
}

fn route(r: &pb_route::Route, filter_configs: FilterConfigs, at: &At<'_>) -> Result<Route, Error> {
    #[allow(deprecated)]
    let deprecated_limit = r.per_request_buffer_limit_bytes.as_ref();
    no_request_buffer_limit(deprecated_limit, r.request_body_buffer_limit.as_ref(), at)?;
    let edits = header_edits(
        EditFields {
            request_add: &r.request_headers_to_add,
            request_remove: &r.request_headers_to_remove,
            response_add: &r.response_headers_to_add,
            response_remove: &r.response_headers_to_remove,
        },
        at,
    )?;
    Ok(Route {
        name: r.name.as_str().into(),
        matcher: matching::route_match(&r.r#match.clone().unwrap_or_default(), &at.field("match"))?,
        action: route_action(r, at)?,
        decorator: r
            .decorator
            .as_ref()
            .filter(|d| d.propagate.as_ref().is_none_or(|p| p.value))
            .map(|d| d.operation.as_str().into()),
        request_headers_to_add: edits.request_headers_to_add,
        request_headers_to_remove: edits.request_headers_to_remove,
        response_headers_to_add: edits.response_headers_to_add,
        response_headers_to_remove: edits.response_headers_to_remove,
        egress_policy: egress_policy(r.metadata.as_ref(), &at.field("metadata"))?,
        filter_configs,
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

fn forward(ra: &pb_route::RouteAction, at: &At<'_>) -> Result<Forward, Error> {
    use pb_route::route_action::{ClusterSpecifier, HostRewriteSpecifier};
    let target = match &ra.cluster_specifier {
        Some(ClusterSpecifier::Cluster(name)) => ClusterTarget::Cluster(name.as_str().into()),
        Some(ClusterSpecifier::WeightedClusters(w)) => {
            ClusterTarget::Weighted(weighted_clusters(w, &at.field("weighted_clusters"))?)
        }
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
        retry: ra
            .retry_policy
            .as_ref()
            .map(|rp| retry::retry_policy(rp, &at.field("retry_policy")))
            .transpose()?,
        prefix_rewrite: Some(ra.prefix_rewrite.clone()).filter(|p| !p.is_empty()),
        host_rewrite,
        mirrors: mirror::mirror_policies(&ra.request_mirror_policies, at)?,
        hash_policy: super::hash_policy::hash_policies(&ra.hash_policy, at)?,
        upgrades: super::upgrade::route_upgrades(&ra.upgrade_configs, at)?,
        cluster_not_found: cluster_not_found(ra.cluster_not_found_response_code, at)?,
    })
}

/// Envoy's `cluster_not_found_response_code` as the status it answers.
fn cluster_not_found(code: i32, at: &At<'_>) -> Result<u16, Error> {
    use pb_route::route_action::ClusterNotFoundResponseCode as Code;
    match Code::try_from(code) {
        Ok(Code::ServiceUnavailable) => Ok(503),
        Ok(Code::NotFound) => Ok(404),
        Ok(Code::InternalServerError) => Ok(500),
        Err(_) => Err(at
            .field("cluster_not_found_response_code")
            .error(format!("unknown code {code}"))),
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
