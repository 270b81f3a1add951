//! The standalone SDS service (`envoy.service.secret.v3`), for clients that
//! fetch secrets apart from ADS: the same stream code as ADS, restricted to
//! the Secret type, and a one-shot `FetchSecrets`.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use proto::pb::envoy::config::core::v3::ControlPlane;
use proto::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use proto::pb::envoy::service::secret::v3::secret_discovery_service_server::SecretDiscoveryService;
use shared::type_url;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::translate::Proxy;

use super::cache::VersionedResource;
use super::outgoing::{Carrier, Outgoing};
use super::push::sotw_version;
use super::{CONTROL_PLANE_ID, StreamKind, XdsContext, delta, sotw, stream};

type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// A stream's responses as the messages tonic encodes.
fn messages<M: Carrier + Send + 'static>(
    responses: mpsc::Receiver<Result<Outgoing<M>, Status>>,
) -> impl Stream<Item = Result<M, Status>> + Send {
    ReceiverStream::new(responses).map(|response| response.map(Outgoing::into_message))
}

pub struct Sds {
    context: Arc<XdsContext>,
}

impl Sds {
    pub fn new(context: Arc<XdsContext>) -> Self {
        Self { context }
    }
}

#[tonic::async_trait]
impl SecretDiscoveryService for Sds {
    type DeltaSecretsStream = ResponseStream<DeltaDiscoveryResponse>;
    type StreamSecretsStream = ResponseStream<DiscoveryResponse>;

    async fn delta_secrets(
        &self,
        request: Request<Streaming<DeltaDiscoveryRequest>>,
    ) -> Result<Response<Self::DeltaSecretsStream>, Status> {
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(stream::run::<delta::Delta>(
            self.context.clone(),
            StreamKind::Secrets,
            request.into_inner(),
            tx,
        ));
        Ok(Response::new(Box::pin(messages(rx))))
    }

    async fn stream_secrets(
        &self,
        request: Request<Streaming<DiscoveryRequest>>,
    ) -> Result<Response<Self::StreamSecretsStream>, Status> {
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(stream::run::<sotw::StateOfTheWorld>(
            self.context.clone(),
            StreamKind::Secrets,
            request.into_inner(),
            tx,
        ));
        Ok(Response::new(Box::pin(messages(rx))))
    }

    /// The named secrets (all of them when no name is given) of the
    /// requesting node's identity, once.
    async fn fetch_secrets(
        &self,
        request: Request<DiscoveryRequest>,
    ) -> Result<Response<DiscoveryResponse>, Status> {
        let request = request.into_inner();
        StreamKind::Secrets.check(&request.type_url)?;
        let node = request.node.as_ref().ok_or_else(|| {
            Status::invalid_argument("FetchSecrets needs the node, to know whose secrets")
        })?;
        let proxy = Proxy::from_node(node)
            .map_err(|e| Status::invalid_argument(format!("cannot identify the proxy: {e}")))?;
        let state = self.context.publisher.current();
        let secrets = self
            .context
            .identity_secrets(&state, &proxy)
            .ok_or_else(|| Status::unavailable("the CA cannot issue this proxy's certificate"))?;
        let wanted: BTreeMap<&str, &Arc<VersionedResource>> = secrets
            .resources
            .iter()
            .filter(|(name, _)| {
                request.resource_names.is_empty()
                    || request.resource_names.iter().any(|n| **n == ***name)
            })
            .map(|(name, r)| (&**name, r))
            .collect();
        Ok(Response::new(DiscoveryResponse {
            version_info: sotw_version(&wanted),
            resources: wanted.values().map(|r| r.any.clone()).collect(),
            type_url: type_url::SECRET.to_string(),
            control_plane: Some(ControlPlane {
                identifier: CONTROL_PLANE_ID.to_string(),
            }),
            ..Default::default()
        }))
    }
}
