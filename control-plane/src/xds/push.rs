//! What to send a proxy for one type: the resources it wants from its
//! current snapshot, the version of that set, and what a response carries.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::cache::{ProxySnapshot, VersionedResource, set_version};
use super::subscription::{Subscription, Versions};

/// What one response carries, whichever protocol, before it has a nonce.
#[derive(Debug)]
pub struct Update {
    pub version: String,
    /// Every resource the proxy holds once it applies the response.
    pub holds: Versions,
    pub resources: Vec<Arc<VersionedResource>>,
    /// Resources the proxy must drop (delta; a state-of-the-world response
    /// leaves them out instead).
    pub removed: Vec<Arc<str>>,
}

/// The resources of `type_url` that `subscription` wants, by name.
pub fn wanted<'a>(
    snapshot: &'a ProxySnapshot,
    type_url: &str,
    subscription: &Subscription,
) -> BTreeMap<&'a str, &'a Arc<VersionedResource>> {
    snapshot
        .resources(type_url)
        .map(|by_name| {
            by_name
                .iter()
                .filter(|(name, _)| subscription.wants(name))
                .map(|(name, r)| (&**name, r))
                .collect()
        })
        .unwrap_or_default()
}

/// The version of a state-of-the-world response carrying `resources`.
pub fn sotw_version(resources: &BTreeMap<&str, &Arc<VersionedResource>>) -> String {
    set_version(resources.values().map(|r| &***r))
}

/// Name → version of a set of resources.
pub fn versions<'a>(resources: impl Iterator<Item = &'a VersionedResource>) -> Versions {
    Arc::new(
        resources
            .map(|r| (r.name.clone(), r.version.clone()))
            .collect(),
    )
}

#[cfg(test)]
mod tests;
