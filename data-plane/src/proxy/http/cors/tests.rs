//! CORS as Envoy's CORS filter does it with a route's policy: preflights
//! answered locally when the origin is allowed, forwarded when it is not
//! (by default), and the grant set on every response to an allowed origin.

use std::sync::Arc;

use crate::model::cors::CorsPolicy;
use crate::model::fraction::Fraction;
use crate::model::http_filters::{FilterConfig, FilterKind, HttpFilter};
use crate::model::route::StringMatch;

use super::super::filters::test_support::{CORS, FAULT, exchange, filter, stats};

fn policy() -> CorsPolicy {
    CorsPolicy {
        allow_origins: vec![(StringMatch::Exact("https://app.test".into()), false)],
        allow_methods: Some("GET,POST".into()),
        allow_headers: Some("x-token".into()),
        expose_headers: Some("x-trace".into()),
        max_age: Some("600".into()),
        allow_credentials: Some(true),
        allow_private_network_access: None,
        forward_not_matching_preflights: None,
        filter_enabled: Some(Fraction::ALL),
        shadow_enabled: None,
    }
}

fn cors_filter() -> Vec<HttpFilter> {
    vec![filter(CORS, FilterKind::Cors)]
}

fn preflight(origin: &str) -> String {
    format!(
        "OPTIONS /items HTTP/1.1\r\nHost: api.test\r\nOrigin: {origin}\r\nAccess-Control-Request-Method: POST\r\n"
    )
}

#[tokio::test]
async fn a_preflight_from_an_allowed_origin_is_answered_200_with_envoy_s_headers() {
    let (response, context) = exchange(
        cors_filter(),
        vec![(CORS, FilterConfig::Cors(Arc::new(policy())))],
        &preflight("https://app.test"),
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    for header in [
        "access-control-allow-origin: https://app.test\r\n",
        "access-control-allow-credentials: true\r\n",
        "access-control-allow-methods: GET,POST\r\n",
        "access-control-allow-headers: x-token\r\n",
        "access-control-max-age: 600\r\n",
        // The filter's response encoding runs on its own answer too.
        "access-control-expose-headers: x-trace\r\n",
        "content-length: 0\r\n",
    ] {
        assert!(response.contains(header), "{header} in {response}");
    }
    assert!(!response.contains("hello"), "{response}");
    assert!(stats(&context).contains(
        "envoy_http_cors_origin_valid{envoy_http_conn_manager_prefix=\"outbound_0.0.0.0_80\"} 1\n"
    ));
}

#[tokio::test]
async fn a_preflight_from_another_origin_goes_on_by_default_and_is_answered_bare_if_told() {
    let (response, context) = exchange(
        cors_filter(),
        vec![(CORS, FilterConfig::Cors(Arc::new(policy())))],
        &preflight("https://evil.test"),
    )
    .await;
    assert!(response.ends_with("\r\n\r\nhello"), "{response}");
    assert!(
        !response.contains("access-control-allow-origin"),
        "{response}"
    );
    assert!(stats(&context).contains(
        "envoy_http_cors_origin_invalid{envoy_http_conn_manager_prefix=\"outbound_0.0.0.0_80\"} 1\n"
    ));
    let mut ignore = policy();
    ignore.forward_not_matching_preflights = Some(false);
    let (response, _) = exchange(
        cors_filter(),
        vec![(CORS, FilterConfig::Cors(Arc::new(ignore)))],
        &preflight("https://evil.test"),
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(!response.contains("hello"), "{response}");
    assert!(
        !response.contains("access-control-allow-origin"),
        "{response}"
    );
    assert!(
        response.contains("access-control-allow-methods: GET,POST\r\n"),
        "{response}"
    );
}

#[tokio::test]
async fn a_simple_request_from_an_allowed_origin_gets_the_grant_on_its_response() {
    let request = "GET /items HTTP/1.1\r\nHost: api.test\r\nOrigin: https://app.test\r\n";
    let (response, _) = exchange(
        cors_filter(),
        vec![(CORS, FilterConfig::Cors(Arc::new(policy())))],
        request,
    )
    .await;
    assert!(response.ends_with("\r\n\r\nhello"), "{response}");
    assert!(
        response.contains("access-control-allow-origin: https://app.test\r\n"),
        "{response}"
    );
    assert!(
        response.contains("access-control-allow-credentials: true\r\n"),
        "{response}"
    );
    assert!(
        response.contains("access-control-expose-headers: x-trace\r\n"),
        "{response}"
    );
    assert!(
        !response.contains("access-control-allow-methods"),
        "{response}"
    );
}

#[tokio::test]
async fn star_methods_and_headers_echo_the_preflight_s_request() {
    let mut star = policy();
    star.allow_methods = Some("*".into());
    star.allow_headers = Some("*".into());
    let request = format!(
        "{}Access-Control-Request-Headers: x-a,x-b\r\n",
        preflight("https://app.test")
    );
    let (response, _) = exchange(
        cors_filter(),
        vec![(CORS, FilterConfig::Cors(Arc::new(star)))],
        &request,
    )
    .await;
    assert!(
        response.contains("access-control-allow-methods: POST\r\n"),
        "{response}"
    );
    assert!(
        response.contains("access-control-allow-headers: x-a,x-b\r\n"),
        "{response}"
    );
}

#[tokio::test]
async fn a_disabled_or_shadowed_policy_grants_nothing() {
    let mut off = policy();
    off.filter_enabled = Some(Fraction {
        numerator: 0,
        denominator: 100,
    });
    off.shadow_enabled = Some(Fraction::ALL);
    let (response, context) = exchange(
        cors_filter(),
        vec![(CORS, FilterConfig::Cors(Arc::new(off)))],
        &preflight("https://app.test"),
    )
    .await;
    assert!(response.ends_with("\r\n\r\nhello"), "{response}");
    assert!(!response.contains("access-control"), "{response}");
    // Shadow mode still counts.
    assert!(stats(&context).contains(
        "envoy_http_cors_origin_valid{envoy_http_conn_manager_prefix=\"outbound_0.0.0.0_80\"} 1\n"
    ));
}

#[tokio::test]
async fn a_fault_before_cors_aborts_a_preflight_without_cors_headers() {
    use crate::model::fault::{ABORT_BODY, Abort, AbortStatus, Fault};
    let fault = Fault {
        delay: None,
        abort: Some(Abort {
            status: AbortStatus::Http(503),
            percentage: Fraction::ALL,
            body: ABORT_BODY.into(),
        }),
    };
    let (response, _) = exchange(
        vec![
            filter(FAULT, FilterKind::Fault(None)),
            filter(CORS, FilterKind::Cors),
        ],
        vec![
            (CORS, FilterConfig::Cors(Arc::new(policy()))),
            (FAULT, FilterConfig::Fault(Arc::new(fault))),
        ],
        &preflight("https://app.test"),
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 503 "), "{response}");
    assert!(!response.contains("access-control"), "{response}");
}
