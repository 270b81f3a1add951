//! Route configurations: virtual hosts, matches, actions and headers.

use std::time::Duration;

use proto::pb::envoy::config::core::v3::{HeaderValue, HeaderValueOption, header_value_option};
use proto::pb::envoy::config::route::v3::{
    Decorator, DirectResponseAction, RedirectAction, Route, RouteAction, RouteConfiguration,
    RouteMatch, VirtualHost, redirect_action, route, route_action, route_match,
};
use proto::pb::envoy::r#type::matcher::v3::{RegexMatcher, StringMatcher, string_matcher};
use proto::wkt::{BoolValue, UInt32Value};

use super::{assert_rejected, inline, starting};
use crate::model::Error;
use crate::model::route::{
    AppendAction, ClusterTarget, Forward, PathMatch, Redirect, RouteAction as Action,
    WeightedCluster,
};
use crate::model::route_config_from_proto;

pub(super) fn forward_to(cluster: &str) -> route::Action {
    route::Action::Route(RouteAction {
        cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(cluster.to_string())),
        ..Default::default()
    })
}

pub(super) fn prefix(p: &str) -> RouteMatch {
    RouteMatch {
        path_specifier: Some(route_match::PathSpecifier::Prefix(p.to_string())),
        ..Default::default()
    }
}

/// Route configuration `80` with one virtual host and one route to httpbin.
pub(super) fn base() -> RouteConfiguration {
    RouteConfiguration {
        name: "80".into(),
        virtual_hosts: vec![VirtualHost {
            name: "httpbin.org:80".into(),
            domains: vec!["HTTPBIN.org".into(), "httpbin.org:80".into()],
            routes: vec![Route {
                name: "default".into(),
                r#match: Some(prefix("/")),
                action: Some(forward_to("outbound|80||httpbin.org")),
                ..Default::default()
            }],
            include_request_attempt_count: true,
            ..Default::default()
        }],
        ..Default::default()
    }
}

pub(super) fn first_route(rc: &RouteConfiguration) -> crate::model::route::Route {
    let converted = route_config_from_proto(rc).unwrap();
    converted.virtual_hosts[0].routes[0].clone()
}

pub(super) fn forward(rc: &RouteConfiguration) -> Forward {
    match first_route(rc).action {
        Action::Forward(forward) => forward,
        other => panic!("expected a forward, got {other:?}"),
    }
}

pub(super) fn route_action(rc: &mut RouteConfiguration) -> &mut RouteAction {
    match &mut rc.virtual_hosts[0].routes[0].action {
        Some(route::Action::Route(action)) => action,
        other => panic!("expected a route action, got {other:?}"),
    }
}

pub(super) fn exact(s: &str) -> StringMatcher {
    StringMatcher {
        match_pattern: Some(string_matcher::MatchPattern::Exact(s.to_string())),
        ..Default::default()
    }
}

pub(super) fn regex(re: &str) -> RegexMatcher {
    RegexMatcher {
        regex: re.to_string(),
        ..Default::default()
    }
}

#[test]
fn a_virtual_host_keeps_lowercased_domains_and_its_routes() {
    let converted = route_config_from_proto(&base()).unwrap();
    assert_eq!(&*converted.name, "80");
    let vh = &converted.virtual_hosts[0];
    assert_eq!(vh.domains, ["httpbin.org", "httpbin.org:80"]);
    assert!(vh.include_attempt_count);
    let route = &vh.routes[0];
    assert_eq!(route.matcher.path, PathMatch::Prefix("/".into()));
    assert!(
        route.matcher.case_sensitive,
        "paths match case-sensitively by default"
    );
    assert_eq!(route.decorator, None);
}

#[test]
fn a_route_without_timeout_gets_envoys_15s_and_0s_disables_it() {
    let mut rc = base();
    assert_eq!(forward(&rc).timeout, Some(Duration::from_secs(15)));
    route_action(&mut rc).timeout = Some(proto::wkt::Duration {
        seconds: 0,
        nanos: 0,
    });
    assert_eq!(forward(&rc).timeout, None);
    route_action(&mut rc).timeout = Some(proto::wkt::Duration {
        seconds: 3,
        nanos: 0,
    });
    assert_eq!(forward(&rc).timeout, Some(Duration::from_secs(3)));
}

