//! `/drain_listeners` (POST), as Envoy's admin handler: every open
//! connection is asked to close; the listeners stop accepting at once, or
//! with `graceful` at the end of the drain time (new connections are
//! served meanwhile, each asked to close), or never with `skip_exit`.
//! `inboundonly` drains the inbound listeners only, and the agent has none
//! (it serves outbound capture and gateways): nothing drains.

use std::sync::Arc;

use http::StatusCode;

use crate::proxy::drain::{ServerDrain, StopAccepting};

/// The status and body answering POST `/drain_listeners?query`.
pub fn drain_listeners(drain: &Arc<ServerDrain>, query: &str) -> (StatusCode, String) {
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
