//! `proxy-config clusters`: one row per cluster, its Istio name split into
//! service FQDN, port, subset and direction, as istioctl prints it.

use clap::{Args, ValueEnum};
use proto::pb::envoy::config::cluster::v3::Cluster;
use proto::pb::envoy::config::cluster::v3::cluster::{ClusterDiscoveryType, DiscoveryType};
use shared::naming::ClusterName;

use super::{Sent, istio_config_name};

pub const HEADER: [&str; 6] = [
    "SERVICE FQDN",
    "PORT",
    "SUBSET",
    "DIRECTION",
    "TYPE",
    "DESTINATION RULE",
];

/// istioctl's cluster filters: each keeps the clusters whose name holds it.
#[derive(Args, Default)]
pub struct ClusterFilter {
    /// Only clusters whose name contains this FQDN.
    #[arg(long)]
    pub fqdn: Option<String>,
    /// Only clusters of this port.
    #[arg(long)]
    pub port: Option<u16>,
    /// Only clusters whose name contains this subset.
    #[arg(long)]
    pub subset: Option<String>,
    /// Only clusters of this direction.
    #[arg(long, value_enum)]
    pub direction: Option<DirectionFilter>,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum DirectionFilter {
    Inbound,
    Outbound,
}

impl ClusterFilter {
    pub fn keep(&self, cluster: &Cluster) -> bool {
        let name = &cluster.name;
        let holds = |part: &Option<String>| part.as_ref().is_none_or(|p| name.contains(p.as_str()));
        let direction = self.direction.is_none_or(|d| {
            name.contains(match d {
                DirectionFilter::Inbound => "inbound",
                DirectionFilter::Outbound => "outbound",
            })
        });
        holds(&self.fqdn)
            && holds(&self.subset)
            && direction
            && self
                .port
                .is_none_or(|port| name.contains(&format!("|{port}|")))
    }
}

/// The rows, sorted as istioctl sorts them: by FQDN, subset, port, direction.
pub fn rows(clusters: &[Sent<Cluster>]) -> Vec<Vec<String>> {
    let mut keyed: Vec<_> = clusters
        .iter()
        .map(|sent| {
            let cluster = &sent.message;
            let (fqdn, port, subset, direction) = match ClusterName::parse(&cluster.name) {
                Some(name) => (
                    name.host.to_string(),
                    name.port,
                    name.subset.to_string(),
                    // The name's first part, `outbound` or `inbound`.
                    cluster.name.split('|').next().unwrap_or_default(),
                ),
                None => (cluster.name.clone(), 0, String::new(), ""),
            };
            let row = vec![
                fqdn.clone(),
                dash_if(port == 0, port.to_string()),
                dash_if(subset.is_empty(), subset.clone()),
                dash_if(direction.is_empty(), direction.to_string()),
                discovery_type(cluster).to_string(),
                istio_config_name(cluster.metadata.as_ref()),
            ];
            ((fqdn, subset, port, direction), row)
        })
        .collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    keyed.into_iter().map(|(_, row)| row).collect()
}

fn dash_if(empty: bool, value: String) -> String {
    if empty { "-".to_string() } else { value }
}

/// Envoy's name of the cluster's discovery type (`EDS`, `STRICT_DNS`...).
fn discovery_type(cluster: &Cluster) -> &'static str {
    match &cluster.cluster_discovery_type {
        Some(ClusterDiscoveryType::Type(t)) => DiscoveryType::try_from(*t)
            .unwrap_or(DiscoveryType::Static)
            .as_str_name(),
        _ => DiscoveryType::Static.as_str_name(),
    }
}
