//! `max_requests_per_connection`: every pooled upstream connection counts
//! the requests it carried, and one that reached the cluster's limit is
//! never reused (Envoy closes it after its last response; a limit of 1
//! turns keep-alive off).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use hyper_util::client::legacy::connect::{CaptureConnection, Connected};

/// The requests a connection carried; hyper-util copies it into every
/// response the connection gives.
#[derive(Debug, Clone, Default)]
struct ConnectionUses(Arc<AtomicU32>);

/// `connected` with a fresh request count (hyper-util asks a connection
/// for its `Connected` once, when it is established).
pub(crate) fn counted(connected: Connected) -> Connected {
    connected.extra(ConnectionUses::default())
}

/// Counts a response's request on its connection; at `max` the connection
/// is poisoned, so the pool drops it instead of reusing it.
pub(crate) fn count(response: &http::Extensions, captured: &CaptureConnection, max: u32) {
    let Some(uses) = response.get::<ConnectionUses>() else {
        return;
    };
    if uses.0.fetch_add(1, Ordering::Relaxed).saturating_add(1) >= max
        && let Some(connected) = captured.connection_metadata().as_ref()
    {
        connected.poison();
    }
}
