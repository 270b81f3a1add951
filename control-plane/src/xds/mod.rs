//! The xDS server: ADS (state of the world and delta), CSDS, reflection
//! and health, over one gRPC port.

pub mod cache;
pub mod connection;
pub mod csds;
mod delta;
pub mod push;
mod sotw;
pub mod state;
pub mod subscription;

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use proto::pb::envoy::config::core::v3::Node;
use proto::pb::envoy::service::discovery::v3::aggregated_discovery_service_server::{
    AggregatedDiscoveryService, AggregatedDiscoveryServiceServer,
};
use proto::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use proto::pb::envoy::service::status::v3::client_status_discovery_service_server::ClientStatusDiscoveryServiceServer;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::metrics::Metrics;
use crate::translate::Proxy;

use cache::SnapshotCache;
use connection::{Connection, Connections};
use state::MeshStatePublisher;

/// The name this control plane gives itself in responses.
pub const CONTROL_PLANE_ID: &str = "egress-mesh-control-plane";

/// Shared by every stream and by CSDS.
pub struct XdsContext {
    pub publisher: MeshStatePublisher,
    pub cache: SnapshotCache,
    pub connections: Connections,
    pub metrics: Arc<Metrics>,
}

impl XdsContext {
    pub fn new(publisher: MeshStatePublisher, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Self {
            publisher,
            cache: SnapshotCache::default(),
            connections: Connections::default(),
            metrics,
        })
    }

    /// Registers a stream's proxy; it becomes a workload (an endpoint of the
    /// services that select it) until the returned guard drops.
    fn connect(self: &Arc<Self>, node: Node, delta: bool) -> Result<ConnectionGuard, Status> {
        let proxy = Proxy::from_node(&node)
            .map_err(|e| Status::invalid_argument(format!("cannot identify the proxy: {e}")))?;
        let connection = Arc::new(Connection::new(
            self.connections.next_id(),
            node,
            proxy,
            delta,
        ));
        self.connections.insert(connection.clone());
        if let Some(workload) = connection.proxy.as_workload() {
            self.publisher.add_workload(connection.id, workload);
        }
        self.metrics
            .connected_proxies
            .set(self.connections.len() as i64);
        tracing::info!(id = connection.id, node = %connection.proxy.id, delta, "proxy connected");
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

type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// The ADS service.
pub struct Ads {
    context: Arc<XdsContext>,
}

#[tonic::async_trait]
impl AggregatedDiscoveryService for Ads {
    type StreamAggregatedResourcesStream = ResponseStream<DiscoveryResponse>;
    type DeltaAggregatedResourcesStream = ResponseStream<DeltaDiscoveryResponse>;

    async fn stream_aggregated_resources(
        &self,
        request: Request<Streaming<DiscoveryRequest>>,
    ) -> Result<Response<Self::StreamAggregatedResourcesStream>, Status> {
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(sotw::run(self.context.clone(), request.into_inner(), tx));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn delta_aggregated_resources(
        &self,
        request: Request<Streaming<DeltaDiscoveryRequest>>,
    ) -> Result<Response<Self::DeltaAggregatedResourcesStream>, Status> {
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(delta::run(self.context.clone(), request.into_inner(), tx));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// Serves ADS, CSDS, gRPC health and reflection on `listener` until
/// `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    context: Arc<XdsContext>,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<AggregatedDiscoveryServiceServer<Ads>>()
        .await;
    health_reporter
        .set_serving::<ClientStatusDiscoveryServiceServer<csds::Csds>>()
        .await;
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .build_v1()
        .expect("the embedded descriptor set is valid");
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .expect("the embedded descriptor set is valid");
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    tonic::transport::Server::builder()
        .add_service(AggregatedDiscoveryServiceServer::new(Ads {
            context: context.clone(),
        }))
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
