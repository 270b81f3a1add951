//! Draining: a listener a config update removes, and the sidecar's end,
//! a stopping pod's drain, which runs last (the proxy is draining
//! afterwards).

use std::time::Duration;

use integration_tests::policy::{Facts, Ready, Scenario};
use serde_json::json;

use crate::config::service;
use crate::virtual_service::one_route;

pub fn scenarios() -> Vec<Scenario> {
    vec![listener_removed(), drain()]
}

/// The status line and the `Connection` header of a response head.
fn status_and_connection(head: &str) -> Facts {
    let status = head.lines().next().unwrap_or_default().to_string();
    let connection = head
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("connection"))
        .map_or("-".to_string(), |(_, value)| value.trim().to_string());
    Facts::new()
        .with("in-flight response", status)
        .with("connection", connection)
}

/// A request in flight on a kept-alive HTTP/1.1 connection to port 8080
/// when an update removes the service, and with it listener
/// `0.0.0.0_8080`: the listener drains instead of cutting its
/// connections (Envoy's drain of a removed listener, its strategy
/// immediate as the sidecar runs): the request finishes, its response
/// saying `Connection: close`.
fn listener_removed() -> Scenario {
    const HOST: &str = "removed.example.com";
    const LISTENER: &str = "0.0.0.0_8080";
    Scenario::new(
        "Listener removed by an update drains",
        vec![service(HOST, 8080, "HTTP", &["a"])],
        |probe| {
            let head = probe.exchange_across(
                (HOST, 8080, "/delay/3"),
                Duration::from_millis(500),
                || probe.serve_instead(&[], LISTENER),
            )?;
            Ok(status_and_connection(&head))
        },
        Facts::new()
            .with("in-flight response", "HTTP/1.1 200 OK")
            .with("connection", "close"),
    )
    .ready(vec![
        Ready::endpoints(format!("outbound|8080||{HOST}"), 1),
        Ready::has("8080", HOST),
        Ready::has(LISTENER, "8080"),
    ])
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
            Ok(status_and_connection(&head))
        },
        Facts::new()
            .with("in-flight response", "HTTP/1.1 200 OK")
            .with("connection", "close"),
    )
    .ready(crate::config::ready(HOST, 1))
}
