//! Checks a loaded [`ConfigSnapshot`] for mistakes a user can fix: the
//! problems Istio's own validation rejects, references to things that do not
//! exist (subsets, gateways), and conflicts between resources.
//!
//! Pure: no I/O. Problems come out in snapshot order, resource by resource.
//! A resource with an error is left out of what is served ([`check`]);
//! warnings leave it in.
//! One module per kind; `check` holds what they share.

mod check;
mod credential_ca;
mod destination_rule;
mod gateway;
mod gateway_tls;
mod header_operations;
mod http_policy;
mod kube_service;
mod outbound_conflicts;
mod secret;
mod service_entry;
mod sidecar;
mod syntax;
mod virtual_service;
mod workload_entry;
mod workload_group;

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use super::error::{ConfigError, Location, Problem, Severity};
use super::gateway_api::convert::convert;
use super::gateway_api::status::ObjectStatus;
use super::kube_registry::KubernetesEntries;
use super::load::{NotHandled, NotUsed};
use super::{ConfigSnapshot, Kind, Origin, Resource};
use check::Check;
use outbound_conflicts::tcp_over_http;
use service_entry::service_entry_conflicts;

pub use outbound_conflicts::tcp_over_http_count;

/// The protocols Istio knows for a port (compared case-insensitively).
pub const PROTOCOLS: [&str; 12] = [
    "HTTP",
    "HTTPS",
    "HTTP2",
    "GRPC",
    "GRPC-WEB",
    "HTTP_PROXY",
    "TCP",
    "TLS",
    "UDP",
    "MONGO",
    "MYSQL",
    "REDIS",
];

/// One problem, and the resource it is about: its kind and index among the
/// snapshot's resources of that kind.
pub(super) struct Finding {
    subject: (Kind, usize),
    error: ConfigError,
}

/// A snapshot as it is served: the resources without errors, and what was
/// found in the others.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Checked {
    /// Every resource that has no error, as istiod would serve it.
    pub snapshot: ConfigSnapshot,
    /// The problems that left a resource out.
    pub errors: Vec<ConfigError>,
    /// The problems of resources that are served anyway (references to
    /// subsets or gateways no served resource defines).
    pub warnings: Vec<ConfigError>,
    /// Documents of kinds this control plane does not handle, when the
    /// snapshot was loaded from files.
    pub not_handled: Vec<NotHandled>,
    /// The fields of the Kubernetes objects read that are not used, when
    /// the snapshot was loaded from files.
    pub not_used: Vec<NotUsed>,
    /// The conditions Istio would write on the Gateway API objects.
    pub gateway_api_status: Vec<ObjectStatus>,
}

/// Converts the Gateway API objects of `snapshot` into the Istio resources
/// istiod generates for them, then validates each resource alone, as
/// istiod does, and leaves out every resource with an error; the rest is
/// served. Warnings are
/// judged against what is served, so a reference to a left-out resource is
/// one too.
pub fn check(mut snapshot: ConfigSnapshot) -> Checked {
    let api = std::mem::take(&mut snapshot.gateway_api);
    let converted = convert(&api, &snapshot);
    snapshot.gateways.extend(converted.gateways);
    snapshot.virtual_services.extend(converted.virtual_services);
    snapshot.service_entries.extend(converted.service_entries);
    let mut rejected = HashSet::new();
    let mut errors = converted.errors;
    for finding in findings(&snapshot) {
        if finding.error.severity() == Severity::Error {
            rejected.insert(finding.subject);
            errors.push(finding.error);
        }
    }
    retain(&mut snapshot, |subject| !rejected.contains(&subject));
    let warnings = findings(&snapshot)
        .into_iter()
        .map(|finding| finding.error)
        .filter(|error| error.severity() == Severity::Warning)
        .collect();
    Checked {
        snapshot,
        errors,
        warnings,
        not_handled: Vec::new(),
        not_used: Vec::new(),
        gateway_api_status: converted.statuses,
    }
}

/// Every problem found in `snapshot`, errors and warnings alike; empty when
/// it is fine.
pub fn validate(snapshot: &ConfigSnapshot) -> Vec<ConfigError> {
    findings(snapshot)
        .into_iter()
        .map(|finding| finding.error)
        .collect()
}

