//! A DestinationRule's connection-pool settings beside the breakers of
//! `destination_rule`: `http2MaxRequests`, `h2UpgradePolicy`,
//! `http.idleTimeout` and `tcp.tcpKeepalive`, each seen where Envoy shows
//! it: a status and flag, the protocol the upstream saw, the upstream
//! connections and their counters, the socket's keepalive timer.

use anyhow::{Context, Result};
use integration_tests::policy::{Call, Facts, Probe, Reply, Scenario, sorted_tally};
use serde_json::json;

use crate::config::{cluster, destination_rule, http_service, ready};
use crate::destination_rule::requests_past_a_second;
use crate::statuses;

pub fn scenarios() -> Vec<Scenario> {
    vec![
        max_requests(),
        h2_upgrade(),
        http_idle_timeout(),
        tcp_keepalive(),
    ]
}

/// Service `host` on server a with `connection_pool`.
fn pooled(host: &str, connection_pool: serde_json::Value) -> Vec<(String, String)> {
    vec![
        http_service(host, &["a"]),
        destination_rule(host, json!({ "connectionPool": connection_pool })),
    ]
}

/// `http.http2MaxRequests: 1` (Envoy's `max_requests` breaker, on
/// HTTP/1.1 upstreams too): three requests at once to a server that
/// answers after 2 s: one is served, the two others overflow at once with
/// Envoy's 503 (flag UO), counted in `upstream_rq_active_overflow` (not
/// with pending requests, whatever older Envoy docs say) and by code; only
/// the request a connection took counts in `upstream_rq_total`.
fn max_requests() -> Scenario {
    const HOST: &str = "maxrequests.example.com";
    Scenario::new(
        "DR http.http2MaxRequests overflow (UO)",
        pooled(HOST, json!({ "http": { "http2MaxRequests": 1 } })),
        |probe| {
            let call = Call::get(HOST, "/delay/2");
            let replies = probe.send_parallel(&[call.clone(), call.clone(), call])?;
            let overflow = replies.iter().find(|reply| reply.status == 503);
            Ok(Facts::new()
                .with("statuses", sorted_tally(replies.iter().map(Reply::result)))
                .with("503 body", overflow.map_or("-", |reply| reply.body.trim()))
                .with("log", sorted_tally(probe.log()))
                .with("upstream requests", probe.received("a")?.len())
                .with(
                    "upstream_rq_active_overflow",
                    probe.cluster_stat(&cluster(HOST), "upstream_rq_active_overflow")?,
                )
                .with(
                    "upstream_rq_pending_overflow",
                    probe.cluster_stat(&cluster(HOST), "upstream_rq_pending_overflow")?,
                )
                .with(
                    "upstream_rq_503",
                    probe.cluster_stat(&cluster(HOST), "upstream_rq_503")?,
                )
                .with(
                    "upstream_rq_total",
                    probe.cluster_stat(&cluster(HOST), "upstream_rq_total")?,
                ))
        },
        Facts::new()
            .with("statuses", "200×1 503×2")
            .with(
                "503 body",
                "upstream connect error or disconnect/reset before headers. reset reason: overflow",
            )
            .with("log", "200 -×1 503 UO×2")
            .with("upstream requests", 1)
            .with("upstream_rq_active_overflow", 2)
            .with("upstream_rq_pending_overflow", 0)
            .with("upstream_rq_503", 2)
            .with("upstream_rq_total", 1),
    )
    .ready(ready(HOST, 1))
}

/// `http.h2UpgradePolicy: UPGRADE`: istiod makes the cluster speak
/// HTTP/2 (prior knowledge on a plain connection), so the request of an
/// HTTP/1.1 app and of an h2c app both reach the upstream as HTTP/2.
fn h2_upgrade() -> Scenario {
    const HOST: &str = "h2upgrade.example.com";
    Scenario::new(
        "DR http.h2UpgradePolicy UPGRADE",
        pooled(HOST, json!({ "http": { "h2UpgradePolicy": "UPGRADE" } })),
        |probe| {
            let h1 = probe.send(&Call::get(HOST, "/"))?;
            let h2 = probe.send(&Call::get(HOST, "/").http2())?;
            let versions: Vec<String> = probe
                .received("a")?
                .into_iter()
                .map(|request| request.version)
                .collect();
            Ok(Facts::new().with("statuses", statuses(&[h1, h2])).with(
                "upstream versions (HTTP/1.1 app, h2c app)",
                versions.join(" "),
            ))
        },
        Facts::new().with("statuses", "200×2").with(
            "upstream versions (HTTP/1.1 app, h2c app)",
            "HTTP/2.0 HTTP/2.0",
        ),
    )
    .ready(ready(HOST, 1))
}

