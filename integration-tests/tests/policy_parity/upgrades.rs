//! HTTP/1.1 upgrades through the sidecar's HTTP connection manager, whose
//! `upgrade_configs` istiod sets to `websocket` alone.

use integration_tests::policy::{Facts, Scenario, sorted_tally};
use integration_tests::websocket::{ACCEPT, KEY, REFUSED_KEY};

use crate::config::{http_service, ready};

pub fn scenarios() -> Vec<Scenario> {
    vec![websocket()]
}

/// A WebSocket handshake is passed to the upstream and its 101 (with the
/// accept value RFC 6455 derives from the key) back to the app, after
/// which the connection carries frames both ways; a handshake the upstream
/// refuses gets the upstream's 400; an upgrade to a protocol the
/// connection manager does not name is refused by the proxy itself with
/// 403 (Envoy's `upgrade_failed`), the upstream never asked. Each is one
/// access log line, the switched one logged when the app closes it, with
/// flag DC (the downstream ended the stream).
fn websocket() -> Scenario {
    const HOST: &str = "websocket.example.com";
    Scenario::new(
        "WebSocket upgrade",
        vec![http_service(HOST, &["a"])],
        |probe| {
            let switched = probe.upgrade(HOST, "/chat", "websocket", KEY)?;
            let refused = probe.upgrade(HOST, "/chat", "websocket", REFUSED_KEY)?;
            let other = probe.upgrade(HOST, "/chat", "example-protocol", KEY)?;
            let upstream: Vec<String> = probe
                .received("a")?
                .iter()
                .map(|request| request.header("upgrade").unwrap_or("-").to_string())
                .collect();
            Ok(Facts::new()
                .with("websocket: status", &switched.status)
                .with(
                    "websocket: accept is the key's",
                    switched.header("sec-websocket-accept") == ACCEPT.to_ascii_lowercase(),
                )
                .with("websocket: upgrade", switched.header("upgrade"))
                .with("websocket: frame echoed", switched.echoed)
                .with("refused key: status", &refused.status)
                .with("other protocol: status", &other.status)
                .with("upgrade headers upstream", upstream.join(" "))
                .with("log", sorted_tally(probe.log())))
        },
        Facts::new()
            .with("websocket: status", 101)
            .with("websocket: accept is the key's", true)
            .with("websocket: upgrade", "websocket")
            .with("websocket: frame echoed", true)
            .with("refused key: status", 400)
            .with("other protocol: status", 403)
            .with("upgrade headers upstream", "websocket websocket")
            .with("log", "101 DC×1 400 -×1 403 -×1"),
    )
    .ready(ready(HOST, 1))
}
