//! EDS: a ClusterLoadAssignment for every EDS cluster.

use proto::pb::envoy::config::cluster::v3::Cluster;
use proto::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, Endpoint as EnvoyEndpoint, LbEndpoint, LocalityLbEndpoints, lb_endpoint,
};

use super::cluster::eds_assignment;
use super::filters;
use super::registry::{Endpoint, MeshView};

pub fn build_endpoints(view: &MeshView<'_>, clusters: &[Cluster]) -> Vec<ClusterLoadAssignment> {
    clusters
        .iter()
        .filter_map(|c| eds_assignment(view, c))
        .collect()
}

/// The endpoints of `cluster_name`, in one locality.
pub fn load_assignment(cluster_name: &str, endpoints: &[Endpoint]) -> ClusterLoadAssignment {
    let lb_endpoints = endpoints
        .iter()
        .map(|e| LbEndpoint {
            host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(EnvoyEndpoint {
                address: Some(filters::socket_address(&e.address, e.port)),
                ..Default::default()
            })),
            load_balancing_weight: e.weight.map(filters::u32_value),
            ..Default::default()
        })
        .collect();
    ClusterLoadAssignment {
        cluster_name: cluster_name.to_string(),
        endpoints: vec![LocalityLbEndpoints {
            lb_endpoints,
            ..Default::default()
        }],
        ..Default::default()
    }
}
