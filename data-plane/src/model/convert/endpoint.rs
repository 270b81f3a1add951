//! Endpoints (EDS, or a cluster's inline load assignment) → model.

use std::sync::Arc;

use proto::pb::envoy::config::core::v3::HealthStatus;
use proto::pb::envoy::config::endpoint::v3::{ClusterLoadAssignment, LbEndpoint, lb_endpoint};
use proto::wkt::value::Kind;
use shared::egress::METADATA_NAMESPACE;
use shared::workload::{ENDPOINT_WORKLOAD_FIELD, EndpointWorkload};

use super::{At, host_port};
use crate::model::Error;
use crate::model::cluster::{Endpoint, LoadAssignment};

/// The endpoints of an EDS response, named by their `cluster_name`.
pub fn load_assignment(la: &ClusterLoadAssignment) -> Result<LoadAssignment, Error> {
    load_assignment_named(&la.cluster_name, la)
}

/// The endpoints of `la` for the cluster (or EDS service) `name`. Hosts are
/// kept as written: an IP address, or a host name for DNS clusters. A
/// weight of zero counts as one, as Envoy's default.
///
/// The agent balances over one priority, so a locality at any other
/// priority than 0 (failover or `retryRemoteLocalities` would need it) is
/// rejected; with one priority, the policy's overprovisioning factor and
/// weighted priority health change nothing. A locality's weight is read
/// by Envoy only under a cluster's locality-weighted balancing, which the
/// agent refuses, so it is ignored there as here. What the agent cannot
/// do is rejected: drop overloads, stale endpoints, named endpoints,
/// LEDS, additional addresses and degraded hosts.
pub(super) fn load_assignment_named(
    name: &str,
    la: &ClusterLoadAssignment,
) -> Result<LoadAssignment, Error> {
    let resource = At::resource("endpoints", name);
    if let Some(policy) = &la.policy {
        if !policy.drop_overloads.is_empty() {
            return Err(resource
                .field("policy.drop_overloads")
                .error("dropping overload is not supported"));
        }
        if policy.endpoint_stale_after.is_some() {
            return Err(resource
                .field("policy.endpoint_stale_after")
                .error("stale endpoints are not supported"));
        }
    }
    if !la.named_endpoints.is_empty() {
        return Err(resource
            .field("named_endpoints")
            .error("named endpoints are not supported"));
    }
    let mut endpoints = Vec::new();
    for (i, locality) in la.endpoints.iter().enumerate() {
        let at = resource.field(format!("endpoints[{i}]"));
        if locality.priority != 0 {
            return Err(at
                .field("priority")
                .error("only priority 0 is supported (the agent has one priority)"));
        }
        if locality.lb_config.is_some() {
            return Err(at
                .field("leds_cluster_locality_config")
                .error("LEDS is not supported; list the endpoints in lb_endpoints"));
        }
        for (j, lb) in locality.lb_endpoints.iter().enumerate() {
            let at = at.field(format!("lb_endpoints[{j}]"));
            endpoints.push(endpoint(lb, &at)?);
        }
    }
    Ok(LoadAssignment {
        cluster_name: name.into(),
        endpoints,
    })
}

/// One endpoint: its address, weight, health and workload.
fn endpoint(lb: &LbEndpoint, at: &At<'_>) -> Result<Endpoint, Error> {
    let Some(lb_endpoint::HostIdentifier::Endpoint(ep)) = &lb.host_identifier else {
        return Err(at.error("an endpoint address is required"));
    };
    if !ep.additional_addresses.is_empty() {
        return Err(at
            .field("endpoint.additional_addresses")
            .error("additional addresses are not supported"));
    }
    let (host, port) = host_port(ep.address.as_ref(), at)?;
    Ok(Endpoint {
        host: host.to_string(),
        port,
        weight: lb
            .load_balancing_weight
            .as_ref()
            .map_or(1, |w| w.value.max(1)),
        healthy: healthy(lb.health_status, at)?,
        peer: peer(lb),
    })
}

/// The workload an endpoint's `filter_metadata["istio"]["workload"]`
/// names; a value that is not a string of at least five `;`-separated
/// parts names none, as Istio's stats plugin reads it.
fn peer(lb: &LbEndpoint) -> Option<Arc<EndpointWorkload>> {
    let istio = lb
        .metadata
        .as_ref()?
        .filter_metadata
        .get(METADATA_NAMESPACE)?;
    match istio.fields.get(ENDPOINT_WORKLOAD_FIELD)?.kind.as_ref()? {
        Kind::StringValue(value) => EndpointWorkload::parse(value).map(Arc::new),
        _ => None,
    }
}

/// Whether Envoy balances to a host of this EDS health status: not when
/// it is UNHEALTHY, DRAINING or TIMEOUT. DEGRADED hosts (used only when
/// too few are healthy) are not supported.
fn healthy(status: i32, at: &At<'_>) -> Result<bool, Error> {
    match HealthStatus::try_from(status) {
        Ok(HealthStatus::Unknown | HealthStatus::Healthy) => Ok(true),
        Ok(HealthStatus::Unhealthy | HealthStatus::Draining | HealthStatus::Timeout) => Ok(false),
        Ok(HealthStatus::Degraded) => Err(at
            .field("health_status")
            .error("degraded hosts are not supported")),
        Err(_) => Err(at
            .field("health_status")
            .error(format!("unknown health status {status}"))),
    }
}
