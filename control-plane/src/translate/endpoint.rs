//! EDS: a ClusterLoadAssignment for every EDS cluster.

use proto::pb::envoy::config::cluster::v3::Cluster;
use proto::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, Endpoint as EnvoyEndpoint, LbEndpoint, LocalityLbEndpoints, lb_endpoint,
};

use proto::pb::envoy::config::core::v3::Metadata;
use proto::wkt::{Struct, Value, value::Kind as ValueKind};
use shared::egress::METADATA_NAMESPACE;
use shared::workload::{ENDPOINT_WORKLOAD_FIELD, EndpointWorkload};

use super::cluster::eds_assignment;
use super::filters;
use super::registry::{Endpoint, MeshView};

pub fn build_endpoints(view: &MeshView<'_>, clusters: &[Cluster]) -> Vec<ClusterLoadAssignment> {
    clusters
        .iter()
        .filter_map(|c| eds_assignment(view, c))
        .collect()
}

/// The endpoints of `cluster_name`, in one locality; a workload's carries
/// it in its `istio.workload` metadata.
pub fn load_assignment(cluster_name: &str, endpoints: &[Endpoint]) -> ClusterLoadAssignment {
    let lb_endpoints = endpoints
        .iter()
        .map(|e| LbEndpoint {
            host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(EnvoyEndpoint {
                address: Some(filters::socket_address(&e.address, e.port)),
                ..Default::default()
            })),
            load_balancing_weight: e.weight.map(filters::u32_value),
            metadata: e.workload.as_ref().map(workload_metadata),
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

/// `filter_metadata["istio"]["workload"]`, as istiod's
/// `AppendLbEndpointMetadata` writes it: one namespace of one field, so it
/// always encodes to the same bytes (a resource's version hashes them).
fn workload_metadata(workload: &EndpointWorkload) -> Metadata {
    let value = Value {
        kind: Some(ValueKind::StringValue(workload.encode())),
    };
    let fields = [(ENDPOINT_WORKLOAD_FIELD.to_string(), value)]
        .into_iter()
        .collect();
    Metadata {
        filter_metadata: [(METADATA_NAMESPACE.to_string(), Struct { fields })]
            .into_iter()
            .collect(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn endpoint(address: &str, workload: Option<EndpointWorkload>) -> Endpoint {
        Endpoint {
            address: address.to_string(),
            port: 443,
            weight: None,
            workload,
        }
    }

    fn workload_field(lb: &LbEndpoint) -> Option<&str> {
        let istio = lb.metadata.as_ref()?.filter_metadata.get("istio")?;
        match istio.fields.get("workload")?.kind.as_ref()? {
            ValueKind::StringValue(text) => Some(text),
            _ => None,
        }
    }

    #[test]
    fn a_workload_endpoint_names_its_workload_and_others_carry_no_metadata() {
        let labels: BTreeMap<String, String> = [("app", "istio-egressgateway")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let gateway =
            EndpointWorkload::new("istio-egressgateway", "istio-system", &labels, "Kubernetes");
        let assignment = load_assignment(
            "outbound|443||istio-egressgateway.istio-system.svc.cluster.local",
            &[
                endpoint("10.0.0.7", Some(gateway)),
                endpoint("93.184.216.34", None),
            ],
        );
        let lb = &assignment.endpoints[0].lb_endpoints;
        assert_eq!(
            workload_field(&lb[0]),
            Some("istio-egressgateway;istio-system;istio-egressgateway;;Kubernetes")
        );
        assert_eq!(lb[0].metadata.as_ref().unwrap().filter_metadata.len(), 1);
        assert!(lb[1].metadata.is_none());
    }
}
