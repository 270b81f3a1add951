//! VirtualService match scenarios: each request goes to the server the
//! first matching route names (subsets a, b, c), the last route (a)
//! taking the rest.

use anyhow::Result;
use integration_tests::policy::{Call, Facts, Probe, Ready, Scenario};
use serde_json::{Value, json};

use crate::config::{http_service, resource, server_subsets, virtual_service};

pub fn scenarios() -> Vec<Scenario> {
    vec![request_matches(), source_matches(), gateway_matches()]
}

/// A route of requests matching `condition` to subset `server`.
fn matching(condition: Value, server: &str) -> Value {
    json!({ "match": [condition], "route": [{ "destination": { "host": "", "subset": server } }] })
}

/// `host`'s service on a, b and c with `routes` and a last route to a.
fn routed(host: &str, routes: Vec<Value>) -> Vec<(String, String)> {
    let routes: Vec<Value> = routes
        .into_iter()
        .chain([json!({ "route": [{ "destination": { "host": host, "subset": "a" } }] })])
        .map(|mut route| {
            route["route"][0]["destination"]["host"] = json!(host);
            route
        })
        .collect();
    vec![
        http_service(host, &["a", "b", "c"]),
        server_subsets(host, &["a", "b", "c"]),
        virtual_service(host, Value::Array(routes)),
    ]
}

fn ready(host: &str) -> Vec<Ready> {
    ["a", "b", "c"]
        .into_iter()
        .map(|server| Ready::endpoints(format!("outbound|80|{server}|{host}"), 1))
        .chain([Ready::has("80", host)])
        .collect()
}

/// Facts `<call> → <server>` for each of `calls`.
fn served(probe: &Probe<'_>, calls: &[(&str, Call)]) -> Result<Facts> {
    let mut facts = Facts::new();
    for (name, call) in calls {
        let reply = probe.send(call)?;
        facts.set(name, format!("{} {}", reply.result(), reply.served_by()));
    }
    Ok(facts)
}

/// `queryParams`, `ignoreUriCase`, `withoutHeaders`, `scheme`,
/// `authority` and `port`, as Istio's docs define them.
fn request_matches() -> Scenario {
    const HOST: &str = "match.example.com";
    let path = |path: &str| json!({ "exact": path });
    Scenario::new(
        "VS matches",
        routed(
            HOST,
            vec![
                matching(json!({ "queryParams": { "v": { "exact": "1" } } }), "b"),
                matching(json!({ "uri": path("/upper"), "ignoreUriCase": true }), "c"),
                matching(
                    json!({ "uri": path("/without"), "withoutHeaders": { "x-keep": { "exact": "1" } } }),
                    "b",
                ),
                matching(json!({ "uri": path("/scheme"), "scheme": { "exact": "http" } }), "c"),
                matching(
                    json!({ "uri": path("/authority"), "authority": { "prefix": "match.example" } }),
                    "b",
                ),
                matching(json!({ "uri": path("/port"), "port": 81 }), "b"),
                matching(json!({ "uri": path("/port"), "port": 80 }), "c"),
            ],
        ),
        |probe| {
            served(
                probe,
                &[
                    ("GET /?v=1", Call::get(HOST, "/?v=1")),
                    ("GET /?v=2", Call::get(HOST, "/?v=2")),
                    ("GET /UPPER", Call::get(HOST, "/UPPER")),
                    ("GET /without", Call::get(HOST, "/without")),
                    ("GET /without x-keep: 1", Call::get(HOST, "/without").header("x-keep", "1")),
                    ("GET /scheme", Call::get(HOST, "/scheme")),
                    ("GET /authority", Call::get(HOST, "/authority")),
                    ("GET /port", Call::get(HOST, "/port")),
                ],
            )
        },
        Facts::new()
            .with("GET /?v=1", "200 b")
            .with("GET /?v=2", "200 a")
            .with("GET /UPPER", "200 c")
            .with("GET /without", "200 b")
            .with("GET /without x-keep: 1", "200 a")
            .with("GET /scheme", "200 c")
            .with("GET /authority", "200 b")
            .with("GET /port", "200 c"),
    )
    .ready(ready(HOST))
}

/// `sourceLabels` and `sourceNamespace`: a route applies only to the
/// sidecars they select (the app is `app: sleep` in `default`).
fn source_matches() -> Scenario {
    const HOST: &str = "source.example.com";
    Scenario::new(
        "VS sourceLabels, sourceNamespace",
        routed(
            HOST,
            vec![
                matching(json!({ "sourceLabels": { "app": "other" } }), "b"),
                matching(
                    json!({ "sourceNamespace": "other", "uri": { "exact": "/ns" } }),
                    "b",
                ),
                matching(
                    json!({ "sourceLabels": { "app": "sleep" }, "uri": { "exact": "/labels" } }),
                    "c",
                ),
                matching(
                    json!({ "sourceNamespace": "default", "uri": { "exact": "/ns" } }),
                    "c",
                ),
            ],
        ),
        |probe| {
            served(
                probe,
                &[
                    ("GET /", Call::get(HOST, "/")),
                    ("GET /labels", Call::get(HOST, "/labels")),
                    ("GET /ns", Call::get(HOST, "/ns")),
                ],
            )
        },
        Facts::new()
            .with("GET /", "200 a")
            .with("GET /labels", "200 c")
            .with("GET /ns", "200 c"),
    )
    .ready(ready(HOST))
}

/// `match.gateways` in a VirtualService bound to `mesh` and an egress
/// gateway: a match naming only the gateway is left out of the sidecar's
/// routes, one naming `mesh` is kept.
fn gateway_matches() -> Scenario {
    const HOST: &str = "gateways.example.com";
    const GATEWAY: &str = "istio-egressgateway";
    let subset = |server: &str| json!([{ "destination": { "host": HOST, "subset": server } }]);
    let mut files = routed(HOST, Vec::new());
    files.pop();
    files.push(resource(
        "vs",
        HOST,
        "VirtualService",
        json!({
            "hosts": [HOST],
            "gateways": ["mesh", GATEWAY],
            "http": [
                { "match": [{ "gateways": [GATEWAY], "uri": { "prefix": "/gw" } }],
                  "route": subset("b") },
                { "match": [{ "gateways": ["mesh"], "uri": { "exact": "/gw-or-mesh" } }],
                  "route": subset("c") },
                { "route": subset("a") },
            ],
        }),
    ));
    Scenario::new(
        "VS match.gateways",
        files,
        |probe| {
            served(
                probe,
                &[
                    ("GET /gw (gateway only)", Call::get(HOST, "/gw")),
                    ("GET /gw-or-mesh (mesh)", Call::get(HOST, "/gw-or-mesh")),
                ],
            )
        },
        Facts::new()
            .with("GET /gw (gateway only)", "200 a")
            .with("GET /gw-or-mesh (mesh)", "200 c"),
    )
    .ready(ready(HOST))
}
