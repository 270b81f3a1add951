//! DestinationRule scenarios: load balancing, connection pools, outlier
//! detection.

use std::collections::BTreeSet;
use std::time::Duration;

use integration_tests::policy::{Call, Facts, Probe, Reply, Scenario, sorted_tally};
use integration_tests::upstream::Failing;
use serde_json::{Value, json};

use crate::config::{cluster, destination_rule, http_service, ready};
use crate::load_balancing::header_hash;
use crate::statuses;

/// Envoy's default `common_lb_config.update_merge_window`: health changes
/// within it of a cluster's last update reach the load balancers at its end.
const UPDATE_MERGE_WINDOW: Duration = Duration::from_secs(1);

pub fn scenarios() -> Vec<Scenario> {
    vec![
        round_robin(),
        pool_overflow(),
        max_requests_per_connection(),
        max_connection_duration(),
        use_client_protocol(),
        header_hash(
            "DR consistentHash httpHeaderName",
            "hash-header.example.com",
            None,
        ),
        hash_by_cookie(),
        hash_by_source_ip(),
        outlier_detection(),
    ]
}

/// A service on servers a, b and c with a DestinationRule of
/// `traffic_policy`.
pub fn three_servers(host: &str, traffic_policy: Value) -> Vec<(String, String)> {
    vec![
        http_service(host, &["a", "b", "c"]),
        destination_rule(host, traffic_policy),
    ]
}

pub fn served_by(replies: &[Reply]) -> String {
    sorted_tally(replies.iter().map(Reply::served_by))
}

/// How many distinct servers answered `replies`.
pub fn distinct_servers(replies: &[Reply]) -> usize {
    replies
        .iter()
        .map(Reply::served_by)
        .collect::<BTreeSet<_>>()
        .len()
}

/// `loadBalancer.simple: ROUND_ROBIN` over three endpoints: Envoy's round
/// robin gives each host the same share of sequential requests.
fn round_robin() -> Scenario {
    const HOST: &str = "rr.example.com";
    Scenario::new(
        "DR loadBalancer ROUND_ROBIN",
        three_servers(HOST, json!({ "loadBalancer": { "simple": "ROUND_ROBIN" } })),
        |probe| {
            let replies = probe.send_times(&Call::get(HOST, "/"), 6)?;
            Ok(Facts::new()
                .with("statuses", statuses(&replies))
                .with("served by", served_by(&replies)))
        },
        Facts::new()
            .with("statuses", "200×6")
            .with("served by", "a×2 b×2 c×2"),
    )
    .ready(ready(HOST, 3))
}

/// `outlierDetection` with `consecutive5xxErrors: 1`: server c answers 500
/// to everything. Envoy ejects a host on the error that reaches the count,
/// and its load balancers skip it from then on: `/clusters` shows it
/// `/failed_outlier_check` and one enforced consecutive-5xx ejection is
/// counted. A health change reaches the load balancers at once only
/// outside the cluster's `update_merge_window` (1 s by default, istiod
/// leaves it unset): within 1 s of the cluster's last update it waits for
/// the window's end, so the probe lets the endpoints settle for longer
/// than that first. `maxEjectionPercent: 100` lets the one host of three go.
fn outlier_detection() -> Scenario {
    const HOST: &str = "outlier.example.com";
    Scenario::new(
        "DR outlierDetection consecutive5xxErrors",
        three_servers(
            HOST,
            json!({ "loadBalancer": { "simple": "ROUND_ROBIN" },
                    "outlierDetection": {
                        "consecutive5xxErrors": 1,
                        "interval": "1s",
                        "baseEjectionTime": "5m",
                        "maxEjectionPercent": 100,
            } }),
        ),
        |probe| {
            probe.fail("c", Failing::Always(500))?;
            std::thread::sleep(UPDATE_MERGE_WINDOW + Duration::from_millis(500));
            let replies = probe.send_times(&Call::get(HOST, "/"), 9)?;
            let cluster = cluster(HOST);
            Ok(Facts::new()
                .with("statuses", sorted_tally(replies.iter().map(Reply::result)))
                .with("c served", probe.received("c")?.len())
                .with("c health_flags", probe.health_flags(&cluster, "c")?)
                .with(
                    "outlier_detection.ejections_enforced_consecutive_5xx",
                    probe.cluster_stat(
                        &cluster,
                        "outlier_detection.ejections_enforced_consecutive_5xx",
                    )?,
                )
                .with(
                    "outlier_detection.ejections_active",
                    probe.cluster_stat(&cluster, "outlier_detection.ejections_active")?,
                ))
        },
        Facts::new()
            .with("statuses", "200×8 500×1")
            .with("c served", 1)
            .with("c health_flags", "/failed_outlier_check")
            .with("outlier_detection.ejections_enforced_consecutive_5xx", 1)
            .with("outlier_detection.ejections_active", 1),
    )
    .ready(ready(HOST, 3))
}

