//! Which resource handled an access log entry (the ServiceEntry or Kubernetes Service behind its cluster, or the fall-through cluster) and what the outbound policy decided.

use shared::naming::{
    BLACKHOLE_CLUSTER, BLOCK_ALL_ROUTE, ClusterName, Direction, PASSTHROUGH_CLUSTER,
};

use super::observation::Decision;
use crate::config::model::ServiceEntry;
use crate::config::{ConfigSnapshot, Resource, hosts};

/// What the inventory shows for traffic whose cluster is neither a
/// fall-through one nor a registry service's (or that no cluster carried and
/// no policy blocked, a local reply such as a 404): a proxy's text never
/// reaches the inventory.
pub const UNKNOWN: &str = "unknown";

/// Whether `handled_by` is a fall-through cluster: traffic no ServiceEntry
/// declares.
pub fn is_unregistered(handled_by: &str) -> bool {
    handled_by == PASSTHROUGH_CLUSTER || handled_by == BLACKHOLE_CLUSTER
}

/// The decision for an entry: its `egress_policy` tag (the mark the
/// translation puts on fall-through routes and chains) when it has one
/// (`blocked`, `would_block`); without one, `blocked` for the
/// `BlackHoleCluster` and the `block_all` route, else `allowed`.
pub fn decide(mark: Option<&str>, cluster: &str, route_name: &str) -> Decision {
    match mark {
        Some(mark) if mark == Decision::Blocked.as_str() => Decision::Blocked,
        Some(mark) if mark == Decision::WouldBlock.as_str() => Decision::WouldBlock,
        _ if cluster == BLACKHOLE_CLUSTER || route_name == BLOCK_ALL_ROUTE => Decision::Blocked,
        _ => Decision::Allowed,
    }
}

/// The resource that handled traffic of `source_namespace` sent to
/// `cluster`: the ServiceEntry or Kubernetes Service (`namespace/name`)
/// whose host and port make the cluster `outbound|port|subset|host` in
/// `snapshot` (the source namespace's own first, then one exported to
/// it), `PassthroughCluster`,
/// `BlackHoleCluster` (also for blocked traffic no cluster carried), else
/// [`UNKNOWN`].
pub fn handled_by(
    snapshot: &ConfigSnapshot,
    source_namespace: &str,
    cluster: &str,
    decision: Decision,
) -> String {
    if cluster.is_empty() && decision == Decision::Blocked {
        return BLACKHOLE_CLUSTER.to_string();
    }
    if cluster == PASSTHROUGH_CLUSTER || cluster == BLACKHOLE_CLUSTER {
        return cluster.to_string();
    }
    let Some(name) = ClusterName::parse(cluster).filter(|n| n.direction == Direction::Outbound)
    else {
        return UNKNOWN.to_string();
    };
    let declares = |entry: &&Resource<ServiceEntry>| {
        entry.spec.hosts.iter().any(|host| host == name.host)
            && entry
                .spec
                .ports
                .iter()
                .any(|port| port.number == u32::from(name.port))
    };
    snapshot
        .registry_entries()
        .filter(declares)
        .find(|entry| entry.meta.namespace == source_namespace)
        .or_else(|| {
            snapshot.registry_entries().filter(declares).find(|entry| {
                hosts::exported_to(
                    &entry.spec.export_to,
                    &entry.meta.namespace,
                    source_namespace,
                )
            })
        })
        .map_or_else(
            || UNKNOWN.to_string(),
            |entry| format!("{}/{}", entry.meta.namespace, entry.meta.name),
        )
}
