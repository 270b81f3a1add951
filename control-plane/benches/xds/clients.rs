//! The proxies' side, in a child process: ADS streams, one HTTP/2
//! connection each as Envoy opens them, that subscribe as a sidecar does
//! (clusters and listeners by wildcard, the route configuration `80` its
//! listeners name) and ACK every response, over state of the world or
//! delta. Prints `ready` when a stream has ACKed its first response of
//! each type, then `ack <proxy> <type> <resources> <bytes> <unix µs>` as
//! it ACKs each later response.

use std::sync::Arc;

use prost::Message;
use proto::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use proto::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use shared::type_url;
use tokio::sync::{Semaphore, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;
use tonic::transport::Channel;

use super::clock::unix_micros;
use super::proxies::sidecar;

/// Set (to the server's address) in the child process that plays the proxies.
pub const CLIENTS_ENV: &str = "XDS_BENCH_CLIENTS";
/// How many proxies it plays.
pub const PROXIES_ENV: &str = "XDS_BENCH_PROXIES";
/// `delta` or `sotw`.
pub const PROTOCOL_ENV: &str = "XDS_BENCH_PROTOCOL";

/// The largest response a proxy reads (a 10,000-service CDS is larger
/// than gRPC's default 4 MiB).
const MAX_RESPONSE: usize = 64 * 1024 * 1024;
/// Connections opened at once (the listen backlog is finite).
const CONNECTING: usize = 128;

/// A sidecar's subscriptions: type and resource names (none: wildcard).
const SUBSCRIPTIONS: [(&str, &[&str]); 3] = [
    (type_url::CLUSTER, &[]),
    (type_url::LISTENER, &[]),
    (type_url::ROUTE, &["80"]),
];

fn names(type_url: &str) -> Vec<String> {
    SUBSCRIPTIONS
        .iter()
        .find(|(t, _)| *t == type_url)
        .map(|(_, names)| names.iter().map(ToString::to_string).collect())
        .unwrap_or_default()
}

/// Tells what a stream received: `ready` once every type has come, then
/// one line per response.
struct Reporter {
    proxy: usize,
    seen: Vec<String>,
}

impl Reporter {
    fn acked(&mut self, type_url: &str, resources: usize, bytes: usize) {
        if self.seen.len() < SUBSCRIPTIONS.len() {
            if !self.seen.iter().any(|t| t == type_url) {
                self.seen.push(type_url.to_string());
                if self.seen.len() == SUBSCRIPTIONS.len() {
                    println!("ready");
                }
            }
            return;
        }
        let short = type_url.rsplit('.').next().unwrap_or(type_url);
        println!(
            "ack {} {short} {resources} {bytes} {}",
            self.proxy,
            unix_micros()
        );
    }
}

/// Runs one stream: sends `subscriptions`, then ACKs every response.
/// `facts` gives a response's type URL, resource count and encoded size.
async fn drive<Req, Resp, Open>(
    proxy: usize,
    subscriptions: Vec<Req>,
    open: impl FnOnce(ReceiverStream<Req>) -> Open,
    ack: impl Fn(&Resp) -> Req,
    facts: impl Fn(&Resp) -> (&str, usize, usize),
) where
    Open: Future<Output = Result<tonic::Response<Streaming<Resp>>, tonic::Status>>,
{
    let (tx, rx) = mpsc::channel(8);
    for request in subscriptions {
        tx.send(request).await.expect("queue a subscription");
    }
    let mut responses = open(ReceiverStream::new(rx))
        .await
        .expect("open the stream")
        .into_inner();
    let mut reporter = Reporter {
        proxy,
        seen: Vec::new(),
    };
    while let Ok(Some(response)) = responses.message().await {
        if tx.send(ack(&response)).await.is_err() {
            return;
        }
        let (type_url, resources, bytes) = facts(&response);
        reporter.acked(type_url, resources, bytes);
    }
}

async fn state_of_the_world(proxy: usize, channel: Channel) {
    let mut client =
        AggregatedDiscoveryServiceClient::new(channel).max_decoding_message_size(MAX_RESPONSE);
    let subscriptions = SUBSCRIPTIONS
        .iter()
        .enumerate()
        .map(|(index, (type_url, _))| DiscoveryRequest {
            node: (index == 0).then(|| sidecar(proxy).to_node()),
            type_url: type_url.to_string(),
            resource_names: names(type_url),
            ..Default::default()
        })
        .collect();
    drive(
        proxy,
        subscriptions,
        |requests| client.stream_aggregated_resources(requests),
        |response: &DiscoveryResponse| DiscoveryRequest {
            type_url: response.type_url.clone(),
            resource_names: names(&response.type_url),
            version_info: response.version_info.clone(),
            response_nonce: response.nonce.clone(),
            ..Default::default()
        },
        |response| {
            let facts = (response.resources.len(), response.encoded_len());
            (response.type_url.as_str(), facts.0, facts.1)
        },
    )
    .await;
}

async fn delta(proxy: usize, channel: Channel) {
    let mut client =
        AggregatedDiscoveryServiceClient::new(channel).max_decoding_message_size(MAX_RESPONSE);
    let subscriptions = SUBSCRIPTIONS
        .iter()
        .enumerate()
        .map(|(index, (type_url, _))| DeltaDiscoveryRequest {
            node: (index == 0).then(|| sidecar(proxy).to_node()),
            type_url: type_url.to_string(),
            resource_names_subscribe: names(type_url),
            ..Default::default()
        })
        .collect();
    drive(
        proxy,
        subscriptions,
        |requests| client.delta_aggregated_resources(requests),
        |response: &DeltaDiscoveryResponse| DeltaDiscoveryRequest {
            type_url: response.type_url.clone(),
            response_nonce: response.nonce.clone(),
            ..Default::default()
        },
        |response| {
            let facts = (response.resources.len(), response.encoded_len());
            (response.type_url.as_str(), facts.0, facts.1)
        },
    )
    .await;
}

/// Plays `proxies` proxies against `addr` until killed.
pub async fn run(addr: String, proxies: usize, delta_protocol: bool) {
    let endpoint =
        tonic::transport::Endpoint::from_shared(format!("http://{addr}")).expect("endpoint");
    let connecting = Arc::new(Semaphore::new(CONNECTING));
    let mut streams = tokio::task::JoinSet::new();
    for proxy in 0..proxies {
        let endpoint = endpoint.clone();
        let connecting = connecting.clone();
        streams.spawn(async move {
            let channel = {
                let _permit = connecting.acquire().await.expect("semaphore");
                endpoint.connect().await.expect("connect")
            };
            if delta_protocol {
                delta(proxy, channel).await;
            } else {
                state_of_the_world(proxy, channel).await;
            }
        });
    }
    while streams.join_next().await.is_some() {}
}
