//! The state-of-the-world protocol: a request names every resource the
//! proxy wants, and a response carries all of them.

use std::sync::Arc;

use proto::pb::envoy::config::core::v3::Node;
use proto::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};

use super::cache::ProxySnapshot;
use super::control_plane;
use super::outgoing::Outgoing;
use super::push::{Update, sotw_version, versions, wanted};
use super::stream::Protocol;
use super::subscription::{Names, Request, Subscription};

/// The state-of-the-world protocol.
pub struct StateOfTheWorld;

impl Protocol for StateOfTheWorld {
    type Request = DiscoveryRequest;
    type Response = Outgoing<DiscoveryResponse>;
    const NAME: &'static str = "ADS";
    const DELTA: bool = false;

    fn node(request: &DiscoveryRequest) -> Option<Node> {
        request.node.clone()
    }

    fn request(request: &DiscoveryRequest) -> Request<'_> {
        let names = Names::Wanted(&request.resource_names);
        let error = request.error_detail.as_ref();
        Request::new(&request.type_url, &request.response_nonce, error, names)
    }

    /// Every resource of the type the proxy wants, when their version
    /// differs from the last one sent. A wildcard subscriber gets the
    /// whole type, summed up once for every proxy that shares the
    /// translation, and its version is compared before anything is
    /// gathered.
    fn update(
        subscription: &Subscription,
        served: &ProxySnapshot,
        type_url: &str,
        force: bool,
    ) -> Option<Update> {
        if subscription.wildcard()
            && let Some(whole) = served.whole(type_url)
        {
            if !force && whole.version == subscription.last_sent_version() {
                return None;
            }
            let resources = served.resources(type_url).into_iter().flatten();
            return Some(Update {
                version: whole.version.clone(),
                holds: whole.versions.clone(),
                resources: resources.map(|(_, r)| Arc::clone(r)).collect(),
                removed: Vec::new(),
            });
        }
        let resources = wanted(served, type_url, subscription);
        let version = sotw_version(&resources);
        if !force && version == subscription.last_sent_version() {
            return None;
        }
        Some(Update {
            version,
            holds: versions(resources.values().map(|r| &***r)),
            resources: resources.into_values().map(Arc::clone).collect(),
            removed: Vec::new(),
        })
    }

    fn response(type_url: &str, nonce: String, update: Update) -> Outgoing<DiscoveryResponse> {
        Outgoing {
            head: DiscoveryResponse {
                version_info: update.version,
                type_url: type_url.to_string(),
                nonce,
                control_plane: control_plane(),
                ..Default::default()
            },
            resources: update.resources,
        }
    }

    fn encoded_len(response: &Outgoing<DiscoveryResponse>) -> usize {
        response.encoded_len()
    }
}
