//! The AggregatedDiscoveryService over gRPC, state of the world and delta.
//!
//! Requests are decoded by tonic. Responses are framed here: tonic encodes
//! all of a stream's responses into one buffer that grows to the largest
//! of them and is kept until the stream ends, and a control plane's
//! largest response (the first CDS) comes once, at connect, then the
//! stream idles for hours. Here each response is encoded into an
//! allocation of its exact size that is freed once sent, so an idle
//! connected proxy costs its subscription state, not a copy of its config.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use http_body::Frame;
use tonic::body::Body;
use tonic::codec::BufferSettings;
use tonic::server::NamedService;
use tonic::{Status, Streaming};
use tonic_prost::ProstDecoder;

use super::authn::Caller;
use super::closable::Peer;
use super::limits::MAX_MESSAGE_SIZE;
use super::outgoing::{Carrier, Outgoing};
use super::stream::{self, Protocol};
use super::{XdsContext, delta, sotw};

const SERVICE: &str = "envoy.service.discovery.v3.AggregatedDiscoveryService";
const SOTW_PATH: &str =
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources";
const DELTA_PATH: &str =
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources";
/// The request buffer's first size (tonic's default is 8 KiB): requests
/// are subscriptions and ACKs of a few hundred bytes, and the buffer grows
/// for a larger one.
const REQUEST_BUFFER: usize = 1024;

/// The ADS service, for `tonic::transport::Server::add_service`.
#[derive(Clone)]
pub struct Ads {
    context: Arc<XdsContext>,
}

impl Ads {
    pub fn new(context: Arc<XdsContext>) -> Self {
        Self { context }
    }

    /// Serves one stream; `caller` is the verified token's account on the
    /// secure port, `None` on the plaintext one.
    fn start<P, M>(
        &self,
        caller: Option<Caller>,
        peer: Option<Peer>,
        body: Body,
    ) -> http::Response<Body>
    where
        P: Protocol<Response = Outgoing<M>> + 'static,
        M: Carrier + Send + 'static,
    {
        let requests = Streaming::new_request(
            // The yield threshold is the encoder's; the decoder has none.
            ProstDecoder::<P::Request>::new(BufferSettings::new(REQUEST_BUFFER, REQUEST_BUFFER)),
            body,
            None,
            Some(MAX_MESSAGE_SIZE),
        );
        let responses = stream::spawn::<P>(self.context.clone(), caller, peer, requests);
        grpc_response(Body::new(ResponseBody::new(responses)))
    }
}

impl NamedService for Ads {
    const NAME: &'static str = SERVICE;
}

impl tower_service::Service<http::Request<Body>> for Ads {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let caller = request.extensions().get::<Caller>().cloned();
        let peer = Peer::of(request.extensions()).cloned();
        let response = match request.uri().path() {
            SOTW_PATH => self.start::<sotw::StateOfTheWorld, _>(caller, peer, request.into_body()),
            DELTA_PATH => self.start::<delta::Delta, _>(caller, peer, request.into_body()),
            path => Status::unimplemented(format!("{SERVICE} has no method {path}")).into_http(),
        };
        ready(Ok(response))
    }
}

fn grpc_response(body: Body) -> http::Response<Body> {
    let mut response = http::Response::new(body);
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    response
}

/// The most bytes of a message handed to the connection at once. The
/// connection asks for the next piece as soon as it has room for the last,
/// so it holds no more than a piece beyond the proxy's flow-control window,
/// and asking for the next message means the proxy took this one.
const PIECE: usize = 64 * 1024;

/// A stream's responses as gRPC messages, handed over in pieces, then its
/// status as trailers.
struct ResponseBody<M> {
    responses: stream::Responses<Outgoing<M>>,
    /// What is left to hand over of the message being sent.
    rest: Bytes,
    ended: bool,
}

impl<M> ResponseBody<M> {
    fn new(responses: stream::Responses<Outgoing<M>>) -> Self {
        Self {
            responses,
            rest: Bytes::new(),
            ended: false,
        }
    }

    fn next_piece(&mut self) -> Bytes {
        let len = self.rest.len().min(PIECE);
        self.rest.split_to(len)
    }
}

