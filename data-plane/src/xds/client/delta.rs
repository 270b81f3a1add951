//! The delta (incremental) protocol: subscriptions change by name, and a
//! response carries only the resources that changed and the names of those
//! removed. The client keeps each type's current set and hands the sink the
//! whole of it, as state of the world would.

use std::collections::BTreeSet;

use proto::pb::envoy::config::core::v3::Node;
use proto::pb::envoy::service::discovery::v3::{DeltaDiscoveryRequest, DeltaDiscoveryResponse};
use tokio_stream::Stream;
use tonic::codec::Streaming;

use super::type_state::{Held, Interest, Mode, TypeState};
use super::{AdsClient, Grpc, Wire, invalid_argument};

/// Subscribes every type but CDS and LDS to all of its resources.
const WILDCARD: &str = "*";

pub(super) struct Delta;

impl Wire for Delta {
    type Request = DeltaDiscoveryRequest;
    type Response = DeltaDiscoveryResponse;
    const NAME: &'static str = "delta ADS";

    fn set_node(request: &mut DeltaDiscoveryRequest, node: Node) {
        request.node = Some(node);
    }

    fn initial(client: &mut AdsClient) -> Vec<DeltaDiscoveryRequest> {
        client.sync_delta_subscriptions()
    }

    async fn open(
        grpc: &mut Grpc,
        requests: impl Stream<Item = DeltaDiscoveryRequest> + Send + 'static,
    ) -> Result<Streaming<DeltaDiscoveryResponse>, tonic::Status> {
        Ok(grpc
            .delta_aggregated_resources(requests)
            .await?
            .into_inner())
    }

    fn handle(
        client: &mut AdsClient,
        response: DeltaDiscoveryResponse,
    ) -> Vec<DeltaDiscoveryRequest> {
        client.handle_delta_response(response)
    }
}

impl TypeState {
    /// The request that moves the subscription from `before` (`None`: the
    /// type's first request on this stream) to what it asks for now.
    fn delta_subscription(&mut self, before: Option<Interest>) -> DeltaDiscoveryRequest {
        let now = self.requested.clone().unwrap_or(Interest::All);
        let names = |interest: &Interest| match interest {
            // CDS and LDS subscribe to everything with no names at all.
            Interest::All if self.mode == Mode::Wildcard => BTreeSet::new(),
            Interest::All => BTreeSet::from([WILDCARD.to_string()]),
            Interest::Names(names) => names.iter().cloned().collect(),
        };
        let wanted = names(&now);
        let (subscribe, unsubscribe, initial_resource_versions) = match &before {
            None => (
                wanted,
                BTreeSet::new(),
                self.held
                    .iter()
                    .map(|(name, held)| (name.clone(), held.version.clone()))
                    .collect(),
            ),
            Some(before) => {
                let had = names(before);
                let subscribe = wanted.difference(&had).cloned().collect();
                let unsubscribe: BTreeSet<String> = had.difference(&wanted).cloned().collect();
                (subscribe, unsubscribe, Default::default())
            }
        };
        // What the agent no longer asks for, it no longer holds.
        if let Interest::Names(names) = &now {
            self.held.retain(|name, _| names.contains(name));
        }
        DeltaDiscoveryRequest {
            type_url: self.type_url.to_string(),
            resource_names_subscribe: subscribe.into_iter().collect(),
            resource_names_unsubscribe: unsubscribe.into_iter().collect(),
            initial_resource_versions,
            ..Default::default()
        }
    }
}

impl AdsClient {
    /// A delta request for every type whose subscription must change.
    fn sync_delta_subscriptions(&mut self) -> Vec<DeltaDiscoveryRequest> {
        self.update_interests()
            .into_iter()
            .map(|(index, before)| self.types[index].delta_subscription(before))
            .collect()
    }

    /// Applies one delta response to the type's current set and returns its
    /// ACK or NACK, then any EDS or RDS subscription changes it caused.
    fn handle_delta_response(
        &mut self,
        response: DeltaDiscoveryResponse,
    ) -> Vec<DeltaDiscoveryRequest> {
        let Some(index) = self.subscribed(&response.type_url) else {
            let error = self.reject_unsubscribed(&response.type_url);
            return vec![DeltaDiscoveryRequest {
                type_url: response.type_url,
                response_nonce: response.nonce,
                error_detail: Some(invalid_argument(error)),
                ..Default::default()
            }];
        };
        let state = &mut self.types[index];
        let mut next = state.held.clone();
        for name in &response.removed_resources {
            next.remove(name);
        }
        for resource in response.resources {
            match resource.resource {
                Some(any) => {
                    next.insert(
                        resource.name,
                        Held {
                            version: resource.version,
                            resource: any,
                        },
                    );
                }
                // Named but absent: the control plane has no such resource.
                None => {
                    next.remove(&resource.name);
                }
            }
        }
        let resources: Vec<_> = next.values().map(|held| held.resource.clone()).collect();
        let applied = self
            .sink
            .apply(state.type_url, &resources)
            .map(|()| next.keys().cloned().collect());
        let error = state.settle(&self.stats, response.system_version_info, applied);
        if error.is_none() {
            state.held = next;
        }
        let mut requests = vec![DeltaDiscoveryRequest {
            type_url: state.type_url.to_string(),
            response_nonce: response.nonce,
            error_detail: error,
            ..Default::default()
        }];
        requests.extend(self.sync_delta_subscriptions());
        requests
    }
}
