//! Which parent a route's `parentRef` attaches it to: listeners of a
//! Gateway (with hostnames, namespaces and kinds they allow), or a
//! ServiceEntry or Service of the mesh (GAMMA).

use super::{Context, namespace_of};
use crate::config::gateway_api::status::Condition;
use crate::config::gateway_api::{FromNamespaces, GROUP, ParentReference};
use crate::config::hosts;
use crate::config::load::ISTIO_GROUP;
use shared::node::DOMAIN_SUFFIX;

/// Where a route is attached.
pub(super) enum Attachment {
    /// To listeners of a Gateway: the generated Istio Gateways
    /// (`namespace/name`) and the hosts the route serves on them.
    Gateway {
        gateways: Vec<String>,
        hosts: Vec<String>,
        /// Indexes of the listeners, to count attached routes.
        listeners: Vec<usize>,
    },
    /// To the sidecars of the mesh, for the hosts of a ServiceEntry or a
    /// Service, on one port or all of them.
    Mesh {
        hosts: Vec<String>,
        port: Option<u32>,
    },
}

/// A route being attached: its kind, namespace and hostnames.
pub(super) struct Route<'a> {
    pub kind: &'static str,
    pub namespace: &'a str,
    pub hostnames: &'a [String],
}

/// Attaches `route` to `parent`, or says why not (an `Accepted: False`
/// condition).
pub(super) fn attach(
    context: &Context<'_>,
    route: &Route<'_>,
    parent: &ParentReference,
) -> Result<Attachment, Condition> {
    let namespace = namespace_of(parent.namespace.as_deref(), route.namespace);
    match parent.group_kind() {
        (GROUP, "Gateway") => gateway(context, route, parent, namespace),
        (ISTIO_GROUP, "ServiceEntry") => {
            let entry = context
                .snapshot
                .service_entries
                .iter()
                .find(|entry| entry.meta.namespace == namespace && entry.meta.name == parent.name)
                .ok_or_else(|| {
                    not_accepted(
                        "NoMatchingParent",
                        format!("parent ServiceEntry {namespace}/{} not found", parent.name),
                    )
                })?;
            mesh_only(parent)?;
            Ok(Attachment::Mesh {
                hosts: entry.spec.hosts.clone(),
                port: parent.port,
            })
        }
        ("" | "core", "Service") => {
            mesh_only(parent)?;
            Ok(Attachment::Mesh {
                hosts: vec![format!("{}.{namespace}.{DOMAIN_SUFFIX}", parent.name)],
                port: parent.port,
            })
        }
        (group, kind) => Err(not_accepted(
            "InvalidKind",
            format!(
                "parentRef kind {group}/{kind} is not supported; refer to a Gateway, a ServiceEntry (group {ISTIO_GROUP}) or a Service"
            ),
        )),
    }
}

fn not_accepted(reason: &str, message: String) -> Condition {
    Condition::failed("Accepted", reason, message)
}

/// A mesh parent has no listeners to name.
fn mesh_only(parent: &ParentReference) -> Result<(), Condition> {
    match &parent.section_name {
        Some(section) => Err(not_accepted(
            "NoMatchingParent",
            format!("sectionName {section} names a listener, and a Service has none; use port"),
        )),
        None => Ok(()),
    }
}

fn gateway(
    context: &Context<'_>,
    route: &Route<'_>,
    parent: &ParentReference,
    namespace: &str,
) -> Result<Attachment, Condition> {
    let candidates: Vec<usize> = context
        .listeners
        .listeners
        .iter()
        .enumerate()
        .filter(|(_, l)| l.namespace == namespace && l.gateway == parent.name)
        .map(|(index, _)| index)
        .collect();
    if candidates.is_empty() {
        return Err(not_accepted(
            "NoMatchingParent",
            format!(
                "parent Gateway {namespace}/{} not found (or not of class istio)",
                parent.name
            ),
        ));
    }
    let named: Vec<usize> = candidates
        .into_iter()
        .filter(|&index| {
            let listener = &context.listeners.listeners[index];
            parent
                .section_name
                .as_ref()
                .is_none_or(|section| *section == listener.name)
                && parent.port.is_none_or(|port| port == listener.port)
        })
        .collect();
    if named.is_empty() {
        return Err(not_accepted(
            "NoMatchingParent",
            "no listener of the Gateway matches the parentRef's sectionName and port".to_string(),
        ));
    }
    let mut allowed = Vec::new();
    let mut hostname_only = true;
    for index in named {
        let listener = &context.listeners.listeners[index];
        let Some(istio_gateway) = &listener.istio_gateway else {
            continue;
        };
        let namespace_ok = match listener.from {
            FromNamespaces::All => true,
            _ => listener.namespace == route.namespace,
        };
        if !namespace_ok || !listener.kinds.contains(&route.kind) {
            hostname_only = false;
            continue;
        }
        let hosts = hosts_on(listener.hostname.as_deref(), route.hostnames);
        if hosts.is_empty() {
            continue;
        }
        allowed.push((index, istio_gateway.clone(), hosts));
    }
    if allowed.is_empty() {
        return Err(if hostname_only {
            not_accepted(
                "NoMatchingListenerHostname",
                "no hostnames matched parent hostname".to_string(),
            )
        } else {
            not_accepted(
                "NotAllowedByListeners",
                format!(
                    "no listener of the Gateway allows a {} from namespace {}",
                    route.kind, route.namespace
                ),
            )
        });
    }
    let mut hosts: Vec<String> = allowed.iter().flat_map(|(_, _, h)| h.clone()).collect();
    hosts.sort();
    hosts.dedup();
    Ok(Attachment::Gateway {
        gateways: allowed.iter().map(|(_, g, _)| g.clone()).collect(),
        listeners: allowed.iter().map(|(i, _, _)| *i).collect(),
        hosts,
    })
}

/// The hosts a route with `hostnames` serves on a listener for `listener`
/// (`None`: any): of each pair that intersects, the more specific.
fn hosts_on(listener: Option<&str>, hostnames: &[String]) -> Vec<String> {
    match (listener, hostnames) {
        (None, []) => vec!["*".to_string()],
        (Some(listener), []) => vec![listener.to_string()],
        (None, names) => names.to_vec(),
        (Some(listener), names) => names
            .iter()
            .filter_map(|name| {
                if hosts::matches(listener, name) {
                    Some(name.clone())
                } else if hosts::matches(name, listener) {
                    Some(listener.to_string())
                } else {
                    None
                }
            })
            .collect(),
    }
}
