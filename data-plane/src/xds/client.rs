//! The ADS client. It keeps one stream open to the control plane, delta
//! (incremental) when the control plane serves it and state of the world
//! otherwise, subscribes as Envoy does (CDS and LDS wildcard; EDS and RDS by
//! the names the applied config refers to), ACKs or NACKs every response,
//! and reconnects with backoff. Across reconnects the sink keeps its last
//! good config and the client tells the control plane what it holds (the
//! last accepted version of every type; per resource, over delta).

mod delta;
mod type_state;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use prost::Message;
use proto::pb::envoy::config::core::v3::Node;
use proto::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use proto::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use proto::pb::google::rpc::Status as RpcStatus;
use proto::wkt::Any;
use shared::type_url::short_name;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::UnboundedReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::codec::Streaming;

use type_state::{Interest, SUBSCRIPTIONS, TypeState};

use super::backoff::Backoff;
use super::connection::{AuthorizedChannel, ControlPlane};
use super::stats::{UpdateResult, XdsStats};
use super::{ConfigSink, Error};

/// A large mesh's CDS or LDS response can exceed tonic's 4 MiB default.
const MAX_MESSAGE_SIZE: usize = 64 * 1024 * 1024;

/// Keeps the agent subscribed to the control plane over ADS.
pub struct AdsClient {
    control_plane: ControlPlane,
    node: Node,
    sink: Arc<dyn ConfigSink>,
    ready: watch::Sender<bool>,
    stats: Arc<XdsStats>,
    types: Vec<TypeState>,
    /// Delta until the control plane answers that it does not serve it.
    delta: bool,
}

type Grpc = AggregatedDiscoveryServiceClient<AuthorizedChannel>;

/// What differs between the two ADS protocols, for [`AdsClient::run_stream`].
trait Wire {
    type Request: Send + 'static;
    type Response;
    const NAME: &'static str;

    fn set_node(request: &mut Self::Request, node: Node);
    /// The requests that open a stream.
    fn initial(client: &mut AdsClient) -> Vec<Self::Request>;
    fn open(
        grpc: &mut Grpc,
        requests: impl Stream<Item = Self::Request> + Send + 'static,
    ) -> impl Future<Output = Result<Streaming<Self::Response>, tonic::Status>> + Send;
    /// Applies a response; the requests it calls for.
    fn handle(client: &mut AdsClient, response: Self::Response) -> Vec<Self::Request>;
}

/// State of the world: every response carries all of a type's resources.
struct StateOfTheWorld;

impl Wire for StateOfTheWorld {
    type Request = DiscoveryRequest;
    type Response = DiscoveryResponse;
    const NAME: &'static str = "ADS";

    fn set_node(request: &mut DiscoveryRequest, node: Node) {
        request.node = Some(node);
    }

    fn initial(client: &mut AdsClient) -> Vec<DiscoveryRequest> {
        client.sync_subscriptions()
    }

    async fn open(
        grpc: &mut Grpc,
        requests: impl Stream<Item = DiscoveryRequest> + Send + 'static,
    ) -> Result<Streaming<DiscoveryResponse>, tonic::Status> {
        Ok(grpc
            .stream_aggregated_resources(requests)
            .await?
            .into_inner())
    }

    fn handle(client: &mut AdsClient, response: DiscoveryResponse) -> Vec<DiscoveryRequest> {
        client.handle_response(response)
    }
}

impl AdsClient {
    /// A client of `control_plane`. `node` goes on the first request of
    /// every stream. `ready` becomes `true`, once and for good, when the
    /// config is warm (see [`AdsClient::run`]).
    pub fn new(
        control_plane: ControlPlane,
        node: Node,
        sink: Arc<dyn ConfigSink>,
        ready: watch::Sender<bool>,
    ) -> Self {
        let types = SUBSCRIPTIONS
            .iter()
            .filter(|(type_url, _)| sink.subscribes(type_url))
            .map(|&(type_url, mode)| TypeState::new(type_url, mode))
            .collect();
        Self {
            control_plane,
            node,
            sink,
            ready,
            stats: Arc::default(),
            types,
            delta: true,
        }
    }

    /// The client's counters, for the admin server to render.
    pub fn stats(&self) -> Arc<XdsStats> {
        self.stats.clone()
    }

    /// Runs forever: connects, subscribes, applies responses, and
    /// reconnects with exponential backoff when the stream fails.
    ///
    /// The config is warm, and `ready` turns `true`, once a CDS and an LDS
    /// response have been applied and every EDS and RDS name the sink wants
    /// at that point has arrived in an applied response.
    pub async fn run(mut self) {
        let mut backoff = Backoff::default();
        loop {
            self.stats.record_connection_attempt();
            let mut received = false;
            let Err(error) = self.run_either_stream(&mut received).await;
            self.stats.set_connected(false);
            if received {
                backoff.reset();
            }
            let delay = backoff.next_delay();
            tracing::warn!(address = %self.control_plane.address(), %error, ?delay, "ADS stream ended; reconnecting");
            tokio::time::sleep(delay).await;
        }
    }

