//! The incremental (delta) protocol: subscriptions change by name, and
//! responses carry only resources whose version changed plus the names
//! removed.

use std::sync::Arc;

use proto::pb::envoy::config::core::v3::Node;
use proto::pb::envoy::service::discovery::v3::{DeltaDiscoveryRequest, DeltaDiscoveryResponse};

use super::cache::{ProxySnapshot, VersionedResource, WholeType};
use super::control_plane;
use super::outgoing::Outgoing;
use super::push::{Update, sotw_version, wanted};
use super::stream::Protocol;
use super::subscription::{Names, Request, Subscription};

/// The incremental protocol.
pub struct Delta;

impl Protocol for Delta {
    type Request = DeltaDiscoveryRequest;
    type Response = Outgoing<DeltaDiscoveryResponse>;
    const NAME: &'static str = "delta ADS";
    const DELTA: bool = true;

    fn node(request: &DeltaDiscoveryRequest) -> Option<Node> {
        request.node.clone()
    }

    fn request(request: &DeltaDiscoveryRequest) -> Request<'_> {
        let names = Names::Changed {
            subscribe: &request.resource_names_subscribe,
            unsubscribe: &request.resource_names_unsubscribe,
            initial_versions: &request.initial_resource_versions,
        };
        let error = request.error_detail.as_ref();
        Request::new(&request.type_url, &request.response_nonce, error, names)
    }

    /// What changed for the type since the last response: new or updated
    /// resources and the names of removed ones.
    fn update(
        subscription: &Subscription,
        served: &ProxySnapshot,
        type_url: &str,
        force: bool,
    ) -> Option<Update> {
        if subscription.wildcard()
            && let Some(whole) = served.whole(type_url)
        {
            return whole_update(subscription, served, type_url, whole, force);
        }
        let current = wanted(served, type_url, subscription);
        let sent = subscription.sent();
        let updated: Vec<Arc<VersionedResource>> = current
            .iter()
            .filter(|(name, r)| sent.get(**name) != Some(&r.version))
            .map(|(_, r)| Arc::clone(r))
            .collect();
        let removed: Vec<Arc<str>> = sent
            .keys()
            .filter(|name| !current.contains_key(&***name))
            .filter(|name| subscription.wants(name))
            .cloned()
            .collect();
        if updated.is_empty() && removed.is_empty() && !force {
            return None;
        }
        let mut holds = sent.clone();
        if !updated.is_empty() || !removed.is_empty() {
            let holds = Arc::make_mut(&mut holds);
            for name in &removed {
                holds.remove(name);
            }
            for r in &updated {
                holds.insert(r.name.clone(), r.version.clone());
            }
        }
        Some(Update {
            version: sotw_version(&current),
            holds,
            resources: updated,
            removed,
        })
    }

    fn response(type_url: &str, nonce: String, update: Update) -> Outgoing<DeltaDiscoveryResponse> {
        let removed = update.removed.iter().map(|name| name.to_string());
        Outgoing {
            head: DeltaDiscoveryResponse {
                system_version_info: update.version,
                type_url: type_url.to_string(),
                removed_resources: removed.collect(),
                nonce,
                control_plane: control_plane(),
                ..Default::default()
            },
            resources: update.resources,
        }
    }

    fn encoded_len(response: &Outgoing<DeltaDiscoveryResponse>) -> usize {
        response.encoded_len()
    }
}

/// A wildcard subscriber's update: what differs between what it holds and
/// the whole type, found in one ordered walk of both. It then holds the
/// whole type's set, shared with every proxy of the same translation.
fn whole_update(
    subscription: &Subscription,
    served: &ProxySnapshot,
    type_url: &str,
    whole: &WholeType,
    force: bool,
) -> Option<Update> {
    let held = subscription.sent();
    if !force && Arc::ptr_eq(held, &whole.versions) {
        return None;
    }
    let mut updated = Vec::new();
    let mut removed = Vec::new();
    let mut held = held.iter().peekable();
    for (name, resource) in served.resources(type_url).into_iter().flatten() {
        while let Some((gone, _)) = held.next_if(|(h, _)| *h < name) {
            removed.push(gone.clone());
        }
        match held.next_if(|(h, _)| *h == name) {
            Some((_, version)) if *version == resource.version => {}
            _ => updated.push(Arc::clone(resource)),
        }
    }
    removed.extend(held.map(|(gone, _)| gone.clone()));
    if updated.is_empty() && removed.is_empty() && !force {
        return None;
    }
    Some(Update {
        version: whole.version.clone(),
        holds: whole.versions.clone(),
        resources: updated,
        removed,
    })
}
