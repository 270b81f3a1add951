//! DestinationRule scenarios: load balancing, connection pools, outlier
//! detection.

use integration_tests::policy::{Call, Facts, Reply, Scenario, sorted_tally};
use serde_json::{Value, json};

use crate::config::{destination_rule, http_service, ready};
use crate::statuses;

pub fn scenarios() -> Vec<Scenario> {
    vec![round_robin()]
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
