//! Retries as Envoy's router makes them: a request body sent again, a body
//! past the buffer limit not retried, an HTTP/2 `REFUSED_STREAM` told
//! apart from other resets, the `max_retries` circuit breaker, and
//! `retryRemoteLocalities` over endpoints of one priority.

use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use integration_tests::policy::{Call, Facts, Probe, Scenario, sorted_tally};
use integration_tests::upstream::{Failing, body_hash};
use serde_json::json;
use tempfile::NamedTempFile;

use crate::config::{cluster, destination_rule, http_service, ready, route_to, virtual_service};
use crate::virtual_service::{one_route, with_counters};

pub fn scenarios() -> Vec<Scenario> {
    vec![
        body_sent_again(),
        body_past_the_buffer_limit(),
        refused_stream_retried(),
        reset_not_retried_as_refused_stream(),
        retry_overflow(),
        remote_localities_one_priority(),
    ]
}

/// A request body of `len` bytes in a file curl sends, and its hash.
pub struct BodyFile {
    file: NamedTempFile,
    hash: u64,
}

impl BodyFile {
    pub fn new(len: usize) -> Result<Self> {
        let bytes: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let mut file = NamedTempFile::new()?;
        file.write_all(&bytes)?;
        file.flush()?;
        Ok(Self {
            file,
            hash: body_hash(&bytes),
        })
    }

    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// Each body server `a` received: `<length> same` when it is this
    /// body, `<length> other` when not.
    pub fn received(&self, probe: &Probe<'_>) -> Result<String> {
        let bodies: Vec<String> = probe
            .received("a")?
            .iter()
            .map(|request| {
                let same = if request.body_hash == self.hash {
                    "same"
                } else {
                    "other"
                };
                format!("{} {same}", request.body_len)
            })
            .collect();
        Ok(bodies.join(", "))
    }
}

/// `retries: {attempts: 2, retryOn: 5xx}` and a POST of 64 KiB to a
/// server that fails once: Envoy keeps the body (under its 1 MiB buffer
/// limit) and sends it again, so the server gets it twice, whole.
fn body_sent_again() -> Scenario {
    const HOST: &str = "retry-body.example.com";
    Scenario::new(
        "VS retries 5xx: a POST body is sent again",
        one_route(
            HOST,
            json!({ "retries": { "attempts": 2, "retryOn": "5xx" } }),
        ),
        |probe| {
            let body = BodyFile::new(64 * 1024)?;
            probe.fail(
                "a",
                Failing::Next {
                    count: 1,
                    status: 503,
                },
            )?;
            let reply = probe.send(&Call::post(HOST, "/post", body.path()))?;
            Ok(Facts::new()
                .with("status", reply.result())
                .with("bodies upstream", body.received(probe)?)
                .with("log", probe.log().join("; "))
                .with(
                    "upstream_rq_retry",
                    probe.cluster_stat(&cluster(HOST), "upstream_rq_retry")?,
                ))
        },
        Facts::new()
            .with("status", 200)
            .with("bodies upstream", "65536 same, 65536 same")
            .with("log", "200 -")
            .with("upstream_rq_retry", 1),
    )
    .ready(ready(HOST, 1))
}

/// The same route and a POST of 2 MiB, past the 1 MiB buffer limit of
/// the listener's connections: Envoy gives up retrying
/// (`retry_or_shadow_abandoned`) and the server's 503 goes to the app as
/// it is, without URX.
fn body_past_the_buffer_limit() -> Scenario {
    const HOST: &str = "retry-big-body.example.com";
    Scenario::new(
        "VS retries 5xx: a body past the buffer limit is not retried",
        one_route(
            HOST,
            json!({ "retries": { "attempts": 2, "retryOn": "5xx" } }),
        ),
        |probe| {
            let body = BodyFile::new(2 * 1024 * 1024)?;
            probe.fail(
                "a",
                Failing::Next {
                    count: 1,
                    status: 503,
                },
            )?;
            let reply = probe.send(&Call::post(HOST, "/post", body.path()))?;
            let stat = |name| probe.cluster_stat(&cluster(HOST), name);
            Ok(Facts::new()
                .with("status", reply.result())
                .with("bodies upstream", body.received(probe)?)
                .with("log", probe.log().join("; "))
                .with(
                    "retry_or_shadow_abandoned",
                    stat("retry_or_shadow_abandoned")?,
                )
                .with("upstream_rq_retry", stat("upstream_rq_retry")?))
        },
        Facts::new()
            .with("status", 503)
            .with("bodies upstream", "2097152 same")
            .with("log", "503 -")
            .with("retry_or_shadow_abandoned", 1)
            .with("upstream_rq_retry", 0),
    )
    .ready(ready(HOST, 1))
}

/// An h2c app through a cluster that speaks the client's protocol, to a
/// route retried on `refused-stream` only.
fn refused_stream_route(host: &str) -> Vec<(String, String)> {
    vec![
        http_service(host, &["a"]),
        destination_rule(
            host,
            json!({ "connectionPool": { "http": { "useClientProtocol": true } } }),
        ),
        virtual_service(
            host,
            json!([route_to(
                host,
                json!({ "retries": { "attempts": 2, "retryOn": "refused-stream" } })
            )]),
        ),
    ]
}

