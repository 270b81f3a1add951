//! The routing plan against hand-written routes, stating what Envoy does.

use std::collections::HashMap;

use http::Method;

use crate::model::cluster::{Cluster, LbPolicy, LoadAssignment};
use crate::model::route::{AppendAction, ClusterTarget, HeaderToAdd, WeightedCluster};
use crate::proxy::test_fixtures::{self, route_config};

use super::*;

const CLUSTER: &str = "outbound|80||httpbin.test";
const PASSTHROUGH: &str = "PassthroughCluster";

fn cluster(name: &str, discovery: Discovery) -> (Arc<str>, Arc<Cluster>) {
    let cluster = Cluster {
        name: name.into(),
        discovery,
        lb: LbPolicy::RoundRobin,
        connect_timeout: Duration::from_secs(1),
        tls: None,
        http2: false,
        follow_downstream_protocol: false,
        idle_timeout: None,
        max_requests_per_connection: None,
        max_connection_duration: None,
        tcp_keepalive: None,
        circuit_breakers: Default::default(),
        outlier_detection: None,
        healthy_panic_threshold: Default::default(),
        secret_names: Vec::new(),
    };
    (name.into(), Arc::new(cluster))
}

fn config() -> RunningConfig {
    RunningConfig {
        clusters: HashMap::from([
            cluster(CLUSTER, Discovery::Static(LoadAssignment::default())),
            cluster(PASSTHROUGH, Discovery::OriginalDst),
        ]),
        ..RunningConfig::default()
    }
}

fn forward_to(cluster: &str) -> Forward {
    Forward {
        target: ClusterTarget::Cluster(cluster.into()),
        timeout: Some(Duration::from_secs(15)),
        retry: None,
        prefix_rewrite: None,
        host_rewrite: None,
        mirrors: Vec::new(),
        hash_policy: Vec::new(),
        upgrades: Vec::new(),
        cluster_not_found: 503,
    }
}

fn route(path: PathMatch, action: RouteAction) -> Route {
    Route {
        decorator: Some("httpbin.test:80/*".into()),
        ..test_fixtures::route("httpbin.test:80", path, action)
    }
}

fn routes(route: Route) -> RouteConfig {
    let domains = ["httpbin.test", "httpbin.test:80"];
    let mut config = route_config("httpbin.test:80", &domains, vec![route]);
    config.virtual_hosts[0].include_attempt_count = true;
    config
}

fn prefix(prefix: &str) -> PathMatch {
    PathMatch::Prefix(prefix.into())
}

fn request(authority: &str, path: &str, headers: &[(&'static str, &'static str)]) -> Request {
    let mut builder = http::Request::builder()
        .method(Method::GET)
        .uri(path)
        .version(http::Version::HTTP_2)
        .header(header::HOST, authority);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let (head, ()) = builder.body(()).unwrap().into_parts();
    Request {
        authority: Some(HeaderValue::from_str(authority).unwrap()),
        head,
        original_dst: None,
        tls: false,
        use_remote_address: false,
        suppress_envoy_headers: false,
    }
}

fn fixed_id() -> HeaderValue {
    HeaderValue::from_static("generated-id")
}

fn draws() -> Draws {
    Draws {
        cluster_roll: 0,
        request_id: fixed_id,
    }
}

fn plan_for(routes: &RouteConfig, request: Request) -> Plan<'_> {
    plan(routes, &config(), request, draws())
}

fn forwarded(plan: Plan<'_>) -> (Forwarding<'_>, Parts) {
    match plan.action {
        Action::Forward(forwarding) => (forwarding, plan.head),
        Action::Reply(reply) => panic!("expected forwarding, got {reply:?}"),
        Action::Redirect { status, .. } => panic!("expected forwarding, got a {status} redirect"),
    }
}

fn replied<'a>(plan: &'a Plan<'_>) -> &'a LocalReply {
    match &plan.action {
        Action::Reply(reply) => reply,
        _ => panic!("expected a local reply"),
    }
}

