//! DestinationRule scenarios: load balancing, connection pools.

use integration_tests::policy::{Call, Facts, Reply, Scenario, sorted_tally};
use serde_json::{Value, json};

use crate::config::{cluster, destination_rule, http_service, ready};
use crate::statuses;

pub fn scenarios() -> Vec<Scenario> {
    vec![round_robin(), pool_overflow()]
}

/// A service on servers a, b and c with a DestinationRule of
/// `traffic_policy`.
fn three_servers(host: &str, traffic_policy: Value) -> Vec<(String, String)> {
    vec![
        http_service(host, &["a", "b", "c"]),
        destination_rule(host, traffic_policy),
    ]
}

fn served_by(replies: &[Reply]) -> String {
    sorted_tally(replies.iter().map(Reply::served_by))
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

/// `tcp.maxConnections: 1` and `http.http1MaxPendingRequests: 1`, four
/// requests at once to a server that answers after 2 s: one is served on
/// the one connection, one waits for it, the other two overflow with
/// Envoy's 503 (flag UO) and count in `upstream_rq_pending_overflow`.
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
                ))
        },
        Facts::new()
            .with("statuses", "200×2 503×2")
            .with(
                "503 body",
                "upstream connect error or disconnect/reset before headers. reset reason: overflow",
            )
            .with("log", "200 -×2 503 UO×2")
            .with("upstream_rq_pending_overflow", 2),
    )
    .ready(ready(HOST, 1))
}
