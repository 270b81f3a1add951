//! `proxy-config endpoints`: one row per endpoint the proxy was sent, by
//! EDS or in a cluster's own load assignment (DNS and static clusters),
//! with its health status, locality and cluster, as istioctl prints it.

use clap::Args;
use proto::pb::envoy::config::cluster::v3::Cluster;
use proto::pb::envoy::config::core::v3::{HealthStatus, Locality, address, socket_address};
use proto::pb::envoy::config::endpoint::v3::{ClusterLoadAssignment, LbEndpoint, lb_endpoint};

use super::Sent;

pub const HEADER: [&str; 4] = ["ENDPOINT", "STATUS", "LOCALITY", "CLUSTER"];

/// istioctl's endpoint filters.
#[derive(Args, Default)]
pub struct EndpointFilter {
    /// Only endpoints of this address.
    #[arg(long)]
    pub address: Option<String>,
    /// Only endpoints of this port.
    #[arg(long)]
    pub port: Option<u32>,
    /// Only endpoints of this cluster (e.g. `outbound|443||edition.cnn.com`).
    #[arg(long)]
    pub cluster: Option<String>,
    /// Only endpoints with this status (e.g. HEALTHY).
    #[arg(long)]
    pub status: Option<String>,
}

impl EndpointFilter {
    /// Whether the assignment is of the cluster asked for.
    pub fn keep(&self, sent: &Sent<ClusterLoadAssignment>) -> bool {
        self.cluster
            .as_ref()
            .is_none_or(|c| sent.message.cluster_name == *c)
    }

    fn keep_endpoint(&self, row: &[String; 4], port: u32) -> bool {
        let address = row[0].rsplit_once(':').map_or(row[0].as_str(), |(a, _)| a);
        self.address.as_ref().is_none_or(|a| a == address)
            && self.port.is_none_or(|p| p == port)
            && self
                .status
                .as_ref()
                .is_none_or(|s| row[1].eq_ignore_ascii_case(s))
    }
}

/// The EDS assignments and, for clusters whose endpoints are in the
/// cluster itself, those: all the endpoints the proxy knows of.
pub fn assignments(
    mut eds: Vec<Sent<ClusterLoadAssignment>>,
    clusters: &[Sent<Cluster>],
) -> Vec<Sent<ClusterLoadAssignment>> {
    for cluster in clusters {
        if let Some(assignment) = &cluster.message.load_assignment {
            let mut assignment = assignment.clone();
            if assignment.cluster_name.is_empty() {
                assignment.cluster_name = cluster.message.name.clone();
            }
            eds.push(Sent {
                message: assignment,
                status: cluster.status,
            });
        }
    }
    eds.sort_by(|a, b| a.message.cluster_name.cmp(&b.message.cluster_name));
    eds
}

/// The rows, by cluster, each endpoint in the order it was sent.
pub fn rows(
    assignments: &[Sent<ClusterLoadAssignment>],
    filter: &EndpointFilter,
) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for sent in assignments {
        let assignment = &sent.message;
        for group in &assignment.endpoints {
            for endpoint in &group.lb_endpoints {
                let (address, port) = endpoint_address(endpoint);
                let row = [
                    address,
                    status(endpoint).to_string(),
                    locality(group.locality.as_ref()),
                    assignment.cluster_name.clone(),
                ];
                if filter.keep_endpoint(&row, port) {
                    rows.push(row.to_vec());
                }
            }
        }
    }
    rows
}

fn endpoint_address(endpoint: &LbEndpoint) -> (String, u32) {
    let Some(lb_endpoint::HostIdentifier::Endpoint(endpoint)) = &endpoint.host_identifier else {
        return (String::new(), 0);
    };
    match endpoint.address.as_ref().and_then(|a| a.address.as_ref()) {
        Some(address::Address::SocketAddress(socket)) => {
            let port = match socket.port_specifier {
                Some(socket_address::PortSpecifier::PortValue(port)) => port,
                _ => 0,
            };
            (format!("{}:{port}", socket.address), port)
        }
        Some(address::Address::Pipe(pipe)) => (pipe.path.clone(), 0),
        _ => (String::new(), 0),
    }
}

/// Envoy's health status; one EDS leaves unknown counts as HEALTHY, as in
/// Envoy's `/clusters`.
fn status(endpoint: &LbEndpoint) -> &'static str {
    match HealthStatus::try_from(endpoint.health_status).unwrap_or(HealthStatus::Unknown) {
        HealthStatus::Unknown | HealthStatus::Healthy => "HEALTHY",
        other => other.as_str_name(),
    }
}

fn locality(locality: Option<&Locality>) -> String {
    let Some(locality) = locality else {
        return String::new();
    };
    [&locality.region, &locality.zone, &locality.sub_zone]
        .iter()
        .filter(|part| !part.is_empty())
        .map(|part| part.as_str())
        .collect::<Vec<_>>()
        .join("/")
}
