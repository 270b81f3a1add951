//! The headers Envoy's router and connection manager add to each request
//! upstream by default, as they stand under istiod's config.

use integration_tests::policy::{Call, Facts, Scenario};
use serde_json::json;

use crate::config::ready;
use crate::virtual_service::{one_route, upstream_header};

pub fn scenarios() -> Vec<Scenario> {
    vec![default_headers_upstream()]
}

/// Whether `value` is a UUID as Envoy generates request ids: five groups
/// of 8-4-4-4-12 hex digits.
fn is_uuid(value: &str) -> bool {
    let groups: Vec<&str> = value.split('-').collect();
    groups.iter().map(|group| group.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|group| group.chars().all(|c| c.is_ascii_hexdigit()))
}

/// A route with `timeout: 5s` and a plain request from the app: upstream,
/// Envoy's connection manager adds `x-forwarded-proto: http` and a UUID
/// `x-request-id`; the router (istiod leaves `suppress_envoy_headers`
/// off) adds the route timeout as `x-envoy-expected-rq-timeout-ms`; with
/// istiod's tracing on, the route's decorator goes upstream as
/// `x-envoy-decorator-operation` (`<host>:<port>/*`).
fn default_headers_upstream() -> Scenario {
    const HOST: &str = "router-headers.example.com";
    Scenario::new(
        "Router default headers upstream",
        one_route(HOST, json!({ "timeout": "5s" })),
        |probe| {
            let reply = probe.send(&Call::get(HOST, "/"))?;
            let header = |name| upstream_header(probe, name);
            Ok(Facts::new()
                .with("status", reply.result())
                .with("x-forwarded-proto", header("x-forwarded-proto")?)
                .with("x-request-id is a UUID", is_uuid(&header("x-request-id")?))
                .with(
                    "x-envoy-expected-rq-timeout-ms",
                    header("x-envoy-expected-rq-timeout-ms")?,
                )
                .with(
                    "x-envoy-decorator-operation",
                    header("x-envoy-decorator-operation")?,
                ))
        },
        Facts::new()
            .with("status", 200)
            .with("x-forwarded-proto", "http")
            .with("x-request-id is a UUID", true)
            .with("x-envoy-expected-rq-timeout-ms", 5000)
            .with("x-envoy-decorator-operation", format!("{HOST}:80/*")),
    )
    .ready(ready(HOST, 1))
}