#[test]
fn forwarded_requests_keep_their_authority_as_host_and_get_envoy_headers() {
    let routes = routes(route(
        prefix("/"),
        RouteAction::Forward(forward_to(CLUSTER)),
    ));
    let request = request(
        "httpbin.test",
        "/get?a=1",
        &[("connection", "keep-alive"), ("x-custom", "kept")],
    );
    let plan = plan_for(&routes, request);
    assert_eq!(plan.route.map(|r| &*r.name), Some("httpbin.test:80"));
    assert_eq!(plan.cluster.as_deref(), Some(CLUSTER));
    let (forwarding, head) = forwarded(plan);
    assert_eq!(&*forwarding.cluster, CLUSTER);
    assert_eq!(head.uri, "/get?a=1");
    assert_eq!(head.version, http::Version::HTTP_11);
    assert_eq!(head.headers[header::HOST], "httpbin.test");
    assert_eq!(head.headers["x-forwarded-proto"], "http");
    assert_eq!(head.headers["x-request-id"], "generated-id");
    assert_eq!(head.headers["x-custom"], "kept");
    assert!(!head.headers.contains_key(header::CONNECTION));
    assert_eq!(forwarding.destination, Destination::OriginalDst(None));
    assert!(forwarding.include_attempt_count);
}

#[test]
fn suppress_envoy_headers_drops_the_routers_expected_timeout() {
    let routes = routes(route(
        prefix("/"),
        RouteAction::Forward(forward_to(CLUSTER)),
    ));
    let (_, head) = forwarded(plan_for(&routes, request("httpbin.test", "/", &[])));
    assert_eq!(head.headers["x-envoy-expected-rq-timeout-ms"], "15000");
    let mut suppressed = request("httpbin.test", "/", &[]);
    suppressed.suppress_envoy_headers = true;
    let (_, head) = forwarded(plan_for(&routes, suppressed));
    assert!(!head.headers.contains_key("x-envoy-expected-rq-timeout-ms"));
    assert_eq!(head.headers["x-request-id"], "generated-id");
}

#[test]
fn a_request_id_from_downstream_is_kept() {
    let routes = routes(route(
        prefix("/"),
        RouteAction::Forward(forward_to(CLUSTER)),
    ));
    let request = request("httpbin.test", "/", &[("x-request-id", "from-client")]);
    let (_, head) = forwarded(plan_for(&routes, request));
    assert_eq!(head.headers["x-request-id"], "from-client");
}

#[test]
fn host_rewrite_replaces_the_host_header() {
    let mut forward = forward_to(CLUSTER);
    forward.host_rewrite = Some("internal.test".into());
    let routes = routes(route(prefix("/"), RouteAction::Forward(forward)));
    let (_, head) = forwarded(plan_for(&routes, request("httpbin.test", "/", &[])));
    assert_eq!(head.headers[header::HOST], "internal.test");
}

#[test]
fn prefix_rewrite_replaces_the_matched_prefix_and_keeps_the_rest() {
    let mut forward = forward_to(CLUSTER);
    forward.prefix_rewrite = Some("/v2".into());
    let routes = routes(route(prefix("/api"), RouteAction::Forward(forward)));
    let (_, head) = forwarded(plan_for(
        &routes,
        request("httpbin.test", "/api/items?page=2", &[]),
    ));
    assert_eq!(head.uri, "/v2/items?page=2");
}

#[test]
fn prefix_rewrite_on_an_exact_match_replaces_the_whole_path() {
    let mut forward = forward_to(CLUSTER);
    forward.prefix_rewrite = Some("/status".into());
    let routes = routes(route(
        PathMatch::Exact("/health".into()),
        RouteAction::Forward(forward),
    ));
    let (_, head) = forwarded(plan_for(&routes, request("httpbin.test", "/health", &[])));
    assert_eq!(head.uri, "/status");
}

#[test]
fn the_route_decorator_replaces_the_downstream_one() {
    let routes = routes(route(
        prefix("/"),
        RouteAction::Forward(forward_to(CLUSTER)),
    ));
    let request = request(
        "httpbin.test",
        "/",
        &[("x-envoy-decorator-operation", "sidecar.test:80/*")],
    );
    let (_, head) = forwarded(plan_for(&routes, request));
    let values: Vec<_> = head
        .headers
        .get_all("x-envoy-decorator-operation")
        .iter()
        .collect();
    assert_eq!(values, ["httpbin.test:80/*"]);
}

