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
    /// differs from the last one sent.
    fn update(
        subscription: &Subscription,
        served: &ProxySnapshot,
        type_url: &str,
        force: bool,
    ) -> Option<Update> {
        let resources = wanted(served, type_url, subscription);
        // A wildcard subscriber gets the whole type, summed up once for
        // every proxy that shares the translation.
        let whole = if subscription.wildcard() {
            served.whole(type_url)
        } else {
            None
        };
        let version = whole.map_or_else(|| sotw_version(&resources), |w| w.version.clone());
        if !force && version == subscription.last_sent_version() {
            return None;
        }
        let holds = whole.map_or_else(
            || versions(resources.values().map(|r| &***r)),
            |w| w.versions.clone(),
        );
        Some(Update {
            version,
            holds,
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
