//! Istio's `virtualservice.ConflictingMeshGatewayHostsAnalyzer`: two
//! VirtualServices bound to the mesh gateway (no `gateways`, or `mesh`
//! among them) that define the same host for the same namespaces make the
//! sidecars' routes undefined (IST0109, on each of them).

use std::collections::BTreeMap;

use super::generated;
use super::message::{CONFLICTING_MESH_GATEWAY_HOSTS, Message, Subject};
use crate::config::gateways::MESH_GATEWAY;
use crate::config::hosts::resolve;
use crate::config::model::VirtualService;
use crate::config::{ConfigSnapshot, Kind, Resource};

/// A VirtualService and one of its hosts as written.
type Defining<'s> = (&'s Resource<VirtualService>, &'s str);

pub(super) fn analyze(snapshot: &ConfigSnapshot, out: &mut Vec<Message>) {
    // (scope, fully qualified host) → the VirtualServices that define it.
    let mut by_host: BTreeMap<(String, String), Vec<Defining<'_>>> = BTreeMap::new();
    for vs in snapshot
        .virtual_services
        .iter()
        .filter(|vs| !generated(&vs.meta))
    {
        let gateways = &vs.spec.gateways;
        if !gateways.is_empty() && !gateways.iter().any(|g| g == MESH_GATEWAY) {
            continue;
        }
        let namespace = &vs.meta.namespace;
        let export_to = &vs.spec.export_to;
        let mut scopes: Vec<String> = if export_to.is_empty() || export_to.iter().any(|e| e == "*")
        {
            vec!["*".to_string()]
        } else {
            export_to
                .iter()
                .map(|e| {
                    if e == "." {
                        namespace.clone()
                    } else {
                        e.clone()
                    }
                })
                .collect()
        };
        scopes.sort();
        scopes.dedup();
        for scope in scopes {
            for host in &vs.spec.hosts {
                let key = (scope.clone(), resolve(host, namespace));
                by_host.entry(key).or_default().push((vs, host));
            }
        }
    }
    for list in by_host.values().filter(|list| list.len() > 1) {
        let names: Vec<String> = list
            .iter()
            .map(|(vs, _)| format!("{}/{}", vs.meta.namespace, vs.meta.name))
            .collect();
        let host = list[0].1;
        for (vs, _) in list {
            out.push(Message::istio(
                CONFLICTING_MESH_GATEWAY_HOSTS,
                Subject::of(Kind::VirtualService, vs, Some("metadata.name".into())),
                format!(
                    "The VirtualServices {} associated with mesh gateway define the same host {host} which can lead to undefined behavior. This can be fixed by merging the conflicting VirtualServices into a single resource.",
                    names.join(",")
                ),
            ));
        }
    }
}
