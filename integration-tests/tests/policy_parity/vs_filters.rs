//! VirtualService scenarios run by HTTP filters and the router's
//! policies: fault injection, mirroring (`mirror` and `mirrors`), CORS,
//! per-destination headers.

use std::time::Duration;

use anyhow::ensure;
use integration_tests::policy::{Call, Facts, Ready, Scenario, at_least, tally};
use integration_tests::process::eventually;
use integration_tests::upstream::RecordedRequest;
use serde_json::json;

use crate::config::{http_service, ready, route_to, server_subsets, virtual_service};
use crate::statuses;
use crate::virtual_service::one_route;

pub fn scenarios() -> Vec<Scenario> {
    vec![
        fault_abort(),
        fault_delay(),
        fault_abort_half(),
        fault_delay_half(),
        mirror(),
        mirrors(),
        cors(),
        destination_headers(),
    ]
}

/// `fault.abort` for every request: the app gets the status without the
/// upstream being reached, body `fault filter abort`, flag FI.
fn fault_abort() -> Scenario {
    const HOST: &str = "abort.example.com";
    Scenario::new(
        "VS fault abort 100%",
        one_route(
            HOST,
            json!({ "fault": { "abort": { "httpStatus": 418, "percentage": { "value": 100 } } } }),
        ),
        |probe| {
            let reply = probe.send(&Call::get(HOST, "/"))?;
            Ok(Facts::new()
                .with("status", reply.result())
                .with("body", reply.body.trim())
                .with("upstream requests", probe.received("a")?.len())
                .with("log", probe.log().join("; ")))
        },
        Facts::new()
            .with("status", 418)
            .with("body", "fault filter abort")
            .with("upstream requests", 0)
            .with("log", "418 FI"),
    )
    .ready(ready(HOST, 1))
}

/// `fault.delay` of 1 s for every request: served, not before 1 s, flag
/// DI.
fn fault_delay() -> Scenario {
    const HOST: &str = "delay.example.com";
    Scenario::new(
        "VS fault delay 1s",
        one_route(
            HOST,
            json!({ "fault": { "delay": { "fixedDelay": "1s", "percentage": { "value": 100 } } } }),
        ),
        |probe| {
            let reply = probe.send(&Call::get(HOST, "/"))?;
            Ok(Facts::new()
                .with("status", reply.result())
                .with("elapsed", at_least(reply.elapsed, Duration::from_secs(1)))
                .with("log", probe.log().join("; ")))
        },
        Facts::new()
            .with("status", 200)
            .with("elapsed", "≥ 1s")
            .with("log", "200 DI"),
    )
    .ready(ready(HOST, 1))
}

/// `fault.abort` at `percentage: 50`, drawn for each request: of
/// [`HALF_ABORT_REQUESTS`] some get the status with flag FI without
/// reaching the upstream, the others are served, and the aborted share
/// lies well inside 25%..75% (more than seven standard deviations from
/// either end).
fn fault_abort_half() -> Scenario {
    const HOST: &str = "abort-half.example.com";
    Scenario::new(
        "VS fault abort 50%",
        one_route(
            HOST,
            json!({ "fault": { "abort": { "httpStatus": 503, "percentage": { "value": 50 } } } }),
        ),
        |probe| {
            let replies = probe.send_times(&Call::get(HOST, "/"), HALF_ABORT_REQUESTS)?;
            let aborted = replies.iter().filter(|reply| reply.status == 503).count();
            let served = replies.iter().filter(|reply| reply.status == 200).count();
            let log = probe.log();
            Ok(Facts::new()
                .with(
                    "statuses",
                    distinct(replies.iter().map(|r| r.result()), " "),
                )
                .with("aborted share", share_band(aborted, replies.len()))
                .with(
                    "aborted + served",
                    format!("{} of {}", aborted + served, replies.len()),
                )
                .with(
                    "upstream requests",
                    equal_or_both(probe.received("a")?.len(), served, "served"),
                )
                .with(
                    "FI lines",
                    equal_or_both(
                        log.iter().filter(|line| *line == "503 FI").count(),
                        aborted,
                        "aborted",
                    ),
                )
                .with("log kinds", distinct(log.iter().cloned(), "; ")))
        },
        Facts::new()
            .with("statuses", "200 503")
            .with("aborted share", "25%..75%")
            .with(
                "aborted + served",
                format!("{HALF_ABORT_REQUESTS} of {HALF_ABORT_REQUESTS}"),
            )
            .with("upstream requests", "= served")
            .with("FI lines", "= aborted")
            .with("log kinds", "200 -; 503 FI"),
    )
    .ready(ready(HOST, 1))
}

