//! `/drain_listeners`, as Envoy's admin handler: POST only; every open
//! connection is asked to close; the listeners stop accepting at once, or
//! with `graceful` at the end of the drain time (new connections are
//! served meanwhile, each asked to close), or never with `skip_exit`.
//! `inboundonly` drains the inbound listeners only, and the agent has none
//! (it serves outbound capture and gateways): nothing drains.

use std::sync::Arc;

use http::{Method, StatusCode};

use crate::proxy::drain::{ServerDrain, StopAccepting};

/// The status and body answering `method` on `/drain_listeners?query`.
pub fn drain_listeners(
    drain: &Arc<ServerDrain>,
    method: &Method,
    query: &str,
) -> (StatusCode, String) {
    if method != Method::POST {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            "This is a mutating operation: use POST\n".into(),
        );
    }
    let has = |param: &str| {
        query
            .split('&')
            .any(|kv| kv.split('=').next() == Some(param))
    };
    if has("inboundonly") {
        tracing::info!("/drain_listeners?inboundonly: the agent has no inbound listener to drain");
        return (StatusCode::OK, "OK\n".into());
    }
    let stop = match (has("graceful"), has("skip_exit")) {
        (_, true) => StopAccepting::Never,
        (true, false) => StopAccepting::AfterDrainTime,
        (false, false) => StopAccepting::Now,
    };
    drain.start(stop);
    (StatusCode::OK, "OK\n".into())
}