#[test]
fn route_request_header_edits_apply_after_the_envoy_headers() {
    let mut route = route(prefix("/"), RouteAction::Forward(forward_to(CLUSTER)));
    route.request_headers_to_remove = vec!["x-secret".into()];
    route.request_headers_to_add = vec![HeaderToAdd {
        name: HeaderName::from_static("x-forwarded-proto"),
        value: HeaderValue::from_static("https"),
        action: AppendAction::OverwriteIfExistsOrAdd,
    }];
    let routes = routes(route);
    let request = request("httpbin.test", "/", &[("x-secret", "token")]);
    let (_, head) = forwarded(plan_for(&routes, request));
    assert!(!head.headers.contains_key("x-secret"));
    assert_eq!(head.headers["x-forwarded-proto"], "https");
}

#[test]
fn an_unknown_authority_has_no_route() {
    let routes = routes(route(
        prefix("/"),
        RouteAction::Forward(forward_to(CLUSTER)),
    ));
    let plan = plan_for(&routes, request("other.test", "/", &[]));
    assert!(plan.route.is_none());
    let reply = replied(&plan);
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!((reply.flags, reply.details), ("NR", "route_not_found"));
}

#[test]
fn a_cluster_missing_from_the_config_is_not_found() {
    let routes = routes(route(
        prefix("/"),
        RouteAction::Forward(forward_to("outbound|80||gone.test")),
    ));
    let plan = plan_for(&routes, request("httpbin.test", "/", &[]));
    assert_eq!(plan.cluster.as_deref(), Some("outbound|80||gone.test"));
    let reply = replied(&plan);
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        reply.body, "",
        "Envoy's router names no cluster in the body"
    );
    assert_eq!((reply.flags, reply.details), ("NC", "cluster_not_found"));
    assert!(
        plan.head.headers.contains_key("x-request-id"),
        "the access log of a routed request carries its request id"
    );
}

#[test]
fn a_missing_cluster_answers_the_routes_cluster_not_found_code() {
    let mut forward = forward_to("outbound|80||gone.test");
    forward.cluster_not_found = 500;
    let routes = routes(route(prefix("/"), RouteAction::Forward(forward)));
    let plan = plan_for(&routes, request("httpbin.test", "/", &[]));
    let reply = replied(&plan);
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(reply.body, "");
    assert_eq!((reply.flags, reply.details), ("NC", "cluster_not_found"));
}

#[test]
fn weighted_clusters_without_weight_have_no_route() {
    let mut forward = forward_to(CLUSTER);
    forward.target = ClusterTarget::Weighted(vec![WeightedCluster::new(CLUSTER, 0)]);
    let routes = routes(route(prefix("/"), RouteAction::Forward(forward)));
    let plan = plan_for(&routes, request("httpbin.test", "/", &[]));
    assert!(plan.route.is_some());
    assert_eq!(replied(&plan).flags, "NR");
}

#[test]
fn timeouts_and_retries_come_from_the_route() {
    let retry = RetryPolicy {
        num_retries: 2,
        per_try_timeout: Some(Duration::from_secs(2)),
        on: crate::model::route::RetryOn {
            connect_failure: true,
            ..Default::default()
        },
        retriable_status_codes: Vec::new(),
        previous_hosts: false,
        host_selection_max_attempts: 1,
        backoff: crate::model::route::Backoff::default(),
    };
    let mut forward = forward_to(CLUSTER);
    forward.retry = Some(retry.clone());
    let routes = routes(route(prefix("/"), RouteAction::Forward(forward)));
    let (forwarding, _) = forwarded(plan_for(&routes, request("httpbin.test", "/", &[])));
    assert_eq!(forwarding.timeout, Some(Duration::from_secs(15)));
    assert_eq!(forwarding.retry, Some(&retry));

    let mut forward = forward_to(CLUSTER);
    forward.timeout = None;
    let routes = self::routes(route(prefix("/"), RouteAction::Forward(forward)));
    let (forwarding, _) = forwarded(plan_for(&routes, request("httpbin.test", "/", &[])));
    assert_eq!(forwarding.timeout, None);
    assert_eq!(forwarding.retry, None);
}

#[test]
fn passthrough_without_an_original_destination_goes_to_the_authority() {
    let routes = routes(route(
        prefix("/"),
        RouteAction::Forward(forward_to(PASSTHROUGH)),
    ));
    let (forwarding, _) = forwarded(plan_for(&routes, request("httpbin.test", "/", &[])));
    assert_eq!(forwarding.destination, Destination::Authority);

    let captured: SocketAddr = "10.0.0.7:80".parse().unwrap();
    let mut request = request("httpbin.test", "/", &[]);
    request.original_dst = Some(captured);
    let (forwarding, _) = forwarded(plan_for(&routes, request));
    assert_eq!(
        forwarding.destination,
        Destination::OriginalDst(Some(captured))
    );
}

