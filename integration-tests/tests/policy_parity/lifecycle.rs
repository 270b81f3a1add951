//! The sidecar's end: a stopping pod's drain. Runs last (the proxy is
//! draining afterwards).

use std::time::Duration;

use integration_tests::policy::{Facts, Scenario};
use serde_json::json;

use crate::virtual_service::one_route;

pub fn scenarios() -> Vec<Scenario> {
    vec![drain()]
}

/// A pod stopping while a request is in flight on a kept-alive HTTP/1.1
/// connection: the proxy drains (SIGTERM to our agent; pilot-agent's
/// graceful `/drain_listeners` to Envoy, started `--drain-strategy
/// immediate`): the request finishes, its response saying `Connection:
/// close`.
fn drain() -> Scenario {
    const HOST: &str = "drain.example.com";
    Scenario::new(
        "SIGTERM drain",
        one_route(HOST, json!({})),
        |probe| {
            let head = probe.exchange_across_drain(HOST, "/delay/2", Duration::from_millis(500))?;
            let status = head.lines().next().unwrap_or_default().to_string();
            let connection = head
                .lines()
                .filter_map(|line| line.split_once(':'))
                .find(|(name, _)| name.trim().eq_ignore_ascii_case("connection"))
                .map_or("-".to_string(), |(_, value)| value.trim().to_string());
            Ok(Facts::new()
                .with("in-flight response", status)
                .with("connection", connection))
        },
        Facts::new()
            .with("in-flight response", "HTTP/1.1 200 OK")
            .with("connection", "close"),
    )
    .ready(crate::config::ready(HOST, 1))
}
