//! Checks a loaded [`ConfigSnapshot`] for mistakes a user can fix: the
//! problems Istio's own validation rejects, references to things that do not
//! exist (subsets, gateways), and conflicts between resources.
//!
//! Pure: no I/O. Errors come out in snapshot order, resource by resource.
//! One module per kind; `check` holds what they share.

mod check;
mod destination_rule;
mod gateway;
mod secret;
mod service_entry;
mod sidecar;
mod syntax;
mod virtual_service;
mod workload_entry;
mod workload_group;

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use super::error::{ConfigError, Location, Problem};
use super::{ConfigSnapshot, Kind, Origin, Resource};
use check::Check;
use service_entry::service_entry_conflicts;

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

/// Every problem found in `snapshot`; empty when it is fine.
pub fn validate(snapshot: &ConfigSnapshot) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    duplicates(snapshot, &mut errors);
    each(
        Kind::ServiceEntry,
        &snapshot.service_entries,
        &mut errors,
        |check, spec| check.service_entry(spec),
    );
    service_entry_conflicts(snapshot, &mut errors);
    each(
        Kind::VirtualService,
        &snapshot.virtual_services,
        &mut errors,
        |check, spec| check.virtual_service(spec, snapshot),
    );
    each(
        Kind::DestinationRule,
        &snapshot.destination_rules,
        &mut errors,
        |check, spec| check.destination_rule(spec),
    );
    each(
        Kind::Gateway,
        &snapshot.gateways,
        &mut errors,
        |check, spec| check.gateway(spec),
    );
    each(
        Kind::Sidecar,
        &snapshot.sidecars,
        &mut errors,
        |check, spec| check.sidecar(spec),
    );
    each(
        Kind::WorkloadEntry,
        &snapshot.workload_entries,
        &mut errors,
        |check, spec| check.workload_entry(spec, "spec", false),
    );
    each(
        Kind::WorkloadGroup,
        &snapshot.workload_groups,
        &mut errors,
        |check, spec| check.workload_group(spec),
    );
    each(
        Kind::Secret,
        &snapshot.secrets,
        &mut errors,
        |check, spec| check.secret(spec),
    );
    errors
}

/// Checks the metadata and then the spec of every resource of one kind.
fn each<T>(
    kind: Kind,
    resources: &[Resource<T>],
    errors: &mut Vec<ConfigError>,
    spec: impl Fn(&mut Check<'_>, &T),
) {
    for resource in resources {
        let mut check = Check::new(kind, resource, errors);
        check.meta();
        spec(&mut check, &resource.spec);
    }
}

/// The same kind, namespace and name defined twice, anywhere.
fn duplicates(snapshot: &ConfigSnapshot, errors: &mut Vec<ConfigError>) {
    fn check<T>(kind: Kind, resources: &[Resource<T>], errors: &mut Vec<ConfigError>) {
        let mut seen: HashMap<(&str, &str), &Origin> = HashMap::new();
        for resource in resources {
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
                    errors.push(ConfigError::new(
                        Location::resource(kind, resource),
                        problem,
                    ));
                }
                Entry::Vacant(slot) => {
                    slot.insert(&resource.origin);
                }
            }
        }
    }
    check(Kind::ServiceEntry, &snapshot.service_entries, errors);
    check(Kind::VirtualService, &snapshot.virtual_services, errors);
    check(Kind::DestinationRule, &snapshot.destination_rules, errors);
    check(Kind::Gateway, &snapshot.gateways, errors);
    check(Kind::Sidecar, &snapshot.sidecars, errors);
    check(Kind::WorkloadEntry, &snapshot.workload_entries, errors);
    check(Kind::WorkloadGroup, &snapshot.workload_groups, errors);
    check(Kind::Secret, &snapshot.secrets, errors);
}

/// Where a resource was defined, for an error naming it.
fn describe(origin: &Origin) -> String {
    format!("{} document {}", origin.file.display(), origin.document + 1)
}

#[cfg(test)]
mod tests;