#[test]
fn a_direct_response_answers_with_the_route_status_and_body() {
    let routes = routes(route(
        prefix("/"),
        RouteAction::Direct {
            status: 418,
            body: Some("teapot".into()),
        },
    ));
    let plan = plan_for(&routes, request("httpbin.test", "/", &[]));
    assert!(plan.cluster.is_none());
    let reply = replied(&plan);
    assert_eq!(reply.status, StatusCode::IM_A_TEAPOT);
    assert_eq!(reply.body, "teapot");
    assert_eq!((reply.flags, reply.details), ("-", "direct_response"));
}

/// Istio's `block_all` fall-through route, with `mark`.
fn block_all(mark: Option<EgressPolicy>) -> RouteConfig {
    let mut block_all = route(
        prefix("/"),
        RouteAction::Direct {
            status: 502,
            body: None,
        },
    );
    block_all.name = "block_all".into();
    block_all.egress_policy = mark;
    let mut routes = routes(block_all);
    routes.virtual_hosts[0].domains = vec!["*".into()];
    routes
}

#[test]
fn registry_only_answers_502_naming_the_host_no_service_entry_allows() {
    let routes = block_all(Some(EgressPolicy::Blocked));
    let plan = plan_for(&routes, request("evil.example:8080", "/x", &[]));
    assert_eq!(plan.route.map(|r| &*r.name), Some("block_all"));
    assert!(plan.cluster.is_none());
    let reply = replied(&plan);
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
    assert_eq!(
        reply.body,
        "no ServiceEntry allows evil.example:8080 (REGISTRY_ONLY)\n"
    );
    assert_eq!((reply.flags, reply.details), ("-", "direct_response"));
}

#[test]
fn an_unmarked_502_direct_response_has_no_body() {
    let routes = block_all(None);
    let plan = plan_for(&routes, request("evil.example", "/", &[]));
    let reply = replied(&plan);
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
    assert_eq!(reply.body, "");
}

#[test]
fn a_redirect_defaults_to_the_request_host_and_path() {
    let redirect = |scheme: Option<&str>, port: Option<u16>, path: Option<&str>| {
        RouteAction::Redirect(Redirect {
            status: 308,
            scheme: scheme.map(str::to_string),
            host: None,
            port,
            path: path.map(str::to_string),
        })
    };
    let location = |action: RouteAction| {
        let routes = routes(route(prefix("/"), action));
        match plan_for(&routes, request("httpbin.test:80", "/old?x=1", &[])).action {
            Action::Redirect { status, location } => {
                assert_eq!(status, StatusCode::PERMANENT_REDIRECT);
                location.unwrap()
            }
            _ => panic!("expected a redirect"),
        }
    };
    assert_eq!(
        location(redirect(None, None, None)),
        "http://httpbin.test/old?x=1"
    );
    assert_eq!(
        location(redirect(Some("https"), Some(8443), Some("/new"))),
        "https://httpbin.test:8443/new"
    );
}

/// A virtual host with `require_tls: ALL` (a gateway server with
/// `httpsRedirect`) and no routes, as istiod writes one for a host no
/// VirtualService serves.
fn redirecting_routes() -> RouteConfig {
    RouteConfig {
        name: "http.80".into(),
        virtual_hosts: vec![VirtualHost {
            name: "edition.cnn.com:80".into(),
            domains: vec!["edition.cnn.com".into(), "edition.cnn.com:80".into()],
            routes: Vec::new(),
            include_attempt_count: true,
            require_tls: true,
        }],
    }
}

#[test]
fn require_tls_redirects_a_plaintext_request_to_https_with_301_as_envoy() {
    let routes = redirecting_routes();
    let plan = plan_for(&routes, request("edition.cnn.com", "/politics?x=1", &[]));
    match plan.action {
        Action::Redirect { status, location } => {
            assert_eq!(status, StatusCode::MOVED_PERMANENTLY);
            assert_eq!(
                location.as_ref().and_then(|l| l.to_str().ok()),
                Some("https://edition.cnn.com/politics?x=1")
            );
        }
        _ => panic!("expected a redirect"),
    }
}