/// Requests sent by [`fault_abort_half`].
const HALF_ABORT_REQUESTS: usize = 200;

/// `fault.delay` of 500 ms at `percentage: 50`, drawn for each request: of
/// [`HALF_DELAY_REQUESTS`] all are served, some delayed (flag DI), some
/// not, and at least as many took ≥ 500 ms as were delayed.
fn fault_delay_half() -> Scenario {
    const HOST: &str = "delay-half.example.com";
    const DELAY: Duration = Duration::from_millis(500);
    Scenario::new(
        "VS fault delay 50%",
        one_route(
            HOST,
            json!({ "fault": { "delay": { "fixedDelay": "500ms", "percentage": { "value": 50 } } } }),
        ),
        |probe| {
            let replies = probe.send_times(&Call::get(HOST, "/"), HALF_DELAY_REQUESTS)?;
            let log = probe.log();
            let delayed = log.iter().filter(|line| *line == "200 DI").count();
            let slow = replies.iter().filter(|r| r.elapsed >= DELAY).count();
            Ok(Facts::new()
                .with("statuses", statuses(&replies))
                .with("delayed", some_of(delayed, replies.len()))
                .with(
                    "took ≥ 500ms",
                    if slow >= delayed {
                        "≥ delayed".to_string()
                    } else {
                        format!("{slow} < {delayed} delayed")
                    },
                )
                .with("log kinds", distinct(log.iter().cloned(), "; ")))
        },
        Facts::new()
            .with("statuses", format!("200×{HALF_DELAY_REQUESTS}"))
            .with("delayed", "some, not all")
            .with("took ≥ 500ms", "≥ delayed")
            .with("log kinds", "200 -; 200 DI"),
    )
    .ready(ready(HOST, 1))
}

/// Requests sent by [`fault_delay_half`].
const HALF_DELAY_REQUESTS: usize = 40;

/// The distinct values, sorted, joined by `separator`.
fn distinct(values: impl Iterator<Item = String>, separator: &str) -> String {
    let mut values: Vec<String> = values.collect();
    values.sort();
    values.dedup();
    values.join(separator)
}

/// `25%..75%` when `count` of `total` lies in that band, else the count.
fn share_band(count: usize, total: usize) -> String {
    if count * 4 >= total && count * 4 <= total * 3 {
        "25%..75%".to_string()
    } else {
        format!("{count} of {total}, outside 25%..75%")
    }
}

/// `some, not all` when `count` of `total` is neither none nor all.
fn some_of(count: usize, total: usize) -> String {
    if count > 0 && count < total {
        "some, not all".to_string()
    } else {
        format!("{count} of {total}")
    }
}

/// `= <name>` when `count` equals `expected`, else both numbers.
fn equal_or_both(count: usize, expected: usize, name: &str) -> String {
    if count == expected {
        format!("= {name}")
    } else {
        format!("{count}, {name} {expected}")
    }
}

