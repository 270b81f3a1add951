//! A scripted ADS server (state of the world) for xDS our control plane
//! would never send, since it validates what it serves. It answers every
//! subscription from the resources the test gave it, pushes a type again
//! when the test replaces it, and records every request, so a test can see
//! a proxy's ACKs and NACKs.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::{Context, Result};
use proto::pb::envoy::config::cluster::v3::Cluster;
use proto::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use proto::pb::envoy::config::listener::v3::Listener;
use proto::pb::envoy::config::route::v3::RouteConfiguration;
use proto::pb::envoy::service::discovery::v3::aggregated_discovery_service_server::{
    AggregatedDiscoveryService, AggregatedDiscoveryServiceServer,
};
use proto::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use proto::prost::Message;
use proto::wkt::Any;
use serde_json::Value;
use shared::type_url::{CLUSTER, ENDPOINT, LISTENER, ROUTE};
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::{TcpListenerStream, UnboundedReceiverStream};
use tonic::{Request, Response, Status, Streaming};

use crate::background::ServerThread;
use crate::process;

type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;
type Responses = mpsc::UnboundedSender<Result<DiscoveryResponse, Status>>;

/// The resources of one type and the version they are served as.
#[derive(Default)]
struct TypeResources {
    version: u64,
    resources: Vec<Any>,
}

/// What one open stream subscribed to: resource names by type (empty for
/// every resource of the type).
struct Subscriber {
    responses: Responses,
    names: BTreeMap<String, Vec<String>>,
}

#[derive(Default)]
struct State {
    resources: BTreeMap<String, TypeResources>,
    subscribers: Vec<Subscriber>,
    requests: Vec<DiscoveryRequest>,
    nonce: u64,
}

impl State {
    /// The response of type `type_url` for a subscription to `names`.
    fn response(&mut self, type_url: &str, names: &[String]) -> DiscoveryResponse {
        self.nonce += 1;
        let served = self.resources.entry(type_url.to_string()).or_default();
        let resources = served
            .resources
            .iter()
            .filter(|any| names.is_empty() || names.contains(&resource_name(any)))
            .cloned()
            .collect();
        DiscoveryResponse {
            version_info: served.version.to_string(),
            resources,
            type_url: type_url.to_string(),
            nonce: self.nonce.to_string(),
            ..Default::default()
        }
    }
}

/// A running fake ADS server on `127.0.0.1:<free port>`; stops on drop.
pub struct FakeAds {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    _server: ServerThread,
}

