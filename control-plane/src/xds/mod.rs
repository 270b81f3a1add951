//! The xDS server: ADS (state of the world and delta), SDS, CSDS,
//! reflection and health, over one gRPC port.

mod ads;
pub mod cache;
pub mod connection;
pub mod csds;
mod delta;
mod outgoing;
pub mod push;
mod sds;
pub mod secrets;
mod sotw;
pub mod state;
mod stream;
pub mod subscription;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::Arc;

use proto::pb::envoy::config::core::v3::{ControlPlane, Node};
use proto::pb::envoy::service::secret::v3::secret_discovery_service_server::SecretDiscoveryServiceServer;
use proto::pb::envoy::service::status::v3::client_status_discovery_service_server::ClientStatusDiscoveryServiceServer;
use shared::type_url;
use tonic::Status;

use crate::ca::{CertificateAuthority, Identity};
use crate::metrics::Metrics;
use crate::translate::Proxy;

use cache::{ServedResources, SnapshotCache};
use connection::{Connection, Connections};
use secrets::{IdentitySecrets, SecretCache};
use state::{MeshState, MeshStatePublisher};

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

/// Shared by every stream and by CSDS.
pub struct XdsContext {
    pub publisher: MeshStatePublisher,
    pub cache: SnapshotCache,
    pub secrets: SecretCache,
    pub connections: Connections,
    pub metrics: Arc<Metrics>,
}

/// The service a stream was opened on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StreamKind {
    /// ADS: every type; the proxy is a workload while it is connected.
    Aggregated,
    /// SDS: secrets only.
    Secrets,
}

impl StreamKind {
    /// Refuses a type the service does not serve.
    fn check(self, requested: &str) -> Result<(), Status> {
        match self {
            StreamKind::Secrets if requested != type_url::SECRET => {
                Err(Status::invalid_argument(format!(
                    "the SecretDiscoveryService serves only {}; request {requested} over ADS",
                    type_url::SECRET
                )))
            }
            _ => Ok(()),
        }
    }
}

impl XdsContext {
    pub fn new(
        publisher: MeshStatePublisher,
        metrics: Arc<Metrics>,
        ca: Arc<CertificateAuthority>,
    ) -> Arc<Self> {
        Arc::new(Self {
            publisher,
            cache: SnapshotCache::default(),
            secrets: SecretCache::new(ca),
            connections: Connections::default(),
            metrics,
        })
    }

    /// Everything `proxy` is served in `state`.
    pub fn served(&self, state: &MeshState, proxy: &Proxy) -> ServedResources {
        ServedResources {
            translated: self.cache.get(state, proxy),
            secrets: self.identity_secrets(state, proxy),
        }
    }

    /// The secrets of the proxy's identity under the mesh's trust domain.
    fn identity_secrets(&self, state: &MeshState, proxy: &Proxy) -> Option<Arc<IdentitySecrets>> {
        self.secrets.get(&Identity {
            trust_domain: state.snapshot.mesh.trust_domain.clone(),
            namespace: proxy.namespace.clone(),
            service_account: proxy.service_account.clone(),
        })
    }

    /// Registers a stream's proxy; over ADS it becomes a workload (an
    /// endpoint of the services that select it) until the returned guard
    /// drops.
    fn connect(
        self: &Arc<Self>,
        node: Node,
        delta: bool,
        kind: StreamKind,
    ) -> Result<ConnectionGuard, Status> {
        let proxy = identify(&node)?;
        let connection = Arc::new(Connection::new(
            self.connections.next_id(),
            node,
            proxy,
            delta,
        ));
        self.connections.insert(connection.clone());
        if kind == StreamKind::Aggregated
            && let Some(workload) = connection.proxy.as_workload()
        {
            self.publisher.add_workload(connection.id, workload);
        }
        self.metrics
            .connected_proxies
            .set(self.connections.len() as i64);
        tracing::info!(id = connection.id, node = %connection.proxy.id, delta, ?kind, "proxy connected");
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
        tracing::info!(id, node = %self.connection.proxy.id, "proxy disconnected");
    }
}

fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .with_service_name("envoy.service.discovery.v3.AggregatedDiscoveryService")
        .with_service_name("envoy.service.secret.v3.SecretDiscoveryService")
        .with_service_name("envoy.service.status.v3.ClientStatusDiscoveryService")
        .with_service_name("grpc.health.v1.Health")
}

/// Serves ADS, SDS, CSDS, gRPC health and reflection on `listener` until
/// `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    context: Arc<XdsContext>,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter.set_serving::<ads::Ads>().await;
    health_reporter
        .set_serving::<SecretDiscoveryServiceServer<sds::Sds>>()
        .await;
    health_reporter
        .set_serving::<ClientStatusDiscoveryServiceServer<csds::Csds>>()
        .await;
    let reflection_v1 = reflection()
        .with_service_name("grpc.reflection.v1.ServerReflection")
        .build_v1()
        .expect("the embedded descriptor sets are valid");
    let reflection_v1alpha = reflection()
        .with_service_name("grpc.reflection.v1alpha.ServerReflection")
        .build_v1alpha()
        .expect("the embedded descriptor sets are valid");
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    tonic::transport::Server::builder()
        .add_service(ads::Ads::new(context.clone()))
        .add_service(SecretDiscoveryServiceServer::new(sds::Sds::new(
            context.clone(),
        )))
        .add_service(ClientStatusDiscoveryServiceServer::new(csds::Csds::new(
            context,
        )))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
}

/// Binds the xDS port; a conflict fails at startup.
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}
