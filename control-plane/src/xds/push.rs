//! What to send a proxy for one type: the resources it wants from its
//! current snapshot, and the version of that set.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::cache::{ServedResources, VersionedResource, set_version};
use super::subscription::{Subscription, Versions};

/// The resources of `type_url` that `subscription` wants, by name.
pub fn wanted<'a>(
    snapshot: &'a ServedResources,
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

/// LDS and CDS are wildcard types: no names means "everything".
pub fn is_wildcard_type(type_url: &str) -> bool {
    type_url == shared::type_url::LISTENER || type_url == shared::type_url::CLUSTER
}