impl<M: Carrier> http_body::Body for ResponseBody<M> {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        if !self.rest.is_empty() {
            return Poll::Ready(Some(Ok(Frame::data(self.next_piece()))));
        }
        let frame = match std::task::ready!(self.responses.poll_recv(cx)) {
            Some(Ok(message)) => {
                self.rest = grpc_message(&message);
                Frame::data(self.next_piece())
            }
            Some(Err(status)) => {
                self.ended = true;
                Frame::trailers(trailers(&status))
            }
            None => {
                self.ended = true;
                Frame::trailers(trailers(&Status::ok("")))
            }
        };
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.ended
    }
}

/// One length-prefixed, uncompressed gRPC message, in a buffer of its own.
fn grpc_message<M: Carrier>(message: &Outgoing<M>) -> Bytes {
    let len = message.encoded_len();
    let mut buf = Vec::with_capacity(5 + len);
    buf.push(0);
    buf.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
    message.encode(&mut buf);
    Bytes::from(buf)
}

fn trailers(status: &Status) -> HeaderMap {
    let mut trailers = HeaderMap::new();
    if status.add_header(&mut trailers).is_err() {
        trailers.insert("grpc-status", HeaderValue::from_static("13"));
    }
    trailers
}

#[cfg(test)]
mod tests {
    use http_body::Body as _;
    use http_body_util::BodyExt;
    use prost::Message;
    use std::time::Duration;

    use proto::pb::envoy::service::discovery::v3::DiscoveryResponse;

    use super::super::outbox::outbox;
    use super::*;

    async fn next_trailers(body: &mut ResponseBody<DiscoveryResponse>) -> HeaderMap {
        let frame = body.frame().await.expect("a frame").expect("no error");
        frame.into_trailers().expect("trailers")
    }

    #[tokio::test]
    async fn responses_are_grpc_messages_then_an_ok_status() {
        let (mut tx, rx) = outbox(Duration::from_secs(10));
        let response = DiscoveryResponse {
            version_info: "v1".into(),
            nonce: "1".into(),
            ..Default::default()
        };
        let mut body = ResponseBody::new(rx);
        let head = response.clone();
        let sent = tokio::spawn(async move {
            tx.send(Ok(Outgoing {
                head,
                resources: Vec::new(),
            }))
            .await
        });
        let frame = body.frame().await.unwrap().unwrap();
        let data = frame.into_data().unwrap();
        assert_eq!(data[0], 0, "not compressed");
        let len = u32::from_be_bytes(data[1..5].try_into().unwrap()) as usize;
        assert_eq!(len, data.len() - 5);
        assert_eq!(DiscoveryResponse::decode(&data[5..]).unwrap(), response);
        let trailers = next_trailers(&mut body).await;
        sent.await
            .unwrap()
            .expect("taken once the body asked for more");
        assert_eq!(trailers["grpc-status"], "0");
        assert!(body.frame().await.is_none());
    }

    #[tokio::test]
    async fn a_large_message_is_handed_over_in_pieces() {
        let (mut tx, rx) = outbox(Duration::from_secs(10));
        let response = DiscoveryResponse {
            version_info: "v".repeat(3 * PIECE),
            ..Default::default()
        };
        let mut body = ResponseBody::new(rx);
        let head = response.clone();
        let sent = tokio::spawn(async move {
            tx.send(Ok(Outgoing {
                head,
                resources: Vec::new(),
            }))
            .await
        });
        let mut message = Vec::new();
        let mut pieces = 0;
        while message.len() < 5 + response.encoded_len() {
            let frame = body.frame().await.unwrap().unwrap();
            let data = frame.into_data().unwrap();
            assert!(data.len() <= PIECE);
            message.extend_from_slice(&data);
            pieces += 1;
        }
        assert_eq!(pieces, 4);
        assert_eq!(DiscoveryResponse::decode(&message[5..]).unwrap(), response);
        let trailers = next_trailers(&mut body).await;
        sent.await
            .unwrap()
            .expect("taken once the body asked for more");
        assert_eq!(trailers["grpc-status"], "0");
    }

    #[tokio::test]
    async fn an_error_ends_the_stream_with_its_status() {
        let (tx, rx) =
            outbox::<Result<Outgoing<DiscoveryResponse>, Status>>(Duration::from_secs(10));
        tx.end(Err(Status::invalid_argument("no node")));
        drop(tx);
        let mut body = ResponseBody::new(rx);
        let trailers = next_trailers(&mut body).await;
        assert_eq!(trailers["grpc-status"], "3");
        assert_eq!(trailers["grpc-message"], "no%20node");
        assert!(body.frame().await.is_none());
        assert!(body.is_end_stream());
    }
}
