//! The standalone SDS service (`envoy.service.secret.v3`), for clients that
//! fetch secrets apart from ADS: the same stream code as ADS, restricted to
//! the Secret type, and a one-shot `FetchSecrets`.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use proto::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use proto::pb::envoy::service::secret::v3::secret_discovery_service_server::SecretDiscoveryService;
use shared::type_url;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::cache::VersionedResource;
use super::outgoing::{Carrier, Outgoing};
use super::push::sotw_version;
use super::stream::{self, Protocol};
use super::{StreamKind, XdsContext, control_plane, delta, identify, sotw};

type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

pub struct Sds {
    context: Arc<XdsContext>,
}

impl Sds {
    pub fn new(context: Arc<XdsContext>) -> Self {
        Self { context }
    }

    /// Serves a stream of secret requests; its responses as the messages
    /// tonic encodes.
    fn serve<P, M>(&self, requests: Streaming<P::Request>) -> ResponseStream<M>
    where
        P: Protocol<Response = Outgoing<M>> + 'static,
        M: Carrier + Send + 'static,
    {
        let responses = stream::spawn::<P>(self.context.clone(), StreamKind::Secrets, requests);
        Box::pin(
            ReceiverStream::new(responses).map(|response| response.map(Outgoing::into_message)),
        )
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
        Ok(Response::new(
            self.serve::<delta::Delta, _>(request.into_inner()),
        ))
    }

    async fn stream_secrets(
        &self,
        request: Request<Streaming<DiscoveryRequest>>,
    ) -> Result<Response<Self::StreamSecretsStream>, Status> {
        Ok(Response::new(
            self.serve::<sotw::StateOfTheWorld, _>(request.into_inner()),
        ))
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
        let proxy = identify(node)?;
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
            control_plane: control_plane(),
            ..Default::default()
        }))
    }
}
