//! Istio's `sidecar.DefaultSelectorAnalyzer`: at most one Sidecar per
//! namespace has no `workloadSelector` (IST0111, on each of them).

use std::collections::BTreeMap;

use super::generated;
use super::message::{MULTIPLE_SIDECARS_WITHOUT_SELECTORS, Message, Subject, quoted};
use crate::config::model::Sidecar;
use crate::config::{ConfigSnapshot, Kind, Resource};

pub(super) fn analyze(snapshot: &ConfigSnapshot, out: &mut Vec<Message>) {
    let mut by_namespace: BTreeMap<&str, Vec<&Resource<Sidecar>>> = BTreeMap::new();
    for sidecar in &snapshot.sidecars {
        if sidecar.spec.workload_selector.is_none() && !generated(&sidecar.meta) {
            by_namespace
                .entry(&sidecar.meta.namespace)
                .or_default()
                .push(sidecar);
        }
    }
    for (namespace, sidecars) in by_namespace.iter().filter(|(_, list)| list.len() > 1) {
        let names: Vec<String> = sidecars
            .iter()
            .map(|s| format!("{}/{}", s.meta.namespace, s.meta.name))
            .collect();
        for sidecar in sidecars {
            out.push(Message::istio(
                MULTIPLE_SIDECARS_WITHOUT_SELECTORS,
                Subject::of(Kind::Sidecar, sidecar, None),
                format!(
                    "The Sidecars [{}] in namespace {} have no workload selector, which can lead to undefined behavior.",
                    names.join(" "),
                    quoted(namespace)
                ),
            ));
        }
    }
}
