//! A Sidecar `egress.hosts` entry naming one host (no wildcard) that no
//! service of the namespaces it selects declares: the sidecar gets no
//! configuration for it. Istio has no analyzer for this, so the message has
//! no code.

use super::gateways::names_match;
use super::generated;
use super::message::{Level, Message, Subject};
use crate::config::hosts::{namespace_selects, resolve, split_namespace};
use crate::config::{ConfigSnapshot, Kind};

pub(super) fn analyze(snapshot: &ConfigSnapshot, out: &mut Vec<Message>) {
    let entries: Vec<_> = snapshot.registry_entries().collect();
    for sidecar in snapshot.sidecars.iter().filter(|s| !generated(&s.meta)) {
        let own = &sidecar.meta.namespace;
        for (i, listener) in sidecar.spec.egress.iter().enumerate() {
            for (j, entry) in listener.hosts.iter().enumerate() {
                let (namespace, name) = split_namespace(entry);
                if name.contains('*') {
                    continue;
                }
                let declared = entries.iter().any(|service| {
                    let service_ns = &service.meta.namespace;
                    namespace_selects(namespace, service_ns, own)
                        && service
                            .spec
                            .hosts
                            .iter()
                            .any(|host| names_match(&resolve(host, service_ns), name))
                });
                if !declared {
                    out.push(Message::uncoded(
                        Level::Warning,
                        Subject::of(
                            Kind::Sidecar,
                            sidecar,
                            Some(format!("spec.egress[{i}].hosts[{j}]")),
                        ),
                        format!(
                            "egress host {entry:?} is no host of a ServiceEntry or Kubernetes Service in the namespaces it selects, so the sidecar gets no configuration for it; declare it, or fix the name"
                        ),
                    ));
                }
            }
        }
    }
}
