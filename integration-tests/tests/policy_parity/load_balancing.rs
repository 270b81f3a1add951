//! Load-balancer choices of a DestinationRule beside round robin and the
//! header, cookie and source-address hashes: LEAST_REQUEST, RANDOM,
//! PASSTHROUGH, the query-parameter hash, the ring-hash and Maglev tables,
//! and a per-port and a per-subset policy over the default.

use anyhow::Result;
use integration_tests::policy::{Call, Facts, Probe, Ready, Scenario, sorted_tally};
use serde_json::{Value, json};

use crate::config::{destination_rule, ready, resource, service_on_ports, virtual_service};
use crate::destination_rule::{distinct_servers, served_by, three_servers};
use crate::statuses;

pub fn scenarios() -> Vec<Scenario> {
    vec![
        every_host_serves(
            "DR loadBalancer LEAST_REQUEST: every host serves",
            "lb-least-request.example.com",
            "LEAST_REQUEST",
        ),
        every_host_serves(
            "DR loadBalancer RANDOM: every host serves",
            "lb-random.example.com",
            "RANDOM",
        ),
        hash_by_query_parameter(),
        header_hash(
            "DR consistentHash ringHash",
            "hash-ring.example.com",
            Some(("ringHash", json!({ "minimumRingSize": 1024 }))),
        ),
        header_hash(
            "DR consistentHash maglev",
            "hash-maglev.example.com",
            Some(("maglev", json!({ "tableSize": 65537 }))),
        ),
        port_level_load_balancer(),
        passthrough(),
        subset_load_balancer(),
    ]
}

/// Requests for one key, then for twenty keys (`call_for` makes the
/// request carrying a key): a consistent hash sends one key to one server
/// and spreads many over several.
fn hash_spread(probe: &Probe<'_>, call_for: impl Fn(&str) -> Call) -> Result<Facts> {
    let same = probe.send_times(&call_for("alice"), 10)?;
    let many = (0..20)
        .map(|user| probe.send(&call_for(&format!("user-{user}"))))
        .collect::<Result<Vec<_>>>()?;
    Ok(Facts::new()
        .with("one value: statuses", statuses(&same))
        .with("one value: servers", distinct_servers(&same))
        .with(
            "20 values: more than one server",
            distinct_servers(&many) > 1,
        ))
}

/// What [`hash_spread`] states of a consistent hash.
fn hashed_facts() -> Facts {
    Facts::new()
        .with("one value: statuses", "200×10")
        .with("one value: servers", 1)
        .with("20 values: more than one server", true)
}

/// Scenario `name`: service `host` with `loadBalancer.simple: <simple>` over three endpoints and 30 sequential
/// requests: with no request outstanding, least-request's choice of two
/// and random both pick among all hosts, so each serves some (the chance
/// one of three gets none of 30 random picks is below 1 in 50,000).
fn every_host_serves(name: &'static str, host: &'static str, simple: &str) -> Scenario {
    Scenario::new(
        name,
        three_servers(host, json!({ "loadBalancer": { "simple": simple } })),
        move |probe| {
            let replies = probe.send_times(&Call::get(host, "/"), 30)?;
            Ok(Facts::new()
                .with("statuses", statuses(&replies))
                .with("servers", distinct_servers(&replies)))
        },
        Facts::new().with("statuses", "200×30").with("servers", 3),
    )
    .ready(ready(host, 3))
}

/// `consistentHash.httpQueryParameterName: user`: one `?user=` value
/// always reaches the same server; many values spread over several.
fn hash_by_query_parameter() -> Scenario {
    const HOST: &str = "hash-query.example.com";
    Scenario::new(
        "DR consistentHash httpQueryParameterName",
        three_servers(
            HOST,
            json!({ "loadBalancer": { "consistentHash": { "httpQueryParameterName": "user" } } }),
        ),
        |probe| hash_spread(probe, |user| Call::get(HOST, &format!("/?user={user}"))),
        hashed_facts(),
    )
    .ready(ready(HOST, 3))
}

/// Scenario `name`: service `host` with a hash of header `x-user`, over
/// `table` if one is given (`ringHash` or `maglev`, and its settings):
/// one header value always reaches the same server; many values spread
/// over several.
pub fn header_hash(
    name: &'static str,
    host: &'static str,
    table: Option<(&str, Value)>,
) -> Scenario {
    let mut consistent_hash = json!({ "httpHeaderName": "x-user" });
    if let Some((table, settings)) = table {
        consistent_hash[table] = settings;
    }
    Scenario::new(
        name,
        three_servers(
            host,
            json!({ "loadBalancer": { "consistentHash": consistent_hash } }),
        ),
        move |probe| hash_spread(probe, |user| Call::get(host, "/").header("x-user", user)),
        hashed_facts(),
    )
    .ready(ready(host, 3))
}