fn findings(snapshot: &ConfigSnapshot) -> Vec<Finding> {
    let mut findings = Vec::new();
    duplicates(snapshot, &mut findings);
    each(
        Kind::ServiceEntry,
        &snapshot.service_entries,
        &mut findings,
        |check, spec| check.service_entry(spec),
    );
    service_entry_conflicts(snapshot, &mut findings);
    tcp_over_http(snapshot, &mut findings);
    each(
        Kind::VirtualService,
        &snapshot.virtual_services,
        &mut findings,
        |check, spec| check.virtual_service(spec, snapshot),
    );
    each(
        Kind::DestinationRule,
        &snapshot.destination_rules,
        &mut findings,
        |check, spec| check.destination_rule(spec),
    );
    each(
        Kind::Gateway,
        &snapshot.gateways,
        &mut findings,
        |check, spec| check.gateway(spec),
    );
    each(
        Kind::Sidecar,
        &snapshot.sidecars,
        &mut findings,
        |check, spec| check.sidecar(spec),
    );
    each(
        Kind::WorkloadEntry,
        &snapshot.workload_entries,
        &mut findings,
        |check, spec| check.workload_entry(spec, "spec", false),
    );
    each(
        Kind::WorkloadGroup,
        &snapshot.workload_groups,
        &mut findings,
        |check, spec| check.workload_group(spec),
    );
    each(
        Kind::Secret,
        &snapshot.secrets,
        &mut findings,
        |check, spec| check.secret(spec),
    );
    each(
        Kind::Service,
        &snapshot.services,
        &mut findings,
        |check, spec| check.kube_service(spec),
    );
    each(
        Kind::Endpoints,
        &snapshot.endpoints,
        &mut findings,
        |check, spec| check.kube_endpoints(spec),
    );
    each(
        Kind::EndpointSlice,
        &snapshot.endpoint_slices,
        &mut findings,
        |check, spec| check.kube_endpoint_slice(spec),
    );
    credential_ca::missing_credential_cas(snapshot, &mut findings);
    findings
}

/// Keeps the resources of `snapshot` for which `keep((kind, index))` holds.
fn retain(snapshot: &mut ConfigSnapshot, keep: impl Fn((Kind, usize)) -> bool) {
    fn of_kind<T>(
        kind: Kind,
        resources: &mut Vec<Resource<T>>,
        keep: &impl Fn((Kind, usize)) -> bool,
    ) {
        let mut index = 0;
        resources.retain(|_| {
            index += 1;
            keep((kind, index - 1))
        });
    }
    of_kind(Kind::ServiceEntry, &mut snapshot.service_entries, &keep);
    of_kind(Kind::VirtualService, &mut snapshot.virtual_services, &keep);
    of_kind(
        Kind::DestinationRule,
        &mut snapshot.destination_rules,
        &keep,
    );
    of_kind(Kind::Gateway, &mut snapshot.gateways, &keep);
    of_kind(Kind::Sidecar, &mut snapshot.sidecars, &keep);
    of_kind(Kind::WorkloadEntry, &mut snapshot.workload_entries, &keep);
    of_kind(Kind::WorkloadGroup, &mut snapshot.workload_groups, &keep);
    of_kind(Kind::Secret, &mut snapshot.secrets, &keep);
    of_kind(Kind::Service, &mut snapshot.services, &keep);
    of_kind(Kind::Endpoints, &mut snapshot.endpoints, &keep);
    of_kind(Kind::EndpointSlice, &mut snapshot.endpoint_slices, &keep);
    // Built from what is kept, when first asked for.
    snapshot.kubernetes_entries = KubernetesEntries::default();
}

/// Checks the metadata and then the spec of every resource of one kind.
fn each<T>(
    kind: Kind,
    resources: &[Resource<T>],
    findings: &mut Vec<Finding>,
    spec: impl Fn(&mut Check<'_>, &T),
) {
    for (index, resource) in resources.iter().enumerate() {
        let mut check = Check::new(kind, resource, index, findings);
        check.meta();
        spec(&mut check, &resource.spec);
    }
}

/// The same kind, namespace and name defined twice, anywhere: the later
/// definitions are the ones in error.
fn duplicates(snapshot: &ConfigSnapshot, findings: &mut Vec<Finding>) {
    fn check<T>(kind: Kind, resources: &[Resource<T>], findings: &mut Vec<Finding>) {
        let mut seen: HashMap<(&str, &str), &Origin> = HashMap::new();
        for (index, resource) in resources.iter().enumerate() {
            let meta = &resource.meta;
            if meta.name.is_empty() {
                continue;
            }
            match seen.entry((meta.namespace.as_str(), meta.name.as_str())) {
                Entry::Occupied(first) => {
                    let problem = Problem::Duplicate {
                        kind: kind.as_str().to_string(),
                        namespace: meta.namespace.clone(),
                        name: meta.name.clone(),
                        first: describe(first.get()),
                    };
                    findings.push(Finding {
                        subject: (kind, index),
                        error: ConfigError::new(Location::resource(kind, resource), problem),
                    });
                }
                Entry::Vacant(slot) => {
                    slot.insert(&resource.origin);
                }
            }
        }
    }
    check(Kind::ServiceEntry, &snapshot.service_entries, findings);
    check(Kind::VirtualService, &snapshot.virtual_services, findings);
    check(Kind::DestinationRule, &snapshot.destination_rules, findings);
    check(Kind::Gateway, &snapshot.gateways, findings);
    check(Kind::Sidecar, &snapshot.sidecars, findings);
    check(Kind::WorkloadEntry, &snapshot.workload_entries, findings);
    check(Kind::WorkloadGroup, &snapshot.workload_groups, findings);
    check(Kind::Secret, &snapshot.secrets, findings);
    check(Kind::Service, &snapshot.services, findings);
    check(Kind::Endpoints, &snapshot.endpoints, findings);
    check(Kind::EndpointSlice, &snapshot.endpoint_slices, findings);
}

/// Where a resource was defined, for an error naming it.
fn describe(origin: &Origin) -> String {
    format!("{} document {}", origin.file.display(), origin.document + 1)
}

#[cfg(test)]
mod tests;
