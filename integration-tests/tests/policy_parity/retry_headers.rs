//! The retry headers Envoy's router would read from a request
//! (`x-envoy-retry-on`, `x-envoy-max-retries`): istiod's connection
//! managers declare no internal addresses, so Envoy takes the app's
//! request as external and its connection manager removes them before the
//! router sees them. The route's policy stands, and the upstream never
//! sees them.

use integration_tests::policy::{Call, Facts, Probe, Scenario};
use integration_tests::upstream::Failing;
use serde_json::json;

use crate::config::{http_service, ready, virtual_service};
use crate::virtual_service::{one_route, with_counters};

pub fn scenarios() -> Vec<Scenario> {
    vec![retry_on_header(), max_retries_header(), header_match()]
}

/// What the app and server `a` saw of `call`, which carries `header`.
fn outcome(probe: &Probe<'_>, call: &Call, header: &str) -> anyhow::Result<Facts> {
    let reply = probe.send(call)?;
    let received = probe.received("a")?;
    Ok(Facts::new()
        .with("status", reply.result())
        .with("attempts upstream", received.len())
        .with(
            &format!("{header} upstream"),
            received
                .first()
                .and_then(|request| request.header(header))
                .unwrap_or("-"),
        )
        .with("log", probe.log().join("; ")))
}

/// A route without `retries` (istiod's default policy: connect failures,
/// refused streams and 503s) and a server that answers 500 once, asked
/// with `x-envoy-retry-on: 5xx`: the header is removed, so the 500 is not
/// retried and goes to the app.
fn retry_on_header() -> Scenario {
    const HOST: &str = "retry-header.example.com";
    Scenario::new(
        "x-envoy-retry-on from the app: removed, a 500 not retried",
        vec![
            http_service(HOST, &["a"]),
            virtual_service(
                HOST,
                json!([{ "route": [{ "destination": { "host": HOST } }] }]),
            ),
        ],
        |probe| {
            probe.fail(
                "a",
                Failing::Next {
                    count: 1,
                    status: 500,
                },
            )?;
            let call = Call::get(HOST, "/").header("x-envoy-retry-on", "5xx");
            let facts = outcome(probe, &call, "x-envoy-retry-on")?;
            with_counters(facts, probe, HOST, &["upstream_rq_retry"])
        },
        Facts::new()
            .with("status", 500)
            .with("attempts upstream", 1)
            .with("x-envoy-retry-on upstream", "-")
            .with("log", "500 -")
            .with("upstream_rq_retry", 0),
    )
    .ready(ready(HOST, 1))
}

/// `retries: {attempts: 2, retryOn: 5xx}` and a server that always fails
/// 503, asked with `x-envoy-max-retries: 0`: the header is removed, so the
/// route's two retries are made and the last 503 goes to the app, URX.
fn max_retries_header() -> Scenario {
    const HOST: &str = "max-retries-header.example.com";
    Scenario::new(
        "x-envoy-max-retries from the app: removed, the route's retries stand",
        one_route(
            HOST,
            json!({ "retries": { "attempts": 2, "retryOn": "5xx" } }),
        ),
        |probe| {
            probe.fail("a", Failing::Always(503))?;
            let call = Call::get(HOST, "/").header("x-envoy-max-retries", "0");
            let facts = outcome(probe, &call, "x-envoy-max-retries")?;
            with_counters(
                facts,
                probe,
                HOST,
                &["upstream_rq_retry", "upstream_rq_retry_limit_exceeded"],
            )
        },
        Facts::new()
            .with("status", 503)
            .with("attempts upstream", 3)
            .with("x-envoy-max-retries upstream", "-")
            .with("log", "503 URX")
            .with("upstream_rq_retry", 2)
            .with("upstream_rq_retry_limit_exceeded", 1),
    )
    .ready(ready(HOST, 1))
}

/// A route matching `x-envoy-max-retries` (aborting 418) before the
/// catch-all: the header is removed before routing, so the request takes
/// the catch-all to the server.
fn header_match() -> Scenario {
    const HOST: &str = "retry-header-match.example.com";
    Scenario::new(
        "x-envoy-max-retries from the app: removed before routing, no route matches it",
        vec![
            http_service(HOST, &["a"]),
            virtual_service(
                HOST,
                json!([
                    {
                        "match": [{ "headers": { "x-envoy-max-retries": { "exact": "0" } } }],
                        "fault": { "abort": { "httpStatus": 418, "percentage": { "value": 100 } } },
                        "route": [{ "destination": { "host": HOST } }],
                    },
                    { "route": [{ "destination": { "host": HOST } }] },
                ]),
            ),
        ],
        |probe| {
            let call = Call::get(HOST, "/").header("x-envoy-max-retries", "0");
            outcome(probe, &call, "x-envoy-max-retries")
        },
        Facts::new()
            .with("status", 200)
            .with("attempts upstream", 1)
            .with("x-envoy-max-retries upstream", "-")
            .with("log", "200 -"),
    )
    .ready(ready(HOST, 1))
}