/// `http.idleTimeout: 1s` (the cluster's `common_http_protocol_options`):
/// a pooled upstream connection idle that long is closed, so a request
/// 1.5 s after the first goes out on a new connection, and the old one
/// counts once in `upstream_cx_idle_timeout`.
fn http_idle_timeout() -> Scenario {
    const HOST: &str = "upstream-idle.example.com";
    Scenario::new(
        "DR http.idleTimeout: an idle upstream connection is closed",
        pooled(HOST, json!({ "http": { "idleTimeout": "1s" } })),
        |probe| {
            Ok(requests_past_a_second(probe, HOST)?.with(
                "upstream_cx_idle_timeout",
                probe.cluster_stat(&cluster(HOST), "upstream_cx_idle_timeout")?,
            ))
        },
        Facts::new()
            .with("statuses", "200×2")
            .with("upstream connections", 2)
            .with("upstream_cx_idle_timeout", 1),
    )
    .ready(ready(HOST, 1))
}

/// `tcp.tcpKeepalive` with `time: 30s` (the cluster's
/// `upstream_connection_options`): the upstream connection's socket has
/// SO_KEEPALIVE with TCP_KEEPIDLE 30 s, which `ss -o` shows as a
/// keepalive timer of at most 30 s on the pooled connection to server a.
fn tcp_keepalive() -> Scenario {
    const HOST: &str = "keepalive.example.com";
    const IDLE_SECS: u32 = 30;
    Scenario::new(
        "DR tcp.tcpKeepalive: the upstream socket's keepalive",
        pooled(
            HOST,
            json!({ "tcp": { "tcpKeepalive": {
                "time": format!("{IDLE_SECS}s"), "interval": "5s", "probes": 3,
            } } }),
        ),
        |probe| {
            let reply = probe.send(&Call::get(HOST, "/"))?;
            let timers = upstream_timers(probe, "a")?;
            let keepalive = timers
                .iter()
                .map(|timer| keepalive_within(timer, IDLE_SECS))
                .collect::<Vec<_>>();
            Ok(Facts::new()
                .with("status", reply.result())
                .with("upstream connections' timers", sorted_tally(keepalive)))
        },
        Facts::new().with("status", 200).with(
            "upstream connections' timers",
            format!("keepalive ≤ {IDLE_SECS}s×1"),
        ),
    )
    .ready(ready(HOST, 1))
}

/// The `timer:(..)` `ss -tno` shows (or `none`) for each connection from
/// the side's namespace to server `name`.
fn upstream_timers(probe: &Probe<'_>, name: &str) -> Result<Vec<String>> {
    let server = format!("{}:{}", probe.host_ip(), probe.port(name)?);
    let output = probe
        .netns()
        .command("ss")
        .args(["-tnoH", "state", "established", "dst", &server])
        .output()
        .context("running ss")?;
    anyhow::ensure!(output.status.success(), "ss: {output:?}");
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            line.split_whitespace()
                .find(|field| field.starts_with("timer:("))
                .unwrap_or("none")
                .to_string()
        })
        .collect())
}

/// `keepalive ≤ <secs>s` for a keepalive timer due within `secs` seconds,
/// else the timer as `ss` wrote it.
fn keepalive_within(timer: &str, secs: u32) -> String {
    let due = timer
        .strip_prefix("timer:(keepalive,")
        .and_then(|rest| rest.split(',').next())
        .and_then(|due| {
            let seconds = |text: &str| text.parse::<f64>().ok();
            match due.strip_suffix("ms") {
                Some(millis) => seconds(millis).map(|millis| millis / 1000.0),
                None => due.strip_suffix("sec").and_then(seconds),
            }
        });
    match due {
        Some(due) if due <= f64::from(secs) => format!("keepalive ≤ {secs}s"),
        _ => timer.to_string(),
    }
}
