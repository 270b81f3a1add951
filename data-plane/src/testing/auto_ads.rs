//! A fake ADS server (state of the world) that answers by itself, for xDS
//! our control plane would never send, since it validates what it serves.
//! It answers every subscription from the resources the test gave it,
//! pushes a type again when the test replaces it, and records every
//! request, so a test can see a proxy's ACKs and NACKs.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use proto::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use proto::wkt::Any;
use tokio::runtime::Runtime;
use tokio::sync::mpsc;

use super::fake_ads::{SotwAds, SotwConnection};
use crate::xds::client::resource_name;

/// No request matched in time.
#[derive(Debug, thiserror::Error)]
#[error("the fake ADS server got no such request within {0:?}")]
pub struct NoSuchRequest(Duration);

/// A running auto-answering ADS server on `127.0.0.1:<free port>`. It runs
/// on a runtime of its own, so plain (not async) tests can drive it, and
/// stops when dropped, which must happen outside any async context.
pub struct AutoAds {
    address: SocketAddr,
    shared: Arc<Shared>,
    _runtime: Runtime,
}

impl AutoAds {
    /// Serves nothing until told what ([`AutoAds::set`]).
    pub fn start() -> io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let mut server = runtime.block_on(SotwAds::state_of_the_world())?;
        let address = server.address();
        let shared = Arc::new(Shared::default());
        let accepting = Arc::clone(&shared);
        runtime.spawn(async move {
            while let Some(connection) = server.connection().await {
                let changes = accepting.watch_changes();
                tokio::spawn(answer(Arc::clone(&accepting), connection, changes));
            }
        });
        Ok(Self {
            address,
            shared,
            _runtime: runtime,
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Replaces every resource of `type_url` and pushes them, as a new
    /// version (1 for the first set), to every stream subscribed to the
    /// type.
    pub fn set(&self, type_url: &str, resources: Vec<Any>) {
        let mut state = self.shared.state.lock();
        let served = state.resources.entry(type_url.to_string()).or_default();
        served.version += 1;
        served.resources = resources;
        // A stream that closed has nobody to tell.
        state
            .changes
            .retain(|stream| stream.send(type_url.to_string()).is_ok());
    }

    /// Waits for a request, on any stream, that satisfies `matches` and
    /// returns the first one.
    pub fn wait_for_request(
        &self,
        timeout: Duration,
        matches: impl Fn(&DiscoveryRequest) -> bool,
    ) -> Result<DiscoveryRequest, NoSuchRequest> {
        let find = |state: &State| state.requests.iter().find(|r| matches(r)).cloned();
        let mut state = self.shared.state.lock();
        self.shared
            .requested
            .wait_while_for(&mut state, |state| find(state).is_none(), timeout);
        find(&state).ok_or(NoSuchRequest(timeout))
    }
}

/// The resources of one type and the version they are served as.
#[derive(Default)]
struct Served {
    version: u64,
    resources: Vec<Any>,
}

#[derive(Default)]
struct State {
    resources: BTreeMap<String, Served>,
    /// Every open stream's channel for the types the test replaced.
    changes: Vec<mpsc::UnboundedSender<String>>,
    /// Every request received, on any stream, oldest first.
    requests: Vec<DiscoveryRequest>,
    nonce: u64,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    /// Notified on every request.
    requested: Condvar,
}

impl Shared {
    /// A new stream's channel for the types the test replaces.
    fn watch_changes(&self) -> mpsc::UnboundedReceiver<String> {
        let (changes, changed) = mpsc::unbounded_channel();
        self.state.lock().changes.push(changes);
        changed
    }

    fn record(&self, request: DiscoveryRequest) {
        self.state.lock().requests.push(request);
        self.requested.notify_all();
    }

    /// The response of type `type_url` for a subscription to `names`
    /// (empty for every resource of the type).
    fn response(&self, type_url: &str, names: &[String]) -> DiscoveryResponse {
        let mut state = self.state.lock();
        state.nonce += 1;
        let nonce = state.nonce.to_string();
        let served = state.resources.entry(type_url.to_string()).or_default();
        let resources = served
            .resources
            .iter()
            .filter(|any| {
                names.is_empty() || resource_name(any).is_some_and(|name| names.contains(&name))
            })
            .cloned()
            .collect();
        DiscoveryResponse {
            version_info: served.version.to_string(),
            resources,
            type_url: type_url.to_string(),
            nonce,
            ..Default::default()
        }
    }
}

/// Answers one stream: every new subscription at once, and every type the
/// test replaces that the stream subscribed to.
async fn answer(
    shared: Arc<Shared>,
    mut connection: SotwConnection,
    mut changes: mpsc::UnboundedReceiver<String>,
) {
    let mut subscribed: BTreeMap<String, Vec<String>> = BTreeMap::new();
    loop {
        let type_url = tokio::select! {
            request = connection.next_request() => {
                let Some(request) = request else { return };
                shared.record(request.clone());
                // A first request, or new names: (re)subscribe and answer.
                // Anything else is an ACK or a NACK of what was sent.
                if subscribed.get(&request.type_url) == Some(&request.resource_names) {
                    continue;
                }
                subscribed.insert(request.type_url.clone(), request.resource_names);
                request.type_url
            }
            Some(type_url) = changes.recv() => type_url,
        };
        let Some(names) = subscribed.get(&type_url) else {
            continue;
        };
        if connection.send(shared.response(&type_url, names)).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use proto::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
    use shared::type_url::{CLUSTER, ROUTE};
    use tokio_stream::wrappers::UnboundedReceiverStream;

    use super::*;
    use crate::testing::resources::{clusters, routes};

    const WAIT: Duration = Duration::from_secs(5);

    fn request(type_url: &str, names: &[&str], version: &str, nonce: &str) -> DiscoveryRequest {
        DiscoveryRequest {
            type_url: type_url.to_string(),
            resource_names: names.iter().map(|name| name.to_string()).collect(),
            version_info: version.to_string(),
            response_nonce: nonce.to_string(),
            ..Default::default()
        }
    }

    /// The type, version, nonce and resource names of a response.
    fn summary(response: &DiscoveryResponse) -> (&str, &str, &str, Vec<String>) {
        (
            response.type_url.as_str(),
            response.version_info.as_str(),
            response.nonce.as_str(),
            response
                .resources
                .iter()
                .filter_map(resource_name)
                .collect(),
        )
    }

    #[test]
    fn subscriptions_are_answered_acks_are_not_and_replaced_types_are_pushed() {
        let ads = AutoAds::start().unwrap();
        ads.set(CLUSTER, clusters(&["a", "b"]));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let mut client =
                AggregatedDiscoveryServiceClient::connect(format!("http://{}", ads.address()))
                    .await
                    .unwrap();
            let (requests, outbound) = mpsc::unbounded_channel();
            requests.send(request(CLUSTER, &[], "", "")).unwrap();
            let mut responses = client
                .stream_aggregated_resources(UnboundedReceiverStream::new(outbound))
                .await
                .unwrap()
                .into_inner();
            let mut next = async || {
                let response = tokio::time::timeout(WAIT, responses.message()).await;
                response.unwrap().unwrap().expect("a response")
            };
            let cds = next().await;
            assert_eq!(
                summary(&cds),
                (CLUSTER, "1", "1", vec!["a".into(), "b".into()])
            );

            requests.send(request(CLUSTER, &[], "1", "1")).unwrap();
            requests.send(request(ROUTE, &["80"], "", "")).unwrap();
            let rds = next().await;
            assert_eq!(summary(&rds), (ROUTE, "0", "2", vec![]), "nothing set yet");

            ads.set(ROUTE, routes(&["8080", "80"]));
            let pushed = next().await;
            assert_eq!(summary(&pushed), (ROUTE, "1", "3", vec!["80".into()]));
        });
        let ack = ads
            .wait_for_request(WAIT, |request| request.response_nonce == "1")
            .unwrap();
        assert_eq!(ack.version_info, "1");
    }

    #[test]
    fn waiting_for_a_request_that_never_comes_is_an_error() {
        let ads = AutoAds::start().unwrap();
        let error = ads
            .wait_for_request(Duration::from_millis(10), |_| true)
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "the fake ADS server got no such request within 10ms"
        );
    }
}