#[test]
fn require_tls_lets_a_request_over_tls_or_forwarded_as_https_through() {
    let routes = redirecting_routes();
    let mut over_tls = request("edition.cnn.com", "/", &[]);
    over_tls.tls = true;
    assert_eq!(
        replied(&plan_for(&routes, over_tls)).status,
        StatusCode::NOT_FOUND
    );
    let forwarded = request("edition.cnn.com", "/", &[("x-forwarded-proto", "https")]);
    assert_eq!(
        replied(&plan_for(&routes, forwarded)).status,
        StatusCode::NOT_FOUND
    );
}

#[test]
fn scheme_matches_see_https_only_on_a_tls_connection_or_an_https_uri() {
    use crate::model::route::{HeaderMatch, HeaderRule, StringMatch, ValueMatch};
    let mut route = route(prefix("/"), RouteAction::Forward(forward_to(CLUSTER)));
    route.matcher.headers = vec![HeaderMatch {
        name: ":scheme".into(),
        rule: HeaderRule::Value(ValueMatch {
            pattern: StringMatch::Exact("https".into()),
            ignore_case: false,
        }),
        invert: false,
        treat_missing_as_empty: false,
    }];
    let routes = routes(route);
    let plain = plan_for(&routes, request("httpbin.test", "/", &[]));
    assert_eq!(replied(&plain).status, StatusCode::NOT_FOUND);
    let mut tls = request("httpbin.test", "/", &[]);
    tls.tls = true;
    assert!(matches!(plan_for(&routes, tls).action, Action::Forward(_)));
    let absolute = request("httpbin.test", "https://httpbin.test/", &[]);
    assert!(matches!(
        plan_for(&routes, absolute).action,
        Action::Forward(_)
    ));
}

#[test]
fn a_weighted_entry_edits_before_the_route_and_rewrites_host_unless_the_route_does() {
    let add = |value: &'static str| HeaderToAdd {
        name: HeaderName::from_static("x-version"),
        value: HeaderValue::from_static(value),
        action: AppendAction::OverwriteIfExistsOrAdd,
    };
    let mut entry = WeightedCluster::new(CLUSTER, 100);
    entry.headers.request_headers_to_add = vec![
        add("cluster"),
        HeaderToAdd {
            name: HeaderName::from_static("x-subset"),
            value: HeaderValue::from_static("v1"),
            action: AppendAction::AppendIfExistsOrAdd,
        },
    ];
    entry.host_rewrite = Some("v1.httpbin.test".into());
    let mut forward = forward_to(CLUSTER);
    forward.target = ClusterTarget::Weighted(vec![entry]);
    let mut route = route(prefix("/"), RouteAction::Forward(forward.clone()));
    route.request_headers_to_add = vec![add("route")];
    let routes_entry_host = routes(route.clone());
    let (forwarding, head) = forwarded(plan_for(
        &routes_entry_host,
        request("httpbin.test", "/", &[]),
    ));
    assert_eq!(head.headers["x-version"], "route");
    assert_eq!(head.headers["x-subset"], "v1");
    assert_eq!(head.headers[header::HOST], "v1.httpbin.test");
    assert!(forwarding.cluster_edits.is_some());
    forward.host_rewrite = Some("route.httpbin.test".into());
    route.action = RouteAction::Forward(forward);
    let routes_route_host = routes(route);
    let (_, head) = forwarded(plan_for(
        &routes_route_host,
        request("httpbin.test", "/", &[]),
    ));
    assert_eq!(head.headers[header::HOST], "route.httpbin.test");
}

#[test]
fn the_apps_router_control_headers_are_gone_before_routing() {
    // Envoy's connection manager removes x-envoy-max-retries & co. from an
    // external request before the route table sees it: a route matching on
    // one matches no request, and the request goes on without it.
    use crate::model::route::{HeaderMatch, HeaderRule};
    let mut route = route(prefix("/"), RouteAction::Forward(forward_to(CLUSTER)));
    route.matcher.headers = vec![HeaderMatch {
        name: "x-envoy-max-retries".into(),
        rule: HeaderRule::Present(true),
        invert: false,
        treat_missing_as_empty: false,
    }];
    let routes = routes(route);
    let request = request("httpbin.test", "/", &[("x-envoy-max-retries", "3")]);
    let plan = plan_for(&routes, request);
    assert_eq!(replied(&plan).status, StatusCode::NOT_FOUND);
    assert!(!plan.head.headers.contains_key("x-envoy-max-retries"));
}
