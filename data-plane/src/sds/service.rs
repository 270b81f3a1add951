//! The `SecretDiscoveryService` on top of the per-stream states: each
//! stream answers its requests and pushes every new certificate, in a task
//! of its own.

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use proto::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use proto::pb::envoy::service::secret::v3::secret_discovery_service_server::SecretDiscoveryService;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::delta::DeltaStream;
use super::sotw::SotwStream;
use crate::identity::WorkloadCertificate;

type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// What one stream of either protocol does with requests and rotations.
pub(super) trait Protocol: Default + Send + 'static {
    type Request: Send + 'static;
    type Response: Send + 'static;

    /// The response `request` calls for, if any.
    fn on_request(
        &mut self,
        request: &Self::Request,
        current: &WorkloadCertificate,
    ) -> Option<Self::Response>;

    /// The push a new certificate calls for, if any.
    fn on_rotation(&mut self, current: &WorkloadCertificate) -> Option<Self::Response>;
}

/// Serves the proxy's identity, as published on `certificates`.
#[derive(Clone)]
pub(super) struct SdsService {
    pub(super) certificates: watch::Receiver<Arc<WorkloadCertificate>>,
}

#[tonic::async_trait]
impl SecretDiscoveryService for SdsService {
    type StreamSecretsStream = ResponseStream<DiscoveryResponse>;
    type DeltaSecretsStream = ResponseStream<DeltaDiscoveryResponse>;

    async fn stream_secrets(
        &self,
        request: Request<Streaming<DiscoveryRequest>>,
    ) -> Result<Response<Self::StreamSecretsStream>, Status> {
        Ok(Response::new(serve_stream::<SotwStream>(
            request.into_inner(),
            self.certificates.clone(),
        )))
    }

    async fn delta_secrets(
        &self,
        request: Request<Streaming<DeltaDiscoveryRequest>>,
    ) -> Result<Response<Self::DeltaSecretsStream>, Status> {
        Ok(Response::new(serve_stream::<DeltaStream>(
            request.into_inner(),
            self.certificates.clone(),
        )))
    }

    async fn fetch_secrets(
        &self,
        request: Request<DiscoveryRequest>,
    ) -> Result<Response<DiscoveryResponse>, Status> {
        let current = self.certificates.borrow().clone();
        SotwStream::default()
            .on_request(request.get_ref(), &current)
            .map(Response::new)
            .ok_or_else(|| Status::invalid_argument("name the secrets to fetch: default, ROOTCA"))
    }
}

/// Runs one stream until the Envoy closes it.
fn serve_stream<P: Protocol>(
    mut requests: Streaming<P::Request>,
    mut certificates: watch::Receiver<Arc<WorkloadCertificate>>,
) -> ResponseStream<P::Response> {
    let (responses, outgoing) = mpsc::channel(4);
    tokio::spawn(async move {
        let mut stream = P::default();
        loop {
            let response = tokio::select! {
                request = requests.message() => match request {
                    Ok(Some(request)) => {
                        let current = certificates.borrow_and_update().clone();
                        stream.on_request(&request, &current)
                    }
                    Ok(None) => return,
                    Err(status) => {
                        tracing::debug!(%status, "SDS stream ended");
                        return;
                    }
                },
                changed = certificates.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let current = certificates.borrow_and_update().clone();
                    stream.on_rotation(&current)
                }
            };
            if let Some(response) = response
                && responses.send(Ok(response)).await.is_err()
            {
                return;
            }
        }
    });
    Box::pin(ReceiverStream::new(outgoing))
}