/// `retryOn: refused-stream` and an HTTP/2 server that refuses the first
/// stream (`REFUSED_STREAM`): Envoy retries it, and the retry is served.
fn refused_stream_retried() -> Scenario {
    const HOST: &str = "refused.example.com";
    Scenario::new(
        "VS retries refused-stream: an h2 REFUSED_STREAM is retried",
        refused_stream_route(HOST),
        |probe| {
            probe.fail("a", Failing::RefuseNext(1))?;
            let reply = probe.send(&Call::get(HOST, "/").http2())?;
            let received = probe.received("a")?;
            Ok(Facts::new()
                .with("status", reply.result())
                .with(
                    "requests upstream",
                    sorted_tally(received.iter().map(|request| request.version.clone())),
                )
                .with("log", probe.log().join("; ")))
        },
        Facts::new()
            .with("status", 200)
            .with("requests upstream", "HTTP/2.0×2")
            .with("log", "200 -"),
    )
    .ready(ready(HOST, 1))
}

/// The same route and a server that resets the first stream with
/// `INTERNAL_ERROR`: a plain reset is retried under `reset`, `5xx` or
/// `gateway-error`, not under `refused-stream`, so the app gets Envoy's
/// 503, flagged UR.
fn reset_not_retried_as_refused_stream() -> Scenario {
    const HOST: &str = "reset.example.com";
    Scenario::new(
        "VS retries refused-stream: a plain h2 reset is not retried",
        refused_stream_route(HOST),
        |probe| {
            probe.fail("a", Failing::ResetNext(1))?;
            let reply = probe.send(&Call::get(HOST, "/").http2())?;
            Ok(Facts::new()
                .with("status", reply.result())
                .with("body", reply.body.trim())
                .with("requests upstream", probe.received("a")?.len())
                .with("log", probe.log().join("; ")))
        },
        Facts::new()
            .with("status", 503)
            .with(
                "body",
                "upstream connect error or disconnect/reset before headers. reset reason: remote reset",
            )
            .with("requests upstream", 1)
            .with("log", "503 UR"),
    )
    .ready(ready(HOST, 1))
}

/// `http.maxRetries: 1` with retries on `5xx` and a 2 s per-try timeout.
/// A first request to a slow path times out and is retried: its retry
/// holds the cluster's one retry for the next 2 s. A second request sent
/// meanwhile gets a 503 that would be retried, but the `max_retries`
/// circuit breaker is open: Envoy counts `upstream_rq_retry_overflow`
/// and gives the app the 503, flagged UO. The first request ends on its
/// second per-try timeout: 504, URX and UT.
fn retry_overflow() -> Scenario {
    const HOST: &str = "retry-overflow.example.com";
    Scenario::new(
        "DR maxRetries: a retry past the breaker is not sent (UO)",
        vec![
            http_service(HOST, &["a"]),
            destination_rule(
                HOST,
                json!({ "connectionPool": { "http": { "maxRetries": 1 } } }),
            ),
            virtual_service(
                HOST,
                json!([route_to(
                    HOST,
                    json!({ "retries": {
                        "attempts": 2, "retryOn": "5xx", "perTryTimeout": "2s"
                    } })
                )]),
            ),
        ],
        |probe| {
            let (slow, failing) = std::thread::scope(|scope| {
                let slow = scope.spawn(|| probe.send(&Call::get(HOST, "/delay/5")));
                // Past the first per-try timeout, inside the retry.
                std::thread::sleep(Duration::from_secs(3));
                let failing = probe.send(&Call::get(HOST, "/status/503"));
                let slow = slow
                    .join()
                    .unwrap_or_else(|_| anyhow::bail!("the slow request's thread panicked"));
                (slow, failing)
            });
            let (slow, failing) = (slow?, failing?);
            Ok(Facts::new()
                .with("slow request", slow.result())
                .with("failing request", failing.result())
                .with("log", sorted_tally(probe.log()))
                .with(
                    "upstream_rq_retry_overflow",
                    probe.cluster_stat(&cluster(HOST), "upstream_rq_retry_overflow")?,
                ))
        },
        Facts::new()
            .with("slow request", 504)
            .with("failing request", 503)
            .with("log", "503 UO×1 504 URX,UT×1")
            .with("upstream_rq_retry_overflow", 1),
    )
    .ready(ready(HOST, 1))
}

/// `retryRemoteLocalities: true` (istiod's `previous_priorities` retry
/// priority, update frequency 2) on a service whose endpoints are all at
/// priority 0, as this control plane sends them: the config is accepted,
/// and a 503 is retried as without it, the retry served.
fn remote_localities_one_priority() -> Scenario {
    const HOST: &str = "retry-localities.example.com";
    Scenario::new(
        "VS retries retryRemoteLocalities: one priority, retried as without it",
        one_route(
            HOST,
            json!({ "retries": { "attempts": 2, "retryOn": "5xx", "retryRemoteLocalities": true } }),
        ),
        |probe| {
            probe.fail(
                "a",
                Failing::Next {
                    count: 1,
                    status: 503,
                },
            )?;
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
