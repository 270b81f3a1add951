//! `backendRefs` into Istio destinations: a Service (or a Gateway's
//! Service), a ServiceEntry, or an Istio `Hostname`; across namespaces only
//! where a ReferenceGrant allows it. Weights become shares of 100. As
//! istiod does, a backend that is not found, not permitted or of a kind
//! not read keeps its share of the rule: a destination no cluster serves
//! (the missing Service's host, or no host at all), which the proxy
//! answers with 500.

use super::{Context, namespace_of};
use crate::config::gateway_api::status::Condition;
use crate::config::gateway_api::{BackendRef, deployment_name};
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

/// A backend that did not resolve: its `ResolvedRefs` condition, and the
/// destination istiod keeps in its place (`None`: the backend is dropped).
pub(super) struct Unresolved {
    pub condition: Condition,
    pub kept: Option<Destination>,
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
        let weight = backend.weight.unwrap_or(1);
        let destination = match destination(context, route_kind, namespace, backend) {
            Ok(destination) => Some(destination),
            Err(unresolved) => {
                resolved.problem.get_or_insert(unresolved.condition);
                unresolved.kept
            }
        };
        if let Some(destination) = destination
            && weight > 0
        {
            weighted.push((destination, weight));
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
) -> Result<Destination, Box<Unresolved>> {
    let failed = |reason: &str, message: String, kept: Option<Destination>| {
        Box::new(Unresolved {
            condition: Condition::failed("ResolvedRefs", reason, message),
            kept,
        })
    };
    let (group, kind) = backend.group_kind();
    let target_namespace = namespace_of(backend.namespace.as_deref(), namespace);
    let port = backend.port.map(|number| PortSelector { number });
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
                Some(Destination::default()),
            ));
        }
    }
    let host = match (group, kind) {
        ("" | "core", "Service") => {
            let host = format!("{}.{target_namespace}.{DOMAIN_SUFFIX}", backend.name);
            if !service_exists(context, target_namespace, &backend.name) {
                let message = format!("backend({host}) not found");
                let kept = Destination {
                    host,
                    subset: String::new(),
                    port,
                };
                return Err(failed("BackendNotFound", message, Some(kept)));
            }
            host
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
                    Some(Destination::default()),
                )
            })?,
        (group, kind) => {
            return Err(failed(
                "InvalidKind",
                format!(
                    "referencing unsupported backendRef: group {group:?} kind {kind:?}; use a Service, a ServiceEntry or a Hostname (group {ISTIO_GROUP})"
                ),
                Some(Destination::default()),
            ));
        }
    };
    let Some(port) = port else {
        return Err(failed(
            "UnsupportedValue",
            format!("port is required in backendRef {}", backend.name),
            None,
        ));
    };
    Ok(Destination {
        host,
        subset: String::new(),
        port: Some(port),
    })
}

/// Whether Service `name` of `namespace` is in the config, or is the one
/// Istio creates for a Gateway (`<gateway>-istio`).
fn service_exists(context: &Context<'_>, namespace: &str, name: &str) -> bool {
    let in_config = context
        .snapshot
        .services
        .iter()
        .any(|service| service.meta.namespace == namespace && service.meta.name == name);
    in_config
        || context.api.gateways.iter().any(|gateway| {
            gateway.meta.namespace == namespace && deployment_name(&gateway.meta.name) == name
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