/// `tcp.maxConnections: 1` and `http.http1MaxPendingRequests: 1`, four
/// requests at once to a server that answers after 2 s: one is served on
/// the one connection, one waits for it, the other two overflow with
/// Envoy's 503 (flag UO) and count in `upstream_rq_pending_overflow`, not
/// in `upstream_rq_total`, which counts the two requests the connection
/// took.
fn pool_overflow() -> Scenario {
    const HOST: &str = "pool.example.com";
    Scenario::new(
        "DR connectionPool overflow",
        vec![
            http_service(HOST, &["a"]),
            destination_rule(
                HOST,
                json!({ "connectionPool": {
                    "tcp": { "maxConnections": 1 },
                    "http": { "http1MaxPendingRequests": 1 },
                } }),
            ),
        ],
        |probe| {
            let call = Call::get(HOST, "/delay/2");
            let replies = probe.send_parallel(&[call.clone(), call.clone(), call.clone(), call])?;
            let overflow = replies.iter().find(|reply| reply.status == 503);
            Ok(Facts::new()
                .with("statuses", sorted_tally(replies.iter().map(Reply::result)))
                .with("503 body", overflow.map_or("-", |reply| reply.body.trim()))
                .with("log", sorted_tally(probe.log()))
                .with(
                    "upstream_rq_pending_overflow",
                    probe.cluster_stat(&cluster(HOST), "upstream_rq_pending_overflow")?,
                )
                .with(
                    "upstream_rq_total",
                    probe.cluster_stat(&cluster(HOST), "upstream_rq_total")?,
                ))
        },
        Facts::new()
            .with("statuses", "200×2 503×2")
            .with(
                "503 body",
                "upstream connect error or disconnect/reset before headers. reset reason: overflow",
            )
            .with("log", "200 -×2 503 UO×2")
            .with("upstream_rq_pending_overflow", 2)
            .with("upstream_rq_total", 2),
    )
    .ready(ready(HOST, 1))
}

/// `http.maxRequestsPerConnection: 1`: each request gets a connection of
/// its own (without it, sequential requests share one kept-alive
/// connection).
fn max_requests_per_connection() -> Scenario {
    const HOST: &str = "perconn.example.com";
    Scenario::new(
        "DR maxRequestsPerConnection 1",
        vec![
            http_service(HOST, &["a"]),
            destination_rule(
                HOST,
                json!({ "connectionPool": { "http": { "maxRequestsPerConnection": 1 } } }),
            ),
        ],
        |probe| {
            let replies = probe.send_times(&Call::get(HOST, "/"), 3)?;
            statuses_and_connections(probe, &replies)
        },
        Facts::new()
            .with("statuses", "200×3")
            .with("upstream connections", 3),
    )
    .ready(ready(HOST, 1))
}

/// `tcp.maxConnectionDuration: 1s` on an HTTP service: a pooled upstream
/// connection older than that takes no new request, so a request 1.5 s
/// after the first goes out on a new connection, and the old one counts
/// once in `upstream_cx_max_duration_reached`.
fn max_connection_duration() -> Scenario {
    const HOST: &str = "maxduration.example.com";
    Scenario::new(
        "DR tcp maxConnectionDuration",
        vec![
            http_service(HOST, &["a"]),
            destination_rule(
                HOST,
                json!({ "connectionPool": { "tcp": { "maxConnectionDuration": "1s" } } }),
            ),
        ],
        |probe| {
            Ok(requests_past_a_second(probe, HOST)?.with(
                "upstream_cx_max_duration_reached",
                probe.cluster_stat(&cluster(HOST), "upstream_cx_max_duration_reached")?,
            ))
        },
        Facts::new()
            .with("statuses", "200×2")
            .with("upstream connections", 2)
            .with("upstream_cx_max_duration_reached", 1),
    )
    .ready(ready(HOST, 1))
}

/// Two GETs to `host`, 1.5 s apart, so that a 1 s limit on the pooled
/// upstream connection passes between them: their statuses and how many
/// upstream connections server `a` saw them on.
pub fn requests_past_a_second(probe: &Probe<'_>, host: &str) -> anyhow::Result<Facts> {
    let call = Call::get(host, "/");
    let mut replies = vec![probe.send(&call)?];
    std::thread::sleep(Duration::from_millis(1500));
    replies.push(probe.send(&call)?);
    statuses_and_connections(probe, &replies)
}