/// `mirror` with `mirrorPercentage: 100`: the app's response comes from
/// the route's destination; a copy goes to the mirror, its Host suffixed
/// `-shadow`.
fn mirror() -> Scenario {
    const HOST: &str = "mirrored.example.com";
    const MIRROR: &str = "mirror.example.com";
    Scenario::new(
        "VS mirror 100%",
        vec![
            http_service(HOST, &["a"]),
            http_service(MIRROR, &["shadow"]),
            virtual_service(
                HOST,
                json!([route_to(
                    HOST,
                    json!({ "mirror": { "host": MIRROR }, "mirrorPercentage": { "value": 100 } }),
                )]),
            ),
        ],
        |probe| {
            let reply = probe.send(&Call::get(HOST, "/"))?;
            let shadowed = eventually(Duration::from_secs(5), || {
                let received = probe.received("shadow")?;
                ensure!(!received.is_empty(), "the mirror got nothing");
                Ok(received)
            })
            .unwrap_or_default();
            Ok(Facts::new()
                .with("status", reply.result())
                .with("served by", reply.served_by())
                .with("mirror requests", shadowed.len())
                .with(
                    "mirror Host",
                    shadowed
                        .first()
                        .and_then(|r| r.header("host"))
                        .unwrap_or("-"),
                ))
        },
        Facts::new()
            .with("status", 200)
            .with("served by", "a")
            .with("mirror requests", 1)
            .with("mirror Host", format!("{HOST}-shadow")),
    )
    .ready(ready(HOST, 1).into_iter().chain(ready(MIRROR, 1)).collect())
}

/// `mirrors`: each entry sends its copy to its own destination, at its
/// `percentage` (every request when unset, none at 0), the copy's Host
/// suffixed `-shadow`; the app's response comes from the route.
fn mirrors() -> Scenario {
    const HOST: &str = "mirrors.example.com";
    const TO_SHADOW: &str = "mirror-shadow.example.com";
    const TO_B: &str = "mirror-b.example.com";
    const TO_C: &str = "mirror-c.example.com";
    Scenario::new(
        "VS mirrors: one copy per entry",
        vec![
            http_service(HOST, &["a"]),
            http_service(TO_SHADOW, &["shadow"]),
            http_service(TO_B, &["b"]),
            http_service(TO_C, &["c"]),
            virtual_service(
                HOST,
                json!([route_to(
                    HOST,
                    json!({ "mirrors": [
                        { "destination": { "host": TO_SHADOW } },
                        { "destination": { "host": TO_B }, "percentage": { "value": 100 } },
                        { "destination": { "host": TO_C }, "percentage": { "value": 0 } },
                    ] }),
                )]),
            ),
        ],
        |probe| {
            let reply = probe.send(&Call::get(HOST, "/"))?;
            let (shadow, b) = eventually(Duration::from_secs(5), || {
                let copies = (probe.received("shadow")?, probe.received("b")?);
                ensure!(
                    !copies.0.is_empty() && !copies.1.is_empty(),
                    "a mirror got nothing"
                );
                Ok(copies)
            })
            .unwrap_or_default();
            let hosts = |requests: &[RecordedRequest]| {
                tally(requests.iter().map(|r| r.header("host").unwrap_or("-")))
            };
            Ok(Facts::new()
                .with("status", reply.result())
                .with("served by", reply.served_by())
                .with("shadow got (Host)", hosts(&shadow))
                .with("b got (Host)", hosts(&b))
                .with("c got (0%)", probe.received("c")?.len()))
        },
        Facts::new()
            .with("status", 200)
            .with("served by", "a")
            .with("shadow got (Host)", format!("{HOST}-shadow×1"))
            .with("b got (Host)", format!("{HOST}-shadow×1"))
            .with("c got (0%)", 0),
    )
    .ready(
        [HOST, TO_SHADOW, TO_B, TO_C]
            .into_iter()
            .flat_map(|host| ready(host, 1))
            .collect(),
    )
}

