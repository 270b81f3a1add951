//! The agent's validated configuration, converted from Envoy protos at the
//! boundary. Proxy code uses only these types. A resource that cannot be
//! converted is rejected here with an [`Error`] naming it, the field and
//! why, and the xDS client NACKs it while the old config keeps running.

pub mod access_log;
pub mod cluster;
pub mod cors;
pub mod fault;
pub mod fraction;
pub mod hash_policy;
pub mod http_filters;
pub mod http_timeouts;
pub mod keepalive;
pub mod listener;
pub mod log_format;
pub mod mirror;
pub mod path_normalization;
pub mod resilience;
pub mod route;
pub mod secret;
pub mod server_header;
pub mod upgrade;

mod convert;
#[cfg(test)]
pub(crate) mod proto_fixtures;

pub use convert::{
    cluster as cluster_from_proto, listener as listener_from_proto,
    load_assignment as load_assignment_from_proto, route_config as route_config_from_proto,
    secret as secret_from_proto,
};

use std::collections::HashMap;
use std::sync::Arc;

pub use cluster::{Cluster, LoadAssignment};
pub use listener::Listener;
pub use route::RouteConfig;

/// Why a resource was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} {name:?}: {field}: {reason}")]
pub struct Error {
    pub kind: &'static str,
    pub name: String,
    pub field: String,
    pub reason: String,
}

impl Error {
    pub fn new(
        kind: &'static str,
        name: &str,
        field: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            name: name.to_string(),
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Everything the proxy runs on, swapped as a whole.
#[derive(Debug, Default, Clone)]
pub struct RunningConfig {
    pub listeners: HashMap<Arc<str>, Arc<Listener>>,
    pub routes: HashMap<Arc<str>, Arc<RouteConfig>>,
    pub clusters: HashMap<Arc<str>, Arc<Cluster>>,
    pub endpoints: HashMap<Arc<str>, Arc<LoadAssignment>>,
    pub secrets: secret::SecretSources,
}

impl RunningConfig {
    pub fn listener(&self, name: &str) -> Option<&Arc<Listener>> {
        self.listeners.get(name)
    }

    pub fn route(&self, name: &str) -> Option<&Arc<RouteConfig>> {
        self.routes.get(name)
    }

    pub fn cluster(&self, name: &str) -> Option<&Arc<Cluster>> {
        self.clusters.get(name)
    }

    /// The listener that takes over a connection whose original destination
    /// is `addr`, as Envoy's `use_original_dst` hand-off picks it: an exact
    /// address match first, then the wildcard address on that port.
    pub fn listener_for_original_dst(&self, addr: std::net::SocketAddr) -> Option<&Arc<Listener>> {
        let mut wildcard = None;
        for listener in self.listeners.values() {
            if listener.address.port() != addr.port() {
                continue;
            }
            if listener.address.ip() == addr.ip() {
                return Some(listener);
            }
            if listener.address.ip().is_unspecified() {
                wildcard = Some(listener);
            }
        }
        wildcard
    }
}
