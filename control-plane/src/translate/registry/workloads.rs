//! Which WorkloadEntries a ServiceEntry's `workloadSelector` selects, and
//! which proxies a DestinationRule's `workloadSelector` applies to, as
//! istiod decides both.

use super::labels_match;
use crate::config::model::{DestinationRule, Labels, WorkloadEntry};
use crate::config::{ConfigSnapshot, Resource};
use crate::translate::proxy::Proxy;

/// The standalone WorkloadEntries a ServiceEntry in `namespace` with
/// `selector` selects: those of the same namespace (selectors never cross
/// namespaces) whose labels include every selector label, and that have an
/// address (an entry reached through a network gateway has none).
pub(super) fn selected_entries<'a>(
    snapshot: &'a ConfigSnapshot,
    namespace: &'a str,
    selector: &'a Labels,
) -> impl Iterator<Item = &'a Resource<WorkloadEntry>> {
    snapshot.workload_entries.iter().filter(move |entry| {
        entry.meta.namespace == namespace
            && !entry.spec.address.is_empty()
            && labels_match(selector, &entry.spec.labels)
    })
}

/// Whether a DestinationRule may apply to `proxy`: one without a
/// `workloadSelector` applies to every proxy that sees it; one with a
/// selector only to the proxies of its own namespace whose labels include
/// `matchLabels` (istiod: "workload selectors do not apply across namespace
/// boundaries").
pub(super) fn destination_rule_applies(rule: &Resource<DestinationRule>, proxy: &Proxy) -> bool {
    match &rule.spec.workload_selector {
        None => true,
        Some(selector) => {
            rule.meta.namespace == proxy.namespace
                && labels_match(&selector.match_labels, &proxy.labels)
        }
    }
}

#[cfg(test)]
mod tests;
