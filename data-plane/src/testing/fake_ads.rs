//! A fake ADS server: a real tonic server on `127.0.0.1:<free port>` that
//! hands each stream to the test as a [`Connection`] (requests in, responses
//! out), so the test scripts every response and sees every ACK and NACK.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;

use futures::Stream;
use proto::pb::envoy::service::discovery::v3::aggregated_discovery_service_server::{
    AggregatedDiscoveryService, AggregatedDiscoveryServiceServer,
};
use proto::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::{TcpListenerStream, UnboundedReceiverStream};
use tonic::{Request, Response, Status, Streaming};

/// A fake serving state-of-the-world ADS only.
pub type SotwAds = FakeAds<DiscoveryRequest, DiscoveryResponse>;
/// A fake serving delta ADS only.
pub type DeltaAds = FakeAds<DeltaDiscoveryRequest, DeltaDiscoveryResponse>;
/// A state-of-the-world stream.
pub type SotwConnection = Connection<DiscoveryRequest, DiscoveryResponse>;
/// A delta stream.
pub type DeltaConnection = Connection<DeltaDiscoveryRequest, DeltaDiscoveryResponse>;

type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;
type Connections<Req, Resp> = mpsc::UnboundedSender<Connection<Req, Resp>>;

/// The client is gone: a response has nobody to go to.
#[derive(Debug, thiserror::Error)]
#[error("the client closed the ADS stream")]
pub struct StreamClosed;

/// One stream as the test sees it. Dropping it ends the stream cleanly.
pub struct Connection<Req, Resp> {
    requests: mpsc::UnboundedReceiver<Req>,
    responses: mpsc::UnboundedSender<Result<Resp, Status>>,
}

impl<Req, Resp> Connection<Req, Resp> {
    /// The next request on the stream; `None` once the client closed it.
    pub async fn next_request(&mut self) -> Option<Req> {
        self.requests.recv().await
    }

    /// Sends `response` on the stream.
    pub fn send(&self, response: Resp) -> Result<(), StreamClosed> {
        self.responses.send(Ok(response)).map_err(|_| StreamClosed)
    }

    /// Ends the stream with `status`, as a failing control plane does.
    pub fn fail(&self, status: Status) -> Result<(), StreamClosed> {
        self.responses.send(Err(status)).map_err(|_| StreamClosed)
    }
}

/// A running fake ADS server that serves one protocol and answers the other
/// `UNIMPLEMENTED`, as a control plane without it does. It runs on the
/// runtime it was started on.
pub struct FakeAds<Req, Resp> {
    address: SocketAddr,
    connections: mpsc::UnboundedReceiver<Connection<Req, Resp>>,
}

impl SotwAds {
    /// Serves state-of-the-world streams.
    pub async fn state_of_the_world() -> io::Result<Self> {
        Self::start(|sotw| Service {
            sotw: Some(sotw),
            delta: None,
        })
        .await
    }
}

impl DeltaAds {
    /// Serves delta streams.
    pub async fn delta() -> io::Result<Self> {
        Self::start(|delta| Service {
            sotw: None,
            delta: Some(delta),
        })
        .await
    }
}

impl<Req, Resp> FakeAds<Req, Resp> {
    /// Binds `127.0.0.1:0` and serves there, on the current runtime, the
    /// service that sends its streams to `connections`.
    async fn start(service: impl FnOnce(Connections<Req, Resp>) -> Service) -> io::Result<Self> {
        let (connections, accepted) = mpsc::unbounded_channel();
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let address = listener.local_addr()?;
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(AggregatedDiscoveryServiceServer::new(service(connections)))
                .serve_with_incoming(TcpListenerStream::new(listener)),
        );
        Ok(Self {
            address,
            connections: accepted,
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The next stream a client opens; `None` once the server stopped.
    pub async fn connection(&mut self) -> Option<Connection<Req, Resp>> {
        self.connections.recv().await
    }
}

/// Where the streams of each protocol go; `None` for the one not served.
struct Service {
    sotw: Option<Connections<DiscoveryRequest, DiscoveryResponse>>,
    delta: Option<Connections<DeltaDiscoveryRequest, DeltaDiscoveryResponse>>,
}

#[tonic::async_trait]
impl AggregatedDiscoveryService for Service {
    type StreamAggregatedResourcesStream = ResponseStream<DiscoveryResponse>;
    type DeltaAggregatedResourcesStream = ResponseStream<DeltaDiscoveryResponse>;

    async fn stream_aggregated_resources(
        &self,
        request: Request<Streaming<DiscoveryRequest>>,
    ) -> Result<Response<Self::StreamAggregatedResourcesStream>, Status> {
        hand_over(self.sotw.as_ref(), request.into_inner())
    }

    async fn delta_aggregated_resources(
        &self,
        request: Request<Streaming<DeltaDiscoveryRequest>>,
    ) -> Result<Response<Self::DeltaAggregatedResourcesStream>, Status> {
        hand_over(self.delta.as_ref(), request.into_inner())
    }
}

/// Gives a new stream to the test, or refuses it when its protocol is not
/// served.
fn hand_over<Req: Send + 'static, Resp: Send + 'static>(
    connections: Option<&Connections<Req, Resp>>,
    inbound: Streaming<Req>,
) -> Result<Response<ResponseStream<Resp>>, Status> {
    let connections = connections
        .ok_or_else(|| Status::unimplemented("the fake ADS server does not serve this protocol"))?;
    let (connection, responses) = bridge(inbound);
    connections
        .send(connection)
        .map_err(|_| Status::unavailable("the test is over"))?;
    Ok(Response::new(responses))
}

/// Forwards a server stream's requests to a [`Connection`] and its
/// responses from it.
fn bridge<Req: Send + 'static, Resp: Send + 'static>(
    mut inbound: Streaming<Req>,
) -> (Connection<Req, Resp>, ResponseStream<Resp>) {
    let (requests_tx, requests) = mpsc::unbounded_channel();
    let (responses, responses_rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(Some(request)) = inbound.message().await {
            if requests_tx.send(request).is_err() {
                break;
            }
        }
    });
    let stream = Box::pin(UnboundedReceiverStream::new(responses_rx));
    (
        Connection {
            requests,
            responses,
        },
        stream,
    )
}
