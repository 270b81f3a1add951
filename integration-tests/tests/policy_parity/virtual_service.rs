//! VirtualService scenarios: timeouts, retries, headers, the headers
//! Envoy's router adds, faults, mirrors, CORS, matches.

use std::time::Duration;

use integration_tests::policy::{Call, Facts, Probe, Scenario, at_least};
use integration_tests::upstream::Failing;
use serde_json::{Value, json};

use crate::config::{cluster, http_service, ready, route_to, virtual_service};

pub fn scenarios() -> Vec<Scenario> {
    vec![
        timeout(),
        retry_then_success(),
        retries_exhausted(),
        retriable_status_codes(),
        route_headers(),
    ]
}

/// A service on server `a` alone with one VirtualService route `fields`.
pub fn one_route(host: &str, fields: Value) -> Vec<(String, String)> {
    vec![
        http_service(host, &["a"]),
        virtual_service(host, json!([route_to(host, fields)])),
    ]
}

/// The first value of header `name` in the last request server `a` got,
/// or `-`.
pub fn upstream_header(probe: &Probe<'_>, name: &str) -> anyhow::Result<String> {
    Ok(probe
        .received("a")?
        .last()
        .and_then(|request| request.header(name))
        .unwrap_or("-")
        .to_string())
}

/// Each of `stats` of `host`'s cluster added to `facts`; a counter Envoy
/// never created (it makes them on first use) is 0.
pub fn with_counters(
    mut facts: Facts,
    probe: &Probe<'_>,
    host: &str,
    stats: &[&str],
) -> anyhow::Result<Facts> {
    for stat in stats {
        let value = probe.cluster_stat(&cluster(host), stat)?;
        facts.set(stat, if value == "absent" { "0".into() } else { value });
    }
    Ok(facts)
}

/// `timeout: 1s` on a route to a server that answers after 2 s: Envoy's
/// 504 `upstream request timeout`, flag UT, after at least the timeout.
fn timeout() -> Scenario {
    const HOST: &str = "timeout.example.com";
    Scenario::new(
        "VS timeout 1s",
        one_route(HOST, json!({ "timeout": "1s" })),
        |probe| {
            let reply = probe.send(&Call::get(HOST, "/delay/2"))?;
            Ok(Facts::new()
                .with("status", reply.result())
                .with("body", reply.body.trim())
                .with("elapsed", at_least(reply.elapsed, Duration::from_secs(1)))
                .with("log", probe.log().join("; ")))
        },
        Facts::new()
            .with("status", 504)
            .with("body", "upstream request timeout")
            .with("elapsed", "≥ 1s")
            .with("log", "504 UT"),
    )
    .ready(ready(HOST, 1))
}

/// The retry counters of a request retried once, then served, and the
/// per-code counters of its responses.
const RETRY_SUCCESS_STATS: [&str; 11] = [
    "upstream_rq_retry",
    "upstream_rq_retry_success",
    "upstream_rq_retry_backoff_exponential",
    "upstream_rq_retry_limit_exceeded",
    "retry.upstream_rq_500",
    "retry.upstream_rq_5xx",
    "retry.upstream_rq_completed",
    "upstream_rq_5xx",
    "upstream_rq_2xx",
    "upstream_rq_500",
    "upstream_rq_200",
];

/// `retries: {attempts: 2, retryOn: 5xx}` with a server that fails once:
/// the retry succeeds; the upstream sees two attempts, the second with
/// `x-envoy-attempt-count: 2` (istiod asks for the count on every virtual
/// host). Envoy counts one retry, after an exponential backoff, that
/// succeeded; the retried 500 under `retry.` and not with the responses
/// sent downstream (`upstream_rq_5xx` and `upstream_rq_500` stay 0), the
/// 200 with them, by class and by code.
fn retry_then_success() -> Scenario {
    const HOST: &str = "retry.example.com";
    Scenario::new(
        "VS retries 5xx: fail once, then 200",
        one_route(
            HOST,
            json!({ "retries": { "attempts": 2, "retryOn": "5xx" } }),
        ),
        |probe| {
            probe.fail(
                "a",
                Failing::Next {
                    count: 1,
                    status: 500,
                },
            )?;
            let reply = probe.send(&Call::get(HOST, "/"))?;
            let facts = Facts::new()
                .with("status", reply.result())
                .with("attempts upstream", probe.received("a")?.len())
                .with(
                    "x-envoy-attempt-count upstream",
                    upstream_header(probe, "x-envoy-attempt-count")?,
                )
                .with("log", probe.log().join("; "));
            with_counters(facts, probe, HOST, &RETRY_SUCCESS_STATS)
        },
        Facts::new()
            .with("status", 200)
            .with("attempts upstream", 2)
            .with("x-envoy-attempt-count upstream", 2)
            .with("log", "200 -")
            .with("upstream_rq_retry", 1)
            .with("upstream_rq_retry_success", 1)
            .with("upstream_rq_retry_backoff_exponential", 1)
            .with("upstream_rq_retry_limit_exceeded", 0)
            .with("retry.upstream_rq_500", 1)
            .with("retry.upstream_rq_5xx", 1)
            .with("retry.upstream_rq_completed", 1)
            .with("upstream_rq_5xx", 0)
            .with("upstream_rq_2xx", 1)
            .with("upstream_rq_500", 0)
            .with("upstream_rq_200", 1),
    )
    .ready(ready(HOST, 1))
}

