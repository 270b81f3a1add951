//! The service registry as Istio's analyzers look hosts up in it
//! (`InitServiceEntryHostMap`, `GetDestinationHost`): each ServiceEntry
//! host and Kubernetes Service by the namespaces it is exported to, as a
//! fully qualified name, with its port numbers.

use std::collections::HashMap;

use crate::config::ConfigSnapshot;
use crate::config::hosts::resolve;
use crate::config::model::kube::EXPORT_TO_ANNOTATION;

/// The scope of an entry exported to every namespace.
const ALL: &str = "*";

/// `(scope, fully qualified host)` → the port numbers of the service.
pub(super) struct Registry {
    hosts: HashMap<(String, String), Vec<u32>>,
}

impl Registry {
    pub(super) fn new(snapshot: &ConfigSnapshot) -> Self {
        let mut hosts = HashMap::new();
        for entry in &snapshot.service_entries {
            let namespace = &entry.meta.namespace;
            let ports: Vec<u32> = entry.spec.ports.iter().map(|p| p.number).collect();
            for scope in scopes(&entry.spec.export_to, namespace) {
                for host in &entry.spec.hosts {
                    let key = (scope.clone(), resolve(host, namespace));
                    hosts.insert(key, ports.clone());
                }
            }
        }
        for service in &snapshot.services {
            let namespace = &service.meta.namespace;
            let ports: Vec<u32> = service.spec.spec.ports.iter().map(|p| p.port).collect();
            let export_to: Vec<String> = service
                .meta
                .annotations
                .get(EXPORT_TO_ANNOTATION)
                .map(|list| list.split(',').map(|s| s.trim().to_string()).collect())
                .unwrap_or_default();
            for scope in scopes(&export_to, namespace) {
                let key = (scope, resolve(&service.meta.name, namespace));
                hosts.insert(key, ports.clone());
            }
        }
        Self { hosts }
    }

    /// The ports of the service `host` names when written in a resource of
    /// `namespace` exported to `export_to`, as `GetDestinationHost` finds
    /// it: exported to all, then to the resource's scopes, then a wildcard
    /// entry visible there whose suffix the host ends with. `None` when no
    /// entry declares it.
    pub(super) fn lookup(
        &self,
        namespace: &str,
        export_to: &[String],
        host: &str,
    ) -> Option<&[u32]> {
        let fqdn = resolve(host, namespace);
        let get = |scope: &str| {
            self.hosts
                .get(&(scope.to_string(), fqdn.clone()))
                .map(Vec::as_slice)
        };
        if let Some(ports) = get(ALL) {
            return Some(ports);
        }
        let own: Vec<String> = if export_to.is_empty() {
            vec![namespace.to_string()]
        } else {
            export_to
                .iter()
                .map(|to| {
                    if to == "." {
                        namespace.to_string()
                    } else {
                        to.clone()
                    }
                })
                .collect()
        };
        if let Some(ports) = own.iter().find_map(|scope| get(scope)) {
            return Some(ports);
        }
        let bare = host.trim_start_matches('*');
        let mut wildcards: Vec<_> = self
            .hosts
            .iter()
            .filter(|((scope, entry), _)| {
                entry.starts_with('*') && (scope == ALL || scope == namespace)
            })
            .filter(|((_, entry), _)| bare.ends_with(entry.trim_start_matches('*')))
            .collect();
        // The map's order is not the same from run to run: the longest
        // wildcard, then the first name, for one answer.
        wildcards.sort_by(|a, b| b.0.1.len().cmp(&a.0.1.len()).then(a.0.cmp(b.0)));
        wildcards.first().map(|(_, ports)| ports.as_slice())
    }
}

/// The scopes of an entry of `namespace` exported to `export_to`.
fn scopes(export_to: &[String], namespace: &str) -> Vec<String> {
    if export_to.is_empty() || export_to.iter().any(|to| to == ALL) {
        return vec![ALL.to_string()];
    }
    export_to
        .iter()
        .map(|to| {
            if to == "." {
                namespace.to_string()
            } else {
                to.clone()
            }
        })
        .collect()
}
