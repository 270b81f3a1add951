//! Retries under each of Envoy's `retryOn` conditions beside `5xx`: which
//! failures each one retries and which it lets through to the app.

use anyhow::Result;
use integration_tests::policy::{Call, Facts, Probe, Scenario, tally};
use integration_tests::upstream::Failing;
use serde_json::json;

use crate::config::{cluster, ready, route_to, service_on_ports, virtual_service};
use crate::statuses;
use crate::virtual_service::{one_route, with_counters};

pub fn scenarios() -> Vec<Scenario> {
    vec![gateway_error(), connect_failure(), reset(), retriable_4xx()]
}

/// A route retried twice on `retry_on` alone.
fn retried_on(host: &str, retry_on: &str) -> Vec<(String, String)> {
    one_route(
        host,
        json!({ "retries": { "attempts": 2, "retryOn": retry_on } }),
    )
}

/// `GET /status/<code>` once for each of `codes`, in order: per code, its
/// status and how many attempts reached server `a`.
fn status_paths(probe: &Probe<'_>, host: &str, codes: &[u16]) -> Result<Facts> {
    let mut facts = Facts::new();
    for code in codes {
        let before = probe.received("a")?.len();
        let reply = probe.send(&Call::get(host, &format!("/status/{code}")))?;
        let attempts = probe.received("a")?.len() - before;
        facts.set(
            &format!("/status/{code}"),
            format!("{} after {attempts} attempts", reply.result()),
        );
    }
    Ok(facts.with("log", probe.log().join("; ")))
}

/// `retryOn: gateway-error`: Envoy retries a 502, 503 or 504 (each tried
/// three times, then sent to the app flagged URX) and not a 500.
fn gateway_error() -> Scenario {
    const HOST: &str = "retry-gateway.example.com";
    Scenario::new(
        "VS retries gateway-error: 502/503/504 retried, 500 not",
        retried_on(HOST, "gateway-error"),
        |probe| status_paths(probe, HOST, &[502, 503, 504, 500]),
        Facts::new()
            .with("/status/502", "502 after 3 attempts")
            .with("/status/503", "503 after 3 attempts")
            .with("/status/504", "504 after 3 attempts")
            .with("/status/500", "500 after 1 attempts")
            .with("log", "502 URX; 503 URX; 504 URX; 500 -"),
    )
    .ready(ready(HOST, 1))
}

/// `retryOn: retriable-4xx`: Envoy retries a 409 (three tries, then
/// URX) and no other 4xx.
fn retriable_4xx() -> Scenario {
    const HOST: &str = "retry-4xx.example.com";
    Scenario::new(
        "VS retries retriable-4xx: 409 retried, 404 not",
        retried_on(HOST, "retriable-4xx"),
        |probe| status_paths(probe, HOST, &[409, 404]),
        Facts::new()
            .with("/status/409", "409 after 3 attempts")
            .with("/status/404", "404 after 1 attempts")
            .with("log", "409 URX; 404 -"),
    )
    .ready(ready(HOST, 1))
}

/// `retryOn: reset` and a server that closes the connection of the first
/// request without a response: Envoy retries the reset, and the retry is
/// served.
fn reset() -> Scenario {
    const HOST: &str = "retry-reset.example.com";
    Scenario::new(
        "VS retries reset: a connection closed before the response is retried",
        retried_on(HOST, "reset"),
        |probe| {
            probe.fail("a", Failing::ResetNext(1))?;
            let reply = probe.send(&Call::get(HOST, "/"))?;
            let facts = Facts::new()
                .with("status", reply.result())
                .with("served by", reply.served_by())
                .with("attempts upstream", probe.received("a")?.len())
                .with("log", probe.log().join("; "));
            with_counters(
                facts,
                probe,
                HOST,
                &["upstream_rq_retry", "upstream_rq_retry_success"],
            )
        },
        Facts::new()
            .with("status", 200)
            .with("served by", "a")
            .with("attempts upstream", 2)
            .with("log", "200 -")
            .with("upstream_rq_retry", 1)
            .with("upstream_rq_retry_success", 1),
    )
    .ready(ready(HOST, 1))
}

/// A port of the side's host nothing listens on: a connection is refused.
const DEAD_PORT: u16 = 9;

/// `retryOn: connect-failure` on a service whose endpoints are a port
/// that refuses connections and server `a`: a request whose first try
/// picks the dead endpoint is retried on another host (istiod's
/// `previous_hosts` predicate), so every request is served by `a`, and
/// each failed connection is one retry. Which host a first try picks is
/// the load balancer's draw: 20 requests make a run with no refused
/// connection at all too unlikely to matter.
fn connect_failure() -> Scenario {
    const HOST: &str = "retry-connect.example.com";
    Scenario::new(
        "VS retries connect-failure: a refused endpoint, then a live one",
        vec![
            service_on_ports(
                HOST,
                80,
                "HTTP",
                &[("a", "${PORT_a}".into()), ("dead", DEAD_PORT.to_string())],
            ),
            virtual_service(
                HOST,
                json!([route_to(
                    HOST,
                    json!({ "retries": { "attempts": 2, "retryOn": "connect-failure" } })
                )]),
            ),
        ],
        |probe| {
            let replies = probe.send_times(&Call::get(HOST, "/"), 20)?;
            let stat = |name| probe.cluster_stat(&cluster(HOST), name);
            let retries = stat("upstream_rq_retry")?;
            let connect_failures = stat("upstream_cx_connect_fail")?;
            Ok(Facts::new()
                .with("statuses", statuses(&replies))
                .with(
                    "served by",
                    tally(replies.iter().map(|reply| reply.served_by())),
                )
                .with("log", tally(probe.log()))
                .with(
                    "retries = refused connections > 0",
                    retries == connect_failures
                        && retries.parse::<u64>().is_ok_and(|count| count > 0),
                ))
        },
        Facts::new()
            .with("statuses", "200×20")
            .with("served by", "a×20")
            .with("log", "200 -×20")
            .with("retries = refused connections > 0", true),
    )
    .ready(ready(HOST, 2))
}