    /// A delta stream, or a state-of-the-world one once the control plane
    /// has answered that it does not serve delta.
    async fn run_either_stream(&mut self, received: &mut bool) -> Result<Infallible, Error> {
        if self.delta {
            let Err(error) = self.run_stream::<delta::Delta>(received).await;
            let unimplemented = matches!(&error, Error::Stream(status) if status.code() == tonic::Code::Unimplemented);
            if *received || !unimplemented {
                return Err(error);
            }
            tracing::info!(address = %self.control_plane.address(), "the control plane does not serve delta ADS; using state of the world");
            self.delta = false;
        }
        self.run_stream::<StateOfTheWorld>(received).await
    }

    /// One stream, from connecting until it fails. `received` tells the
    /// caller whether any response arrived.
    async fn run_stream<W: Wire>(&mut self, received: &mut bool) -> Result<Infallible, Error> {
        let channel = self.control_plane.connect().await?;
        let mut grpc = Grpc::new(channel).max_decoding_message_size(MAX_MESSAGE_SIZE);

        for state in &mut self.types {
            state.requested = None;
            state.nonce.clear();
        }
        let mut initial = W::initial(self);
        if let Some(first) = initial.first_mut() {
            W::set_node(first, self.node.clone());
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let requests = tokio_stream::iter(initial).chain(UnboundedReceiverStream::new(rx));
        let mut responses = W::open(&mut grpc, requests).await?;
        self.stats.set_connected(true);
        tracing::info!(address = %self.control_plane.address(), protocol = W::NAME, "ADS stream open");

        loop {
            let response = responses.message().await?.ok_or(Error::Closed)?;
            *received = true;
            for request in W::handle(self, response) {
                tx.send(request).map_err(|_| Error::Closed)?;
            }
        }
    }

    /// Applies one response and returns the requests to send: its ACK or
    /// NACK, then any EDS or RDS subscription changes it caused.
    fn handle_response(&mut self, response: DiscoveryResponse) -> Vec<DiscoveryRequest> {
        let Some(index) = self.subscribed(&response.type_url) else {
            let error = self.reject_unsubscribed(&response.type_url);
            let version_info = self
                .types
                .iter()
                .find(|s| s.type_url == response.type_url)
                .map(|s| s.accepted_version.clone())
                .unwrap_or_default();
            return vec![DiscoveryRequest {
                version_info,
                type_url: response.type_url,
                response_nonce: response.nonce,
                error_detail: Some(invalid_argument(error)),
                ..Default::default()
            }];
        };
        let state = &mut self.types[index];
        state.nonce = response.nonce;
        let applied = self
            .sink
            .apply(state.type_url, &response.resources)
            .map(|()| {
                response
                    .resources
                    .iter()
                    .filter(|r| r.type_url == state.type_url)
                    .filter_map(resource_name)
                    .collect()
            });
        let error = state.settle(&self.stats, response.version_info, applied);
        let mut requests = vec![state.request(error)];
        requests.extend(self.sync_subscriptions());
        requests
    }

    /// The index of `type_url`'s state, if this stream subscribed to it.
    fn subscribed(&self, type_url: &str) -> Option<usize> {
        self.types
            .iter()
            .position(|s| s.type_url == type_url && s.requested.is_some())
    }

    /// Logs and counts a response for a type the agent did not subscribe
    /// to; the NACK's error.
    fn reject_unsubscribed(&self, type_url: &str) -> String {
        let error =
            format!("received a response for {type_url:?}, which this agent did not subscribe to");
        tracing::warn!(type_url, %error, "rejecting config (NACK)");
        self.stats.record_update(type_url, UpdateResult::Rejected);
        error
    }

    /// A request for every type whose subscription must change (in ADS
    /// order); see [`AdsClient::update_interests`].
    fn sync_subscriptions(&mut self) -> Vec<DiscoveryRequest> {
        self.update_interests()
            .into_iter()
            .map(|(index, _)| self.types[index].request(None))
            .collect()
    }

    /// Asks the sink what it wants now, records it for every type whose
    /// subscription must change and returns those types (their index, in
    /// ADS order) with what they asked for before; flips readiness when the
    /// config is warm.
    fn update_interests(&mut self) -> Vec<(usize, Option<Interest>)> {
        let mut changed = Vec::new();
        let mut warm = true;
        for (index, state) in self.types.iter_mut().enumerate() {
            let interest = state.interest(self.sink.as_ref());
            warm &= state.is_warm(&interest);
            if state.needs_request(&interest) {
                tracing::debug!(
                    resource_type = short_name(state.type_url),
                    names = ?interest,
                    "subscribing"
                );
                changed.push((index, state.requested.replace(interest)));
            }
        }
        let became_ready = warm
            && self.ready.send_if_modified(|ready| {
                let changed = !*ready;
                *ready = true;
                changed
            });
        if became_ready {
            tracing::info!("xDS config is warm: ready");
        }
        changed
    }
}

/// The name of a resource. Every type ADS serves carries it as the string
/// in field 1 (`name`; `cluster_name` in a ClusterLoadAssignment), so
/// decoding only that field is enough and skips the rest.
#[derive(Clone, PartialEq, Message)]
struct ResourceName {
    #[prost(string, tag = "1")]
    name: String,
}

pub(crate) fn resource_name(resource: &Any) -> Option<String> {
    ResourceName::decode(resource.value.as_slice())
        .ok()
        .map(|r| r.name)
}

fn invalid_argument(message: String) -> RpcStatus {
    RpcStatus {
        code: tonic::Code::InvalidArgument as i32,
        message,
        details: Vec::new(),
    }
}

#[cfg(test)]
mod tests;
