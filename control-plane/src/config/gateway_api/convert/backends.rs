//! `backendRefs` into Istio destinations: a Service (or a Gateway's
//! Service), a ServiceEntry, or an Istio `Hostname`; across namespaces only
//! where a ReferenceGrant allows it. Weights become shares of 100.

use super::{Context, namespace_of};
use crate::config::gateway_api::BackendRef;
use crate::config::gateway_api::status::Condition;
use crate::config::load::ISTIO_GROUP;
use crate::config::model::{Destination, PortSelector};
use shared::node::DOMAIN_SUFFIX;

/// The destinations of one rule, weighted, and the first reference that
/// could not be resolved (a `ResolvedRefs: False` condition).
#[derive(Default)]
pub(super) struct Resolved {
    pub destinations: Vec<(Destination, Option<u32>)>,
    pub problem: Option<Condition>,
}

/// Resolves the `backendRefs` of a rule of a `route_kind` in `namespace`.
pub(super) fn resolve(
    context: &Context<'_>,
    route_kind: &str,
    namespace: &str,
    refs: &[BackendRef],
) -> Resolved {
    let mut resolved = Resolved::default();
    let mut weighted = Vec::new();
    for backend in refs {
        match destination(context, route_kind, namespace, backend) {
            Ok(destination) => {
                let weight = backend.weight.unwrap_or(1);
                if weight > 0 {
                    weighted.push((destination, weight));
                }
            }
            Err(condition) => {
                resolved.problem.get_or_insert(condition);
            }
        }
    }
    resolved.destinations = shares(weighted);
    resolved
}

/// One backend's destination.
pub(super) fn destination(
    context: &Context<'_>,
    route_kind: &str,
    namespace: &str,
    backend: &BackendRef,
) -> Result<Destination, Condition> {
    let failed = |reason: &str, message: String| Condition::failed("ResolvedRefs", reason, message);
    let (group, kind) = backend.group_kind();
    let target_namespace = namespace_of(backend.namespace.as_deref(), namespace);
    let host = match (group, kind) {
        ("" | "core", "Service") => {
            format!("{}.{target_namespace}.{DOMAIN_SUFFIX}", backend.name)
        }
        (ISTIO_GROUP, "Hostname") => backend.name.clone(),
        (ISTIO_GROUP, "ServiceEntry") => context
            .snapshot
            .service_entries
            .iter()
            .find(|entry| {
                entry.meta.namespace == target_namespace && entry.meta.name == backend.name
            })
            .and_then(|entry| entry.spec.hosts.first().cloned())
            .ok_or_else(|| {
                failed(
                    "BackendNotFound",
                    format!(
                        "backend(ServiceEntry {target_namespace}/{}) not found",
                        backend.name
                    ),
                )
            })?,
        (group, kind) => {
            return Err(failed(
                "InvalidKind",
                format!(
                    "referencing unsupported backendRef: group {group:?} kind {kind:?}; use a Service, a ServiceEntry or a Hostname (group {ISTIO_GROUP})"
                ),
            ));
        }
    };
    let crosses = kind != "Hostname" && target_namespace != namespace;
    if crosses {
        let to = (group, kind, backend.name.as_str(), target_namespace);
        if !context.api.granted((route_kind, namespace), to) {
            return Err(failed(
                "RefNotPermitted",
                format!(
                    "backendRef {kind} {target_namespace}/{} not accessible to a {route_kind} in namespace {namespace:?} (missing a ReferenceGrant?)",
                    backend.name
                ),
            ));
        }
    }
    let Some(port) = backend.port else {
        return Err(failed(
            "UnsupportedValue",
            format!("port is required in backendRef {}", backend.name),
        ));
    };
    Ok(Destination {
        host,
        subset: String::new(),
        port: Some(PortSelector { number: port }),
    })
}

/// Weights as shares of 100 (largest remainder), as a VirtualService
/// states them; no weight for a single destination.
fn shares(weighted: Vec<(Destination, u32)>) -> Vec<(Destination, Option<u32>)> {
    if weighted.len() < 2 {
        return weighted.into_iter().map(|(d, _)| (d, None)).collect();
    }
    let total: u64 = weighted.iter().map(|(_, w)| u64::from(*w)).sum();
    let mut shares: Vec<(u64, u64)> = weighted
        .iter()
        .map(|(_, w)| {
            let scaled = u64::from(*w) * 100;
            (scaled / total, scaled % total)
        })
        .collect();
    let given: u64 = shares.iter().map(|(share, _)| share).sum();
    let mut order: Vec<usize> = (0..shares.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(shares[i].1));
    for &i in order.iter().take((100 - given) as usize) {
        shares[i].0 += 1;
    }
    weighted
        .into_iter()
        .zip(shares)
        .map(|((destination, _), (share, _))| (destination, Some(share as u32)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to(host: &str) -> Destination {
        Destination {
            host: host.to_string(),
            ..Destination::default()
        }
    }

    #[test]
    fn weights_become_shares_of_one_hundred() {
        let shares: Vec<Option<u32>> = shares(vec![(to("a"), 1), (to("b"), 1), (to("c"), 1)])
            .into_iter()
            .map(|(_, w)| w)
            .collect();
        assert_eq!(shares, [Some(34), Some(33), Some(33)]);
        let shares: Vec<Option<u32>> = shares_of(&[90, 10]);
        assert_eq!(shares, [Some(90), Some(10)]);
    }

    #[test]
    fn a_single_backend_has_no_weight() {
        assert_eq!(shares_of(&[7]), [None]);
    }

    fn shares_of(weights: &[u32]) -> Vec<Option<u32>> {
        shares(weights.iter().map(|w| (to("x"), *w)).collect())
            .into_iter()
            .map(|(_, w)| w)
            .collect()
    }
}
