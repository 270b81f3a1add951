//! The identities a service's servers may present, as istiod lists them
//! for a service (`PushContext.ServiceAccounts`): the SPIFFE ids of its
//! endpoints' service accounts and the ServiceEntry's `subjectAltNames`.

use std::collections::BTreeSet;

use shared::identity::SpiffeId;

use super::workloads::selected_entries;
use super::{MeshView, Service, labels_match};

impl MeshView<'_> {
    /// `service`'s identities, sorted: `spiffe://<trust domain>/ns/<ns>/sa/<sa>`
    /// of every endpoint that names a service account (the ServiceEntry's
    /// own endpoints, the WorkloadEntries and connected proxies it selects),
    /// and the entry's `subjectAltNames`. Subsets share the service's list.
    pub fn service_accounts(&self, service: &Service<'_>) -> Vec<String> {
        let spec = &service.entry.spec;
        let namespace = service.entry.meta.namespace.as_str();
        let mut accounts: BTreeSet<&str> = spec
            .endpoints
            .iter()
            .map(|we| we.service_account.as_str())
            .collect();
        if let Some(selector) = &spec.workload_selector {
            accounts.extend(
                selected_entries(self.snapshot, namespace, &selector.labels)
                    .map(|we| we.spec.service_account.as_str()),
            );
            accounts.extend(
                self.workloads
                    .iter()
                    .filter(|w| w.namespace == namespace)
                    .filter(|w| labels_match(&selector.labels, &w.labels))
                    .filter(|w| self.membership(w, namespace, &selector.labels).is_some())
                    .map(|w| w.service_account.as_str()),
            );
        }
        let trust_domain = &self.snapshot.mesh.trust_domain;
        let mut names: BTreeSet<String> = accounts
            .into_iter()
            .filter(|sa| !sa.is_empty())
            .map(|sa| {
                SpiffeId {
                    trust_domain: trust_domain.clone(),
                    namespace: namespace.to_string(),
                    service_account: sa.to_string(),
                }
                .to_string()
            })
            .collect();
        names.extend(spec.subject_alt_names.iter().cloned());
        names.into_iter().collect()
    }
}
