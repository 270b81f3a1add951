//! Istio's `gateway.SecretAnalyzer`: a Gateway server's `credentialName`
//! is a Secret of the gateway workload's namespace (IST0101
//! `credentialName`).
//!
//! The workload's namespace is that of the Kubernetes Services selecting
//! it, and the Gateway's own when there is none (where Istio recommends
//! deploying a Gateway).

use std::collections::BTreeSet;

use super::generated;
use super::message::{Message, REFERENCED_RESOURCE_NOT_FOUND, Subject, quoted};
use super::selectors::gateway_services;
use crate::config::{ConfigSnapshot, Kind};

pub(super) fn analyze(snapshot: &ConfigSnapshot, out: &mut Vec<Message>) {
    for gateway in snapshot.gateways.iter().filter(|g| !generated(&g.meta)) {
        let mut namespaces: BTreeSet<&str> = gateway_services(snapshot, &gateway.spec.selector)
            .into_iter()
            .map(|service| service.meta.namespace.as_str())
            .collect();
        if namespaces.is_empty() {
            namespaces.insert(&gateway.meta.namespace);
        }
        for (index, server) in gateway.spec.servers.iter().enumerate() {
            let Some(credential) = server.tls.as_ref().and_then(|t| t.credential_name.as_ref())
            else {
                continue;
            };
            let (in_namespaces, name) = match credential.split_once('/') {
                Some((namespace, name)) => (BTreeSet::from([namespace]), name),
                None => (namespaces.clone(), credential.as_str()),
            };
            let exists = snapshot.secrets.iter().any(|secret| {
                secret.meta.name == name && in_namespaces.contains(secret.meta.namespace.as_str())
            });
            if !exists {
                let field = format!("spec.servers[{index}].tls.credentialName");
                out.push(Message::istio(
                    REFERENCED_RESOURCE_NOT_FOUND,
                    Subject::of(Kind::Gateway, gateway, Some(field)),
                    format!(
                        "Referenced credentialName not found: {}",
                        quoted(credential)
                    ),
                ));
            }
        }
    }
}