/// `corsPolicy`: a preflight from an allowed origin is answered by the
/// proxy with the policy; a simple request from it gets the allowed origin
/// and exposed headers; one from another origin gets no CORS headers.
fn cors() -> Scenario {
    const HOST: &str = "cors.example.com";
    const ORIGIN: &str = "https://app.example.com";
    Scenario::new(
        "VS corsPolicy",
        one_route(
            HOST,
            json!({ "corsPolicy": {
                "allowOrigins": [{ "exact": ORIGIN }],
                "allowMethods": ["GET", "POST"],
                "allowHeaders": ["x-custom"],
                "exposeHeaders": ["x-exposed"],
                "maxAge": "24h",
            } }),
        ),
        |probe| {
            let preflight = probe.send(
                &Call::get(HOST, "/")
                    .method("OPTIONS")
                    .header("origin", ORIGIN)
                    .header("access-control-request-method", "POST")
                    .header("access-control-request-headers", "x-custom"),
            )?;
            let upstream_after_preflight = probe.received("a")?.len();
            let simple = probe.send(&Call::get(HOST, "/").header("origin", ORIGIN))?;
            let other =
                probe.send(&Call::get(HOST, "/").header("origin", "https://other.example.com"))?;
            Ok(Facts::new()
                .with("preflight status", preflight.result())
                .with("preflight reached upstream", upstream_after_preflight)
                .with(
                    "preflight allow-origin",
                    preflight.header_or_dash("access-control-allow-origin"),
                )
                .with(
                    "preflight allow-methods",
                    preflight.header_or_dash("access-control-allow-methods"),
                )
                .with(
                    "preflight allow-headers",
                    preflight.header_or_dash("access-control-allow-headers"),
                )
                .with(
                    "preflight max-age",
                    preflight.header_or_dash("access-control-max-age"),
                )
                .with("simple status", simple.result())
                .with(
                    "simple allow-origin",
                    simple.header_or_dash("access-control-allow-origin"),
                )
                .with(
                    "simple expose-headers",
                    simple.header_or_dash("access-control-expose-headers"),
                )
                .with("other origin status", other.result())
                .with(
                    "other origin allow-origin",
                    other.header_or_dash("access-control-allow-origin"),
                ))
        },
        Facts::new()
            .with("preflight status", 200)
            .with("preflight reached upstream", 0)
            .with("preflight allow-origin", ORIGIN)
            .with("preflight allow-methods", "GET,POST")
            .with("preflight allow-headers", "x-custom")
            .with("preflight max-age", 86400)
            .with("simple status", 200)
            .with("simple allow-origin", ORIGIN)
            .with("simple expose-headers", "x-exposed")
            .with("other origin status", 200)
            .with("other origin allow-origin", "-"),
    )
    .ready(ready(HOST, 1))
}

/// `headers` on each of two weighted destinations (subsets a and b): each
/// upstream sees its destination's request headers, each response carries
/// its destination's response headers.
fn destination_headers() -> Scenario {
    const HOST: &str = "dest-headers.example.com";
    let destination = |server: &str| {
        json!({
            "destination": { "host": HOST, "subset": server },
            "weight": 50,
            "headers": {
                "request": { "set": { "x-destination": server }, "remove": ["x-remove"] },
                "response": { "set": { "x-destination-response": server }, "remove": ["content-type"] },
            },
        })
    };
    Scenario::new(
        "VS headers per destination",
        vec![
            http_service(HOST, &["a", "b"]),
            server_subsets(HOST, &["a", "b"]),
            virtual_service(
                HOST,
                json!([{ "route": [destination("a"), destination("b")] }]),
            ),
        ],
        |probe| {
            let replies = probe.send_times(&Call::get(HOST, "/").header("x-remove", "app"), 8)?;
            let mut upstream_mismatches = 0;
            for server in ["a", "b"] {
                upstream_mismatches += probe
                    .received(server)?
                    .iter()
                    .filter(|r| {
                        r.header("x-destination") != Some(server) || r.header("x-remove").is_some()
                    })
                    .count();
            }
            let response_mismatches = replies
                .iter()
                .filter(|r| {
                    r.header("x-destination-response") != Some(r.served_by().as_str())
                        || r.header("content-type").is_some()
                })
                .count();
            Ok(Facts::new()
                .with("statuses", statuses(&replies))
                .with(
                    "upstream requests not as their destination says",
                    upstream_mismatches,
                )
                .with(
                    "responses not as their destination says",
                    response_mismatches,
                ))
        },
        Facts::new()
            .with("statuses", "200×8")
            .with("upstream requests not as their destination says", 0)
            .with("responses not as their destination says", 0),
    )
    .ready(vec![
        Ready::endpoints(format!("outbound|80|a|{HOST}"), 1),
        Ready::endpoints(format!("outbound|80|b|{HOST}"), 1),
        Ready::has("80", "x-destination"),
    ])
}
