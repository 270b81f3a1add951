//! The xDS server: ADS (state of the world and delta), CSDS, Istio's CA
//! API, Envoy's AccessLogService, reflection and health, on the secure port (TLS, every call
//! authenticated by a bearer token) and, when asked, on a plaintext port
//! that serves config only.

pub mod access_log;
mod admission;
mod ads;
mod authn;
pub mod cache;
mod certificates;
mod closable;
pub mod connection;
pub mod csds;
mod delta;
pub mod limits;
mod node_id;
mod outbox;
mod outgoing;
pub mod push;
mod secrets;
mod server;
mod sotw;
pub mod state;
mod stream;
pub mod subscription;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use proto::pb::envoy::config::core::v3::{ControlPlane, Node};
use shared::accept::AcceptFailures;
use tonic::Status;

use crate::metrics::Metrics;
use crate::translate::Proxy;

pub use admission::{DEFAULT_GATEWAY_SERVICE_ACCOUNT, TrustedGateways};
pub use authn::Caller;
pub use limits::Limits;
pub use server::{SecureServer, bind, serve_plaintext, serve_secure};

use cache::SnapshotCache;
use connection::{Connection, Connections};
use state::MeshStatePublisher;

/// The name this control plane gives itself in responses.
pub const CONTROL_PLANE_ID: &str = "egress-mesh-control-plane";

/// How responses name their sender.
fn control_plane() -> Option<ControlPlane> {
    Some(ControlPlane {
        identifier: CONTROL_PLANE_ID.to_string(),
    })
}

/// The proxy a node describes.
fn identify(node: &Node) -> Result<Proxy, Status> {
    Proxy::from_node(node)
        .map_err(|e| Status::invalid_argument(format!("cannot identify the proxy: {e}")))
}

/// Shared by every stream, CSDS and the CA service.
pub struct XdsContext {
    pub publisher: MeshStatePublisher,
    pub cache: SnapshotCache,
    pub connections: Connections,
    pub metrics: Arc<Metrics>,
    trusted_gateways: TrustedGateways,
    limits: Limits,
    /// What a failed accept does, on the xDS and metrics ports: out of
    /// file descriptors, a new connection is closed at once with the
    /// reserve descriptor rather than retried (tonic retries at once).
    pub accept_failures: Arc<AcceptFailures>,
}

impl XdsContext {
    pub fn new(
        publisher: MeshStatePublisher,
        metrics: Arc<Metrics>,
        trusted_gateways: TrustedGateways,
        limits: Limits,
    ) -> Arc<Self> {
        Arc::new(Self {
            publisher,
            cache: SnapshotCache::default(),
            connections: Connections::default(),
            metrics,
            trusted_gateways,
            limits,
            accept_failures: Arc::default(),
        })
    }

    /// Registers a stream's proxy. A `caller` (secure port) must be the
    /// node it describes, and the proxy is a workload (an endpoint of the
    /// services that may select it) until the returned guard drops; without
    /// one (plaintext port) it only gets config.
    fn connect(
        self: &Arc<Self>,
        node: Node,
        delta: bool,
        caller: Option<&Caller>,
    ) -> Result<ConnectionGuard, Status> {
        node_id::check(&node.id)?;
        let proxy = identify(&node)?;
        let (proxy, workload) = match caller {
            Some(caller) => {
                let admitted =
                    admission::admit(&node, proxy, &caller.account, &self.trusted_gateways)
                        .map_err(|error| authn::refuse(&self.metrics, caller.peer, &error))?;
                (admitted.proxy, admitted.workload)
            }
            None => (proxy, None),
        };
        let connection = Arc::new(Connection::new(
            self.connections.next_id(),
            node,
            proxy,
            delta,
            caller.is_some(),
        ));
        self.connections.insert(connection.clone());
        let trusted_gateway = workload.as_ref().is_some_and(|w| w.trusted_gateway);
        if let Some(workload) = workload {
            self.publisher.add_workload(connection.id, workload);
        }
        self.metrics
            .connected_proxies
            .set(self.connections.len() as i64);
        tracing::info!(
            id = connection.id,
            node = ?connection.proxy.id,
            account = %caller.map_or_else(|| "none (plaintext)".to_string(), |c| c.account.to_string()),
            trusted_gateway,
            delta,
            "proxy connected"
        );
        Ok(ConnectionGuard {
            context: self.clone(),
            connection,
        })
    }
}

/// Unregisters a connection when its stream ends, however it ends.
pub struct ConnectionGuard {
    context: Arc<XdsContext>,
    pub connection: Arc<Connection>,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let id = self.connection.id;
        self.context.connections.remove(id);
        self.context.publisher.remove_workload(id);
        self.context
            .metrics
            .connected_proxies
            .set(self.context.connections.len() as i64);
        tracing::info!(id, node = ?self.connection.proxy.id, "proxy disconnected");
    }
}
