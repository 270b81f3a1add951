//! When Envoy's route timeouts run: the route timeout and the per-try
//! timeout start once the downstream request is complete (its body read
//! to the end), and the route timeout covers every try. Lower bounds only.

use std::time::Duration;

use anyhow::Result;
use integration_tests::policy::{Call, Facts, Probe, Scenario, at_least};
use serde_json::json;

use crate::config::ready;
use crate::retries::BodyFile;
use crate::virtual_service::{one_route, with_counters};

pub fn scenarios() -> Vec<Scenario> {
    vec![
        timeout_after_the_body(),
        per_try_timeout_after_the_body(),
        timeout_over_retries(),
    ]
}

/// A POST of 256 KiB that curl sends at 100 KB/s: about 2.6 s to send.
const SLOW_BODY: usize = 256 * 1024;
const SLOW_RATE: u32 = 100_000;
/// Less than the body takes to send.
const SLOW_SEND: Duration = Duration::from_secs(2);

/// Sends [`SLOW_BODY`] to `host` at [`SLOW_RATE`]: what the app and server
/// `a` saw.
fn slow_post(probe: &Probe<'_>, host: &str) -> Result<Facts> {
    let body = BodyFile::new(SLOW_BODY)?;
    let reply = probe.send(&Call::post(host, "/post", body.path()).upload_rate(SLOW_RATE))?;
    Ok(Facts::new()
        .with("status", reply.result())
        .with("elapsed", at_least(reply.elapsed, SLOW_SEND))
        .with("bodies upstream", body.received(probe)?)
        .with("log", probe.log().join("; ")))
}

/// `timeout: 1s` and a body that takes longer than that to arrive: Envoy
/// starts the route timeout when the request is complete, and the server
/// answers at once after it, so the app gets the server's 200.
fn timeout_after_the_body() -> Scenario {
    const HOST: &str = "timeout-body.example.com";
    Scenario::new(
        "VS timeout 1s: starts when the request body is complete",
        one_route(HOST, json!({ "timeout": "1s" })),
        |probe| {
            let facts = slow_post(probe, HOST)?;
            with_counters(facts, probe, HOST, &["upstream_rq_timeout"])
        },
        Facts::new()
            .with("status", 200)
            .with("elapsed", at_least(SLOW_SEND, SLOW_SEND))
            .with("bodies upstream", format!("{SLOW_BODY} same"))
            .with("log", "200 -")
            .with("upstream_rq_timeout", 0),
    )
    .ready(ready(HOST, 1))
}

/// `perTryTimeout: 1s` (retried on 5xx) and the same slow body: the first
/// try's per-try timeout starts when the request is complete too, so the
/// one try is served, never timed out nor retried.
fn per_try_timeout_after_the_body() -> Scenario {
    const HOST: &str = "per-try-body.example.com";
    Scenario::new(
        "VS perTryTimeout 1s: starts when the request body is complete",
        one_route(
            HOST,
            json!({ "retries": { "attempts": 2, "retryOn": "5xx", "perTryTimeout": "1s" } }),
        ),
        |probe| {
            let facts = slow_post(probe, HOST)?;
            with_counters(
                facts,
                probe,
                HOST,
                &["upstream_rq_per_try_timeout", "upstream_rq_retry"],
            )
        },
        Facts::new()
            .with("status", 200)
            .with("elapsed", at_least(SLOW_SEND, SLOW_SEND))
            .with("bodies upstream", format!("{SLOW_BODY} same"))
            .with("log", "200 -")
            .with("upstream_rq_per_try_timeout", 0)
            .with("upstream_rq_retry", 0),
    )
    .ready(ready(HOST, 1))
}

/// `timeout: 2s` over `perTryTimeout: 1.5s` retried on 5xx, to a server
/// that answers after 5 s: the first try times out at 1.5 s and is
/// retried, and the route timeout, which covers every try, ends the retry
/// at 2 s: Envoy's 504 `upstream request timeout`, flag UT.
fn timeout_over_retries() -> Scenario {
    const HOST: &str = "timeout-retries.example.com";
    Scenario::new(
        "VS timeout 2s over perTryTimeout 1.5s: the retry is cut",
        one_route(
            HOST,
            json!({
                "timeout": "2s",
                "retries": { "attempts": 5, "retryOn": "5xx", "perTryTimeout": "1.5s" }
            }),
        ),
        |probe| {
            let reply = probe.send(&Call::get(HOST, "/delay/5"))?;
            let facts = Facts::new()
                .with("status", reply.result())
                .with("body", reply.body.trim())
                .with("elapsed", at_least(reply.elapsed, Duration::from_secs(2)))
                .with("log", probe.log().join("; "));
            with_counters(
                facts,
                probe,
                HOST,
                &[
                    "upstream_rq_per_try_timeout",
                    "upstream_rq_retry",
                    "upstream_rq_timeout",
                ],
            )
        },
        Facts::new()
            .with("status", 504)
            .with("body", "upstream request timeout")
            .with("elapsed", "≥ 2s")
            .with("log", "504 UT")
            .with("upstream_rq_per_try_timeout", 1)
            .with("upstream_rq_retry", 1)
            .with("upstream_rq_timeout", 1),
    )
    .ready(ready(HOST, 1))
}