impl FakeAds {
    /// Serves nothing until told what ([`FakeAds::set`]).
    pub fn start() -> Result<Self> {
        let state = Arc::new(Mutex::new(State::default()));
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .context("binding the fake ADS server")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let service = AggregatedDiscoveryServiceServer::new(Service {
            state: Arc::clone(&state),
        });
        let server = ServerThread::spawn(&format!("fake-ads-{addr}"), move || async move {
            match tokio::net::TcpListener::from_std(listener) {
                Ok(listener) => {
                    let served = tonic::transport::Server::builder()
                        .add_service(service)
                        .serve_with_incoming(TcpListenerStream::new(listener))
                        .await;
                    if let Err(err) = served {
                        eprintln!("fake ADS {addr}: {err}");
                    }
                }
                Err(err) => eprintln!("fake ADS {addr}: {err}"),
            }
        })?;
        Ok(Self {
            addr,
            state,
            _server: server,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replaces every resource of `type_url` and pushes them, as a new
    /// version (1 for the first set), to every stream subscribed to the
    /// type.
    pub fn set(&self, type_url: &str, resources: Vec<Any>) {
        let mut state = lock(&self.state);
        let served = state.resources.entry(type_url.to_string()).or_default();
        served.version += 1;
        served.resources = resources;
        let subscriptions: Vec<(usize, Vec<String>)> = state
            .subscribers
            .iter()
            .enumerate()
            .filter_map(|(index, subscriber)| {
                Some((index, subscriber.names.get(type_url)?.clone()))
            })
            .collect();
        for (index, names) in subscriptions {
            let response = state.response(type_url, &names);
            // A stream that closed has nobody to tell.
            let _ = state.subscribers[index].responses.send(Ok(response));
        }
    }

    /// Every request received so far, on any stream, oldest first.
    pub fn requests(&self) -> Vec<DiscoveryRequest> {
        lock(&self.state).requests.clone()
    }

    /// Waits for a request that satisfies `matches` and returns it.
    pub fn wait_for_request(
        &self,
        timeout: Duration,
        matches: impl Fn(&DiscoveryRequest) -> bool,
    ) -> Result<DiscoveryRequest> {
        process::eventually(timeout, || {
            self.requests()
                .into_iter()
                .find(|request| matches(request))
                .context("no such request yet")
        })
    }
}

struct Service {
    state: Arc<Mutex<State>>,
}

#[tonic::async_trait]
impl AggregatedDiscoveryService for Service {
    type StreamAggregatedResourcesStream = ResponseStream<DiscoveryResponse>;
    type DeltaAggregatedResourcesStream = ResponseStream<DeltaDiscoveryResponse>;

    async fn stream_aggregated_resources(
        &self,
        request: Request<Streaming<DiscoveryRequest>>,
    ) -> Result<Response<Self::StreamAggregatedResourcesStream>, Status> {
        let mut inbound = request.into_inner();
        let (responses, outbound) = mpsc::unbounded_channel();
        let index = {
            let mut state = lock(&self.state);
            state.subscribers.push(Subscriber {
                responses: responses.clone(),
                names: BTreeMap::new(),
            });
            state.subscribers.len() - 1
        };
        let state = Arc::clone(&self.state);
        tokio::spawn(async move {
            while let Ok(Some(request)) = inbound.message().await {
                let mut state = lock(&state);
                state.requests.push(request.clone());
                let subscribed = state.subscribers[index].names.get(&request.type_url);
                // A first request, or new names: (re)subscribe and answer.
                // Anything else is an ACK or a NACK of what was sent.
                if subscribed != Some(&request.resource_names) {
                    state.subscribers[index]
                        .names
                        .insert(request.type_url.clone(), request.resource_names.clone());
                    let response = state.response(&request.type_url, &request.resource_names);
                    if responses.send(Ok(response)).is_err() {
                        return;
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(UnboundedReceiverStream::new(
            outbound,
        ))))
    }

    async fn delta_aggregated_resources(
        &self,
        _request: Request<Streaming<DeltaDiscoveryRequest>>,
    ) -> Result<Response<Self::DeltaAggregatedResourcesStream>, Status> {
        Err(Status::unimplemented(
            "the fake ADS server serves state of the world only",
        ))
    }
}

/// The resources of a `control-plane dump --type all` (`{"clusters": [..],
/// "endpoints": [..], "listeners": [..], "routes": [..]}`), by type URL,
/// ready to serve.
pub fn resources_from_dump(dump: &Value) -> Result<BTreeMap<String, Vec<Any>>> {
    let mut resources = BTreeMap::new();
    for (key, type_url) in [
        ("clusters", CLUSTER),
        ("endpoints", ENDPOINT),
        ("listeners", LISTENER),
        ("routes", ROUTE),
    ] {
        let items = dump[key].as_array().cloned().unwrap_or_default();
        let packed = items
            .iter()
            .map(|item| pack(type_url, item))
            .collect::<Result<_>>()
            .with_context(|| format!("reading the dump's {key}"))?;
        resources.insert(type_url.to_string(), packed);
    }
    Ok(resources)
}

/// An xDS resource of type `type_url` (one of the four ADS types), given
/// as protobuf JSON, packed in an `Any`.
pub fn pack(type_url: &str, json: &Value) -> Result<Any> {
    let type_name = type_url.rsplit_once('/').map_or(type_url, |(_, name)| name);
    let value = match type_url {
        CLUSTER => proto::from_json::<Cluster>(type_name, json)?.encode_to_vec(),
        ENDPOINT => proto::from_json::<ClusterLoadAssignment>(type_name, json)?.encode_to_vec(),
        LISTENER => proto::from_json::<Listener>(type_name, json)?.encode_to_vec(),
        ROUTE => proto::from_json::<RouteConfiguration>(type_name, json)?.encode_to_vec(),
        other => anyhow::bail!("cannot pack resources of type {other}"),
    };
    Ok(Any {
        type_url: type_url.to_string(),
        value,
    })
}

/// The name of a resource (`cluster_name` of a ClusterLoadAssignment).
fn resource_name(any: &Any) -> String {
    let bytes = any.value.as_slice();
    let name = match any.type_url.as_str() {
        CLUSTER => Cluster::decode(bytes).map(|cluster| cluster.name),
        ENDPOINT => ClusterLoadAssignment::decode(bytes).map(|load| load.cluster_name),
        LISTENER => Listener::decode(bytes).map(|listener| listener.name),
        ROUTE => RouteConfiguration::decode(bytes).map(|routes| routes.name),
        _ => return String::new(),
    };
    name.unwrap_or_default()
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