/// A header hash by default and `simple: ROUND_ROBIN` in
/// `portLevelSettings` for port 80: the port's policy wins, so six
/// requests with one header value go round the three hosts.
fn port_level_load_balancer() -> Scenario {
    const HOST: &str = "lb-port.example.com";
    Scenario::new(
        "DR portLevelSettings loadBalancer over the default",
        three_servers(
            HOST,
            json!({
                "loadBalancer": { "consistentHash": { "httpHeaderName": "x-user" } },
                "portLevelSettings": [{
                    "port": { "number": 80 },
                    "loadBalancer": { "simple": "ROUND_ROBIN" },
                }],
            }),
        ),
        |probe| {
            let replies = probe.send_times(&Call::get(HOST, "/").header("x-user", "alice"), 6)?;
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

/// `simple: PASSTHROUGH`: istiod makes the service's cluster an
/// ORIGINAL_DST one (`CLUSTER_PROVIDED`, no endpoints), so each request
/// goes to the address the app dialled and not to the entry's endpoints:
/// the entry is on server b's port with STATIC endpoints a and c, the app
/// dials b.
fn passthrough() -> Scenario {
    const HOST: &str = "lb-passthrough.example.com";
    let port = |server: &'static str| (server, format!("${{PORT_{server}}}"));
    Scenario::new(
        "DR loadBalancer PASSTHROUGH: the address the app dialled",
        vec![
            service_on_ports(HOST, "${PORT_b}", "HTTP", &[port("a"), port("c")]),
            destination_rule(HOST, json!({ "loadBalancer": { "simple": "PASSTHROUGH" } })),
        ],
        |probe| {
            let url = format!("http://{HOST}:{}/", probe.port("b")?);
            let replies = probe.send_times(&Call::get(HOST, "/").url(&url), 4)?;
            Ok(Facts::new()
                .with("statuses", statuses(&replies))
                .with("served by", served_by(&replies))
                .with("log", sorted_tally(probe.log())))
        },
        Facts::new()
            .with("statuses", "200×4")
            .with("served by", "b×4")
            .with("log", "200 -×4"),
    )
    .ready(vec![
        Ready::has("${PORT_b}", HOST),
        Ready::has(format!("outbound|${{PORT_b}}||{HOST}"), "ORIGINAL_DST"),
    ])
}

/// A header hash in the rule's `trafficPolicy` and `simple: ROUND_ROBIN`
/// in subset `pool`'s (every endpoint, labelled `server: pool`): the
/// subset's cluster takes the subset's policy, the service's keeps the
/// rule's. Six requests with one header value go round the three hosts
/// through the subset, and to one host without it.
fn subset_load_balancer() -> Scenario {
    const HOST: &str = "lb-subset.example.com";
    let pool = |server: &str| ("pool", format!("${{PORT_{server}}}"));
    Scenario::new(
        "DR subset trafficPolicy loadBalancer over the rule's",
        vec![
            service_on_ports(HOST, 80, "HTTP", &[pool("a"), pool("b"), pool("c")]),
            resource(
                "dr",
                HOST,
                "DestinationRule",
                json!({
                    "host": HOST,
                    "trafficPolicy": {
                        "loadBalancer": { "consistentHash": { "httpHeaderName": "x-user" } },
                    },
                    "subsets": [{
                        "name": "pool",
                        "labels": { "server": "pool" },
                        "trafficPolicy": { "loadBalancer": { "simple": "ROUND_ROBIN" } },
                    }],
                }),
            ),
            virtual_service(
                HOST,
                json!([
                    {
                        "match": [{ "uri": { "prefix": "/subset" } }],
                        "route": [{ "destination": { "host": HOST, "subset": "pool" } }],
                    },
                    { "route": [{ "destination": { "host": HOST } }] },
                ]),
            ),
        ],
        |probe| {
            let call = |path: &str| Call::get(HOST, path).header("x-user", "alice");
            let subset = probe.send_times(&call("/subset"), 6)?;
            let service = probe.send_times(&call("/"), 6)?;
            Ok(Facts::new()
                .with("subset: statuses", statuses(&subset))
                .with("subset: served by", served_by(&subset))
                .with("service: statuses", statuses(&service))
                .with("service: servers", distinct_servers(&service)))
        },
        Facts::new()
            .with("subset: statuses", "200×6")
            .with("subset: served by", "a×2 b×2 c×2")
            .with("service: statuses", "200×6")
            .with("service: servers", 1),
    )
    .ready(
        ready(HOST, 3)
            .into_iter()
            .chain([Ready::endpoints(format!("outbound|80|pool|{HOST}"), 3)])
            .collect(),
    )
}
