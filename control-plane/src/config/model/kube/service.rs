//! core/v1 Service: the ports, cluster IPs, selector and external name istiod reads.

use serde::Deserialize;

use crate::config::model::Labels;

/// The annotation that sets a Service's `exportTo`, comma-separated.
pub const EXPORT_TO_ANNOTATION: &str = "networking.istio.io/exportTo";

/// A Service object; `metadata` is read by the loader.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct KubeService {
    #[serde(default)]
    pub spec: ServiceSpec,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSpec {
    #[serde(rename = "type", default)]
    pub service_type: ServiceType,
    #[serde(rename = "clusterIP")]
    pub cluster_ip: Option<String>,
    #[serde(rename = "clusterIPs", default)]
    pub cluster_ips: Vec<String>,
    #[serde(default)]
    pub ports: Vec<KubeServicePort>,
    #[serde(default)]
    pub selector: Labels,
    pub external_name: Option<String>,
}

impl ServiceSpec {
    /// `clusterIP: None`: no virtual IP, clients reach the endpoints directly.
    pub fn is_headless(&self) -> bool {
        self.cluster_ip.as_deref() == Some(CLUSTER_IP_NONE)
    }

    /// The cluster IPs, `clusterIP` first then the rest of `clusterIPs`;
    /// none for a headless Service.
    pub fn cluster_ips(&self) -> Vec<&str> {
        let mut ips: Vec<&str> = self.cluster_ip.as_deref().into_iter().collect();
        ips.extend(self.cluster_ips.iter().map(String::as_str));
        ips.retain(|ip| !ip.is_empty() && *ip != CLUSTER_IP_NONE);
        ips.dedup();
        ips
    }
}

/// How Kubernetes writes a headless Service's cluster IP.
pub const CLUSTER_IP_NONE: &str = "None";

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum ServiceType {
    #[default]
    ClusterIP,
    NodePort,
    LoadBalancer,
    ExternalName,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KubeServicePort {
    #[serde(default)]
    pub name: String,
    pub port: u32,
    pub target_port: Option<TargetPort>,
    /// `TCP` (the default), `UDP` or `SCTP`.
    pub protocol: Option<String>,
    pub app_protocol: Option<String>,
}

impl KubeServicePort {
    /// Carried over TCP: the only ports a proxy serves.
    pub fn is_tcp(&self) -> bool {
        self.protocol
            .as_deref()
            .is_none_or(|protocol| protocol.eq_ignore_ascii_case("TCP"))
    }
}

/// A Service port's `targetPort`: a number, or the name of a container port.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum TargetPort {
    Number(u32),
    Name(String),
}
