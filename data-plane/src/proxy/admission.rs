//! Which accepted connections the agent keeps, as Envoy's listeners decide:
//! the global limit on open downstream connections (the overload manager's
//! `envoy.resource_monitors.global_downstream_max_connections`, Istio's
//! runtime key `overload.global_downstream_max_connections`) is checked
//! first, then the listener's own (the runtime's
//! `envoy.resource_limits.listener.<name>.connection_limit`). A connection
//! over either is closed at once and counted on its listener:
//! `downstream_global_cx_overflow` or `downstream_cx_overflow`.
//! Running out of file descriptors is the other way a connection is refused
//! (`shared::accept`, as the admin ports and the control plane handle it).

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use tokio::net::TcpListener;

use super::stats::listener::ListenerStats;
use shared::accept::{AcceptFailures, Outcome};

/// Istio's bootstrap value for `overload.global_downstream_max_connections`
/// (no limit in practice).
pub const ISTIO_GLOBAL_DOWNSTREAM_MAX_CONNECTIONS: u64 = 2_147_483_647;

/// The connection limits; `None` is no limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Open downstream connections over every listener.
    pub global: Option<u64>,
    /// Open connections of each listener.
    pub per_listener: Option<u64>,
    /// Open connections of the listeners named here, where `per_listener`
    /// is not set.
    pub by_listener: BTreeMap<String, u64>,
}

impl ConnectionLimits {
    /// The limit of the listener `name`.
    pub fn of_listener(&self, name: &str) -> Option<u64> {
        self.per_listener
            .or_else(|| self.by_listener.get(name).copied())
    }
}

impl Default for ConnectionLimits {
    /// Istio's: the global limit its bootstrap sets, none per listener.
    fn default() -> Self {
        Self {
            global: Some(ISTIO_GLOBAL_DOWNSTREAM_MAX_CONNECTIONS),
            per_listener: None,
            by_listener: BTreeMap::new(),
        }
    }
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The global limit (`downstream_global_cx_overflow`).
    Global,
    /// The listener's limit (`downstream_cx_overflow`).
    Listener,
}

/// The open downstream connections of the whole agent, and its limits.
#[derive(Debug, Default)]
pub struct Admission {
    limits: ConnectionLimits,
    /// Connections admitted and not yet closed, over every listener.
    active: AtomicU64,
    /// What a failed accept does, on every listener of the agent.
    accept_failures: Arc<AcceptFailures>,
}

impl Admission {
    /// The limits `limits`, with a file descriptor kept in reserve to
    /// shed connections with once descriptors run out.
    pub fn new(limits: ConnectionLimits) -> Self {
        Self {
            limits,
            active: AtomicU64::new(0),
            accept_failures: Arc::new(AcceptFailures::new(
                "raise the open file limit, or lower --global-downstream-max-connections",
            )),
        }
    }

    /// The reserve descriptor and throttled logs of failed accepts, for
    /// the agent's other listeners to share.
    pub fn accept_failures(&self) -> Arc<AcceptFailures> {
        self.accept_failures.clone()
    }

    /// Handles a failed accept on `socket` (the listener `name`, counted in
    /// `stats`): a connection shed for want of a file descriptor counts
    /// in `downstream_global_cx_overflow`, as Envoy counts it. Returns
    /// once accepting may go on.
    pub async fn accept_failed(
        &self,
        socket: &TcpListener,
        name: &str,
        stats: &ListenerStats,
        error: io::Error,
    ) {
        if self.accept_failures.handle(socket, name, error).await == Outcome::Shed {
            stats.global_cx_overflow.fetch_add(1, Relaxed);
        }
    }

    pub fn limits(&self) -> &ConnectionLimits {
        &self.limits
    }

    /// Open downstream connections over every listener.
    pub fn active(&self) -> u64 {
        self.active.load(Relaxed)
    }

    /// Admits a connection accepted by the listener `name` whose counters
    /// are `listener`: it is open in the global count and the listener's
    /// `downstream_cx_active` until the returned guard is dropped. Over a
    /// limit, the refusal is counted on the listener.
    pub fn admit(
        self: &Arc<Self>,
        listener: &Arc<ListenerStats>,
        name: &str,
    ) -> Result<OpenConnection, Refusal> {
        if !try_take(&self.active, self.limits.global) {
            listener.global_cx_overflow.fetch_add(1, Relaxed);
            return Err(Refusal::Global);
        }
        if !try_take(&listener.cx_active, self.limits.of_listener(name)) {
            self.active.fetch_sub(1, Relaxed);
            listener.cx_overflow.fetch_add(1, Relaxed);
            return Err(Refusal::Listener);
        }
        Ok(OpenConnection {
            admission: self.clone(),
            listener: listener.clone(),
        })
    }

    /// A connection closed: an accept loop waiting for a file descriptor
    /// may go on.
    fn release(&self) {
        self.active.fetch_sub(1, Relaxed);
        self.accept_failures.connection_closed();
    }
}

/// Adds one to `count` unless that would pass `limit`.
fn try_take(count: &AtomicU64, limit: Option<u64>) -> bool {
    let limit = limit.unwrap_or(u64::MAX);
    count
        .fetch_update(Relaxed, Relaxed, |n| (n < limit).then_some(n + 1))
        .is_ok()
}

/// One admitted connection, counted open until dropped (also when its task
/// is cancelled).
#[derive(Debug)]
pub struct OpenConnection {
    admission: Arc<Admission>,
    listener: Arc<ListenerStats>,
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.listener.cx_active.fetch_sub(1, Relaxed);
        self.admission.release();
    }
}

#[cfg(test)]
mod tests;