/// The statuses of `replies` and how many upstream connections server `a`
/// saw requests on.
fn statuses_and_connections(probe: &Probe<'_>, replies: &[Reply]) -> anyhow::Result<Facts> {
    let connections: BTreeSet<_> = probe
        .received("a")?
        .iter()
        .map(|request| request.peer)
        .collect();
    Ok(Facts::new()
        .with("statuses", statuses(replies))
        .with("upstream connections", connections.len()))
}

/// `http.useClientProtocol`: the upstream request goes out in the HTTP
/// version the app spoke (HTTP/2 for an h2c client, HTTP/1.1 otherwise),
/// where without it the cluster speaks HTTP/1.1 only.
fn use_client_protocol() -> Scenario {
    const HOST: &str = "clientprotocol.example.com";
    Scenario::new(
        "DR http useClientProtocol",
        vec![
            http_service(HOST, &["a"]),
            destination_rule(
                HOST,
                json!({ "connectionPool": { "http": { "useClientProtocol": true } } }),
            ),
        ],
        |probe| {
            let h2 = probe.send(&Call::get(HOST, "/").http2())?;
            let h1 = probe.send(&Call::get(HOST, "/"))?;
            let versions: Vec<String> = probe
                .received("a")?
                .into_iter()
                .map(|request| request.version)
                .collect();
            Ok(Facts::new().with("statuses", statuses(&[h2, h1])).with(
                "upstream versions (h2c app, HTTP/1.1 app)",
                versions.join(" "),
            ))
        },
        Facts::new().with("statuses", "200×2").with(
            "upstream versions (h2c app, HTTP/1.1 app)",
            "HTTP/2.0 HTTP/1.1",
        ),
    )
    .ready(ready(HOST, 1))
}

/// `consistentHash.httpCookie` with a ttl: a request without the cookie
/// gets one set (Envoy generates it: name, `Max-Age` of the ttl, the
/// path); requests sending it back stick to one server.
fn hash_by_cookie() -> Scenario {
    const HOST: &str = "hash-cookie.example.com";
    Scenario::new(
        "DR consistentHash httpCookie ttl",
        three_servers(
            HOST,
            json!({ "loadBalancer": { "consistentHash": { "httpCookie": {
                "name": "session", "path": "/", "ttl": "60s",
            } } } }),
        ),
        |probe| {
            let first = probe.send(&Call::get(HOST, "/"))?;
            let set_cookie = first.header("set-cookie").unwrap_or("-").to_string();
            let cookie = set_cookie.split(';').next().unwrap_or_default().to_string();
            let again = probe.send_times(&Call::get(HOST, "/").header("cookie", &cookie), 10)?;
            Ok(Facts::new()
                .with("first status", first.result())
                .with("set-cookie, value hidden", hide_cookie_value(&set_cookie))
                .with("with the cookie: statuses", statuses(&again))
                .with("with the cookie: servers", distinct_servers(&again)))
        },
        Facts::new()
            .with("first status", 200)
            .with(
                "set-cookie, value hidden",
                "session=…; Max-Age=60; Path=/; HttpOnly",
            )
            .with("with the cookie: statuses", "200×10")
            .with("with the cookie: servers", 1),
    )
    .ready(ready(HOST, 3))
}

/// `session="1234"; Max-Age=60` → `session=…; Max-Age=60`.
fn hide_cookie_value(set_cookie: &str) -> String {
    let mut parts = set_cookie.split(';');
    let name = parts
        .next()
        .and_then(|pair| pair.split_once('='))
        .map_or("-", |(name, _)| name);
    std::iter::once(format!("{name}=…"))
        .chain(parts.map(|part| part.trim().to_string()))
        .collect::<Vec<_>>()
        .join("; ")
}

/// `consistentHash.useSourceIp`: every request of the app (one source
/// address) reaches the same server.
fn hash_by_source_ip() -> Scenario {
    const HOST: &str = "hash-ip.example.com";
    Scenario::new(
        "DR consistentHash useSourceIp",
        three_servers(
            HOST,
            json!({ "loadBalancer": { "consistentHash": { "useSourceIp": true } } }),
        ),
        |probe: &Probe<'_>| {
            let replies = probe.send_times(&Call::get(HOST, "/"), 10)?;
            Ok(Facts::new()
                .with("statuses", statuses(&replies))
                .with("servers", distinct_servers(&replies)))
        },
        Facts::new().with("statuses", "200×10").with("servers", 1),
    )
    .ready(ready(HOST, 3))
}
