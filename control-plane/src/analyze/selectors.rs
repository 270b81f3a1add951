//! Gateway selectors as Istio's analyzers print and match them.

use crate::config::model::Labels;
use crate::config::model::kube::KubeService;
use crate::config::{ConfigSnapshot, Resource};

/// A selector as Kubernetes' `labels.SelectorFromSet(...).String()` prints
/// it: `k=v` pairs in key order, joined by commas.
pub(super) fn selector_string(labels: &Labels) -> String {
    labels
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The Kubernetes Services that stand for the workload a Gateway's
/// `selector` picks: those whose own selector it satisfies. There are no
/// pods in a config directory, so the Gateway's selector stands for its
/// pods' labels.
pub(super) fn gateway_services<'s>(
    snapshot: &'s ConfigSnapshot,
    selector: &Labels,
) -> Vec<&'s Resource<KubeService>> {
    snapshot
        .services
        .iter()
        .filter(|service| {
            let wanted = &service.spec.spec.selector;
            !wanted.is_empty() && wanted.iter().all(|(k, v)| selector.get(k) == Some(v))
        })
        .collect()
}