#[test]
fn the_cluster_not_found_code_is_503_unless_told() {
    use proto::pb::envoy::config::route::v3::route_action::ClusterNotFoundResponseCode as Code;
    let mut rc = base();
    assert_eq!(forward(&rc).cluster_not_found, 503);
    route_action(&mut rc).cluster_not_found_response_code = Code::InternalServerError as i32;
    assert_eq!(forward(&rc).cluster_not_found, 500);
    route_action(&mut rc).cluster_not_found_response_code = Code::NotFound as i32;
    assert_eq!(forward(&rc).cluster_not_found, 404);
    route_action(&mut rc).cluster_not_found_response_code = 9;
    let error = route_config_from_proto(&rc).unwrap_err().to_string();
    assert!(error.contains("cluster_not_found_response_code"), "{error}");
}

#[test]
fn weighted_clusters_and_rewrites_are_kept() {
    let mut rc = base();
    let action = route_action(&mut rc);
    action.cluster_specifier = Some(route_action::ClusterSpecifier::WeightedClusters(
        proto::pb::envoy::config::route::v3::WeightedCluster {
            clusters: vec![
                proto::pb::envoy::config::route::v3::weighted_cluster::ClusterWeight {
                    name: "v1".into(),
                    weight: Some(UInt32Value { value: 90 }),
                    ..Default::default()
                },
                proto::pb::envoy::config::route::v3::weighted_cluster::ClusterWeight {
                    name: "v2".into(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        },
    ));
    action.prefix_rewrite = "/v1/".into();
    action.host_rewrite_specifier = Some(route_action::HostRewriteSpecifier::HostRewriteLiteral(
        "internal.example".into(),
    ));
    let forward = forward(&rc);
    assert_eq!(
        forward.target,
        ClusterTarget::Weighted(vec![
            WeightedCluster::new("v1", 90),
            WeightedCluster::new("v2", 0)
        ])
    );
    assert_eq!(forward.prefix_rewrite.as_deref(), Some("/v1/"));
    assert_eq!(forward.host_rewrite.as_deref(), Some("internal.example"));
}

#[test]
fn redirect_direct_response_and_headers_are_kept() {
    let mut rc = base();
    let routes = &mut rc.virtual_hosts[0].routes;
    routes[0].action = Some(route::Action::Redirect(RedirectAction {
        host_redirect: "example.com".into(),
        port_redirect: 8443,
        response_code: redirect_action::RedirectResponseCode::PermanentRedirect as i32,
        scheme_rewrite_specifier: Some(redirect_action::SchemeRewriteSpecifier::HttpsRedirect(
            true,
        )),
        path_rewrite_specifier: Some(redirect_action::PathRewriteSpecifier::PathRedirect(
            "/moved".into(),
        )),
        ..Default::default()
    }));
    routes[0].decorator = Some(Decorator {
        operation: "httpbin.org:80/*".into(),
        propagate: None,
    });
    routes[0].request_headers_to_add = vec![HeaderValueOption {
        header: Some(HeaderValue {
            key: "x-forwarded-client".into(),
            value: "sidecar".into(),
            ..Default::default()
        }),
        append_action: header_value_option::HeaderAppendAction::OverwriteIfExistsOrAdd as i32,
        ..Default::default()
    }];
    routes.push(Route {
        r#match: Some(prefix("/blocked")),
        action: Some(route::Action::DirectResponse(DirectResponseAction {
            status: 403,
            body: Some(inline("denied")),
            ..Default::default()
        })),
        ..Default::default()
    });
    let converted = route_config_from_proto(&rc).unwrap();
    let routes = &converted.virtual_hosts[0].routes;
    assert_eq!(
        routes[0].action,
        Action::Redirect(Redirect {
            status: 308,
            scheme: Some("https".into()),
            host: Some("example.com".into()),
            port: Some(8443),
            path: Some("/moved".into()),
        })
    );
    assert_eq!(routes[0].decorator.as_deref(), Some("httpbin.org:80/*"));
    let added = &routes[0].request_headers_to_add[0];
    assert_eq!(added.name.as_str(), "x-forwarded-client");
    assert_eq!(added.action, AppendAction::OverwriteIfExistsOrAdd);
    assert_eq!(
        routes[1].action,
        Action::Direct {
            status: 403,
            body: Some("denied".into())
        }
    );
}

#[test]
fn a_redirect_without_a_code_is_301() {
    let mut rc = base();
    rc.virtual_hosts[0].routes[0].action = Some(route::Action::Redirect(RedirectAction::default()));
    let Action::Redirect(redirect) = first_route(&rc).action else {
        panic!("expected a redirect");
    };
    assert_eq!(redirect.status, 301);
}

fn convert(rc: &RouteConfiguration) -> Result<crate::model::RouteConfig, Error> {
    route_config_from_proto(rc)
}

/// The rejection of `base()` after `edit` to its first route, at `field`
/// of that route, for `reason`.
#[track_caller]
pub(super) fn assert_route_rejected(edit: impl FnOnce(&mut Route), field: &str, reason: &str) {
    let mut rc = base();
    edit(&mut rc.virtual_hosts[0].routes[0]);
    assert_rejected(
        convert(&rc),
        "route configuration",
        "80",
        &format!("virtual_hosts[0].routes[0].{field}"),
        reason,
    );
}

#[test]
fn a_route_needs_an_action_with_a_cluster() {
    assert_route_rejected(
        |r| r.action = None,
        "action",
        "route, redirect or direct_response is required",
    );
    assert_route_rejected(
        |r| r.action = Some(route::Action::Route(RouteAction::default())),
        "route",
        "cluster or weighted_clusters is required",
    );
}

#[test]
fn host_rewrites_other_than_a_literal_are_rejected() {
    assert_route_rejected(
        |r| {
            r.action = Some(route::Action::Route(RouteAction {
                cluster_specifier: Some(route_action::ClusterSpecifier::Cluster("c".into())),
                host_rewrite_specifier: Some(route_action::HostRewriteSpecifier::AutoHostRewrite(
                    BoolValue { value: true },
                )),
                ..Default::default()
            }))
        },
        "route",
        "only host_rewrite_literal is supported",
    );
}

#[test]
fn a_direct_response_needs_an_http_status_and_a_readable_body() {
    let direct = |status, body| {
        move |r: &mut Route| {
            r.action = Some(route::Action::DirectResponse(DirectResponseAction {
                status,
                body,
                ..Default::default()
            }))
        }
    };
    assert_route_rejected(
        direct(99, None),
        "direct_response.status",
        "99 is not an HTTP status",
    );
    assert_route_rejected(
        direct(600, None),
        "direct_response.status",
        "600 is not an HTTP status",
    );
    assert_route_rejected(
        direct(200, Some(Default::default())),
        "direct_response.body",
        "empty data source",
    );
}

#[test]
fn a_redirect_the_agent_cannot_honour_is_rejected() {
    assert_route_rejected(
        |r| {
            r.action = Some(route::Action::Redirect(RedirectAction {
                response_code: 42,
                ..Default::default()
            }))
        },
        "redirect.response_code",
        "unknown redirect response code 42",
    );
    assert_route_rejected(
        |r| {
            r.action = Some(route::Action::Redirect(RedirectAction {
                path_rewrite_specifier: Some(redirect_action::PathRewriteSpecifier::PrefixRewrite(
                    "/new".into(),
                )),
                ..Default::default()
            }))
        },
        "redirect.path_rewrite_specifier",
        "only path_redirect is supported",
    );
}

#[test]
fn a_direct_response_body_from_a_missing_file_is_rejected() {
    let mut rc = base();
    rc.virtual_hosts[0].routes[0].action =
        Some(route::Action::DirectResponse(DirectResponseAction {
            status: 200,
            body: Some(proto::pb::envoy::config::core::v3::DataSource {
                specifier: Some(
                    proto::pb::envoy::config::core::v3::data_source::Specifier::Filename(
                        "/nonexistent/body".into(),
                    ),
                ),
                ..Default::default()
            }),
            ..Default::default()
        }));
    assert_rejected(
        convert(&rc),
        "route configuration",
        "80",
        "virtual_hosts[0].routes[0].direct_response.body",
        starting("cannot read /nonexistent/body: "),
    );
}

#[test]
#[allow(deprecated)]
fn a_request_buffer_limit_on_a_route_or_virtual_host_is_rejected() {
    assert_route_rejected(
        |r| r.request_body_buffer_limit = Some(proto::wkt::UInt64Value { value: 65536 }),
        "request_body_buffer_limit",
        "not supported: a request body is kept for retries up to the listener's 1 MiB buffer limit",
    );
    assert_route_rejected(
        |r| r.per_request_buffer_limit_bytes = Some(UInt32Value { value: 65536 }),
        "per_request_buffer_limit_bytes",
        "not supported: a request body is kept for retries up to the listener's 1 MiB buffer limit",
    );
    let mut rc = base();
    rc.virtual_hosts[0].per_request_buffer_limit_bytes = Some(UInt32Value { value: 65536 });
    assert_rejected(
        convert(&rc),
        "route configuration",
        "80",
        "virtual_hosts[0].per_request_buffer_limit_bytes",
        "not supported: a request body is kept for retries up to the listener's 1 MiB buffer limit",
    );
}