/// The same route with a server that always fails 503: one try and two
/// retries, then the last 503 goes to the app, flagged URX (retry limit
/// exceeded). Envoy counts two retries, none a success, the limit
/// exceeded once; the two retried 503s under `retry.`, the last one with
/// the responses sent downstream, by class and by code.
fn retries_exhausted() -> Scenario {
    const HOST: &str = "exhausted.example.com";
    Scenario::new(
        "VS retries 5xx: exhausted",
        one_route(
            HOST,
            json!({ "retries": { "attempts": 2, "retryOn": "5xx" } }),
        ),
        |probe| {
            probe.fail("a", Failing::Always(503))?;
            let reply = probe.send(&Call::get(HOST, "/"))?;
            let facts = Facts::new()
                .with("status", reply.result())
                .with("attempts upstream", probe.received("a")?.len())
                .with("log", probe.log().join("; "));
            with_counters(
                facts,
                probe,
                HOST,
                &[
                    "upstream_rq_retry",
                    "upstream_rq_retry_success",
                    "upstream_rq_retry_limit_exceeded",
                    "retry.upstream_rq_503",
                    "retry.upstream_rq_completed",
                    "upstream_rq_5xx",
                    "upstream_rq_503",
                ],
            )
        },
        Facts::new()
            .with("status", 503)
            .with("attempts upstream", 3)
            .with("log", "503 URX")
            .with("upstream_rq_retry", 2)
            .with("upstream_rq_retry_success", 0)
            .with("upstream_rq_retry_limit_exceeded", 1)
            .with("retry.upstream_rq_503", 2)
            .with("retry.upstream_rq_completed", 2)
            .with("upstream_rq_5xx", 1)
            .with("upstream_rq_503", 1),
    )
    .ready(ready(HOST, 1))
}

/// `retryOn` naming a status (istiod makes it a retriable status code):
/// a server that answers 418 once is retried, and the retry served.
fn retriable_status_codes() -> Scenario {
    const HOST: &str = "retry-codes.example.com";
    Scenario::new(
        "VS retries retriable-status-codes 418",
        one_route(
            HOST,
            json!({ "retries": { "attempts": 2, "retryOn": "retriable-status-codes,418" } }),
        ),
        |probe| {
            probe.fail(
                "a",
                Failing::Next {
                    count: 1,
                    status: 418,
                },
            )?;
            let reply = probe.send(&Call::get(HOST, "/"))?;
            Ok(Facts::new()
                .with("status", reply.result())
                .with("attempts upstream", probe.received("a")?.len())
                .with("log", probe.log().join("; ")))
        },
        Facts::new()
            .with("status", 200)
            .with("attempts upstream", 2)
            .with("log", "200 -"),
    )
    .ready(ready(HOST, 1))
}

/// `headers` on a route: the request's set, add and remove are what the
/// upstream sees; the response's set and remove are what the app sees.
fn route_headers() -> Scenario {
    const HOST: &str = "headers.example.com";
    Scenario::new(
        "VS headers on the route",
        one_route(
            HOST,
            json!({ "headers": {
                "request": {
                    "set": { "x-set": "set" },
                    "add": { "x-add": "added" },
                    "remove": ["x-remove"],
                },
                "response": {
                    "set": { "x-response-set": "set" },
                    "remove": ["content-type"],
                },
            } }),
        ),
        |probe| {
            let reply = probe.send(
                &Call::get(HOST, "/")
                    .header("x-set", "from-app")
                    .header("x-remove", "from-app"),
            )?;
            Ok(Facts::new()
                .with("status", reply.result())
                .with("x-set upstream", upstream_header(probe, "x-set")?)
                .with("x-add upstream", upstream_header(probe, "x-add")?)
                .with("x-remove upstream", upstream_header(probe, "x-remove")?)
                .with(
                    "x-response-set downstream",
                    reply.header_or_dash("x-response-set"),
                )
                .with(
                    "content-type downstream",
                    reply.header_or_dash("content-type"),
                ))
        },
        Facts::new()
            .with("status", 200)
            .with("x-set upstream", "set")
            .with("x-add upstream", "added")
            .with("x-remove upstream", "-")
            .with("x-response-set downstream", "set")
            .with("content-type downstream", "-"),
    )
    .ready(ready(HOST, 1))
}
