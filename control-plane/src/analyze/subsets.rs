//! Istio's `virtualservice.DestinationRuleAnalyzer`: a destination's subset
//! is one a DestinationRule for its host defines (IST0101 `host+subset in
//! destinationrule`, `mirror+subset in destinationrule` for mirrors).
//!
//! Hosts compare as Istio's `GetResourceNameFromHost` names them: a
//! Kubernetes service FQDN by its own namespace and name, any other host
//! by the namespace of the resource that writes it.

use std::collections::HashSet;

use shared::node::DOMAIN_SUFFIX;

use super::destination_hosts::destinations;
use super::generated;
use super::message::{Message, REFERENCED_RESOURCE_NOT_FOUND, Subject, quoted};
use crate::config::hosts::resolve;
use crate::config::{ConfigSnapshot, Kind};

pub(super) fn analyze(snapshot: &ConfigSnapshot, out: &mut Vec<Message>) {
    let defined: HashSet<(String, String, &str)> = snapshot
        .destination_rules
        .iter()
        .flat_map(|rule| {
            let namespace = &rule.meta.namespace;
            let (ns, name) = resource_name(namespace, &resolve(&rule.spec.host, namespace));
            rule.spec
                .subsets
                .iter()
                .map(move |subset| (ns.clone(), name.clone(), subset.name.as_str()))
        })
        .collect();
    for vs in snapshot
        .virtual_services
        .iter()
        .filter(|vs| !generated(&vs.meta))
    {
        for written in destinations(&vs.spec) {
            let destination = written.destination;
            let subset = destination.subset.as_str();
            if subset.is_empty() {
                continue;
            }
            let (ns, name) = resource_name(&vs.meta.namespace, &destination.host);
            if defined.contains(&(ns, name, subset)) {
                continue;
            }
            let what = if written.mirror { "mirror" } else { "host" };
            out.push(Message::istio(
                REFERENCED_RESOURCE_NOT_FOUND,
                Subject::of(Kind::VirtualService, vs, Some(written.field.clone())),
                format!(
                    "Referenced {what}+subset in destinationrule not found: {}",
                    quoted(&format!("{}+{subset}", destination.host))
                ),
            ));
        }
    }
}

/// `(namespace, name)` of the service `host` names: `name.ns.svc.<domain>`
/// as `(ns, name)`, anything else as `(namespace, host)`.
fn resource_name(namespace: &str, host: &str) -> (String, String) {
    let kubernetes = host
        .strip_suffix(DOMAIN_SUFFIX)
        .and_then(|rest| rest.strip_suffix('.'))
        .and_then(|rest| rest.split_once('.'))
        .filter(|(name, ns)| !name.is_empty() && !ns.is_empty() && !ns.contains('.'));
    match kubernetes {
        Some((name, ns)) => (ns.to_string(), name.to_string()),
        None => (namespace.to_string(), host.to_string()),
    }
}
