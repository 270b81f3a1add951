//! Endpoints (EDS, or a cluster's inline load assignment) → model.

use proto::pb::envoy::config::endpoint::v3::{ClusterLoadAssignment, lb_endpoint};

use super::{At, host_port};
use crate::model::Error;
use crate::model::cluster::{Endpoint, LoadAssignment};

/// The endpoints of an EDS response, named by their `cluster_name`.
pub fn load_assignment(la: &ClusterLoadAssignment) -> Result<LoadAssignment, Error> {
    load_assignment_named(&la.cluster_name, la)
}

/// The endpoints of `la` for the cluster (or EDS service) `name`. Hosts are
/// kept as written: an IP address, or a host name for DNS clusters. A
/// weight of zero counts as one, as Envoy's default. The agent balances
/// over one priority, so a locality at any other priority than 0 (failover
/// or `retryRemoteLocalities` would need it) is rejected.
pub(super) fn load_assignment_named(
    name: &str,
    la: &ClusterLoadAssignment,
) -> Result<LoadAssignment, Error> {
    let resource = At::resource("endpoints", name);
    let mut endpoints = Vec::new();
    for (i, locality) in la.endpoints.iter().enumerate() {
        if locality.priority != 0 {
            return Err(resource
                .field(format!("endpoints[{i}].priority"))
                .error("only priority 0 is supported (the agent has one priority)"));
        }
        for (j, lb) in locality.lb_endpoints.iter().enumerate() {
            let at = resource.field(format!("endpoints[{i}].lb_endpoints[{j}]"));
            let Some(lb_endpoint::HostIdentifier::Endpoint(ep)) = &lb.host_identifier else {
                return Err(at.error("an endpoint address is required"));
            };
            let (host, port) = host_port(ep.address.as_ref(), &at)?;
            endpoints.push(Endpoint {
                host: host.to_string(),
                port,
                weight: lb
                    .load_balancing_weight
                    .as_ref()
                    .map_or(1, |w| w.value.max(1)),
            });
        }
    }
    Ok(LoadAssignment {
        cluster_name: name.into(),
        endpoints,
    })
}
