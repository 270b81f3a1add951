//! `analyze`: the validation findings and Istio's cross-resource analyzers
//! over a checked config, as `istioctl analyze` reports them, with Istio's
//! message codes (`IST0101` ReferencedResourceNotFound, ...) where Istio
//! has a message for the check; the rest without a code, as `validate`
//! words them.
//!
//! Pure: [`analyze`] takes what the loader and the checks found; finding
//! each message's line in its file is the caller's ([`lines::line_of`]).
//! One analyzer per concern, each stating Istio's behaviour in its tests.

mod ca_certificates;
mod conflicting_gateways;
mod deprecation;
mod destination_hosts;
mod gateway_api;
mod gateway_ports;
mod gateway_secrets;
mod gateways;
pub mod lines;
mod mesh_hosts;
pub mod message;
mod port_names;
mod registry;
mod selectors;
mod sidecar_hosts;
mod sidecars;
mod subsets;
mod validation;

#[cfg(test)]
mod tests;

use std::collections::HashSet;

use crate::config::gateway_api::convert::PARENT_ANNOTATION;
use crate::config::{Checked, ConfigSnapshot, Meta};
pub use message::{Level, Message, Subject};

/// Every message about `checked`, errors first, then by file, document
/// and code; each once.
pub fn analyze(checked: &Checked) -> Vec<Message> {
    let snapshot = &checked.snapshot;
    let mut out = validation::messages(checked);
    let analyzers: [fn(&ConfigSnapshot, &mut Vec<Message>); 12] = [
        gateways::analyze,
        destination_hosts::analyze,
        subsets::analyze,
        mesh_hosts::analyze,
        gateway_secrets::analyze,
        gateway_ports::analyze,
        conflicting_gateways::analyze,
        sidecars::analyze,
        sidecar_hosts::analyze,
        ca_certificates::analyze,
        port_names::analyze,
        deprecation::analyze,
    ];
    for analyzer in analyzers {
        analyzer(snapshot, &mut out);
    }
    gateway_api::analyze(&checked.gateway_api_status, &mut out);
    // Stable: each analyzer's messages keep the order of the resources.
    out.sort_by(|a, b| {
        b.level
            .cmp(&a.level)
            .then_with(|| a.subject.file.cmp(&b.subject.file))
            .then_with(|| a.subject.document.cmp(&b.subject.document))
            .then_with(|| a.code.cmp(&b.code))
    });
    let mut seen = HashSet::new();
    out.retain(|message| seen.insert(format!("{message:?}")));
    out
}

/// Whether istiod generated the resource (from the Gateway API): it is
/// not the user's, so it is not analyzed, though others may refer to it.
fn generated(meta: &Meta) -> bool {
    meta.annotations.contains_key(PARENT_ANNOTATION)
}
