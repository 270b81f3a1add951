//! Proxy identity as Istio's pilot-agent builds it: the node id
//! `<type>~<ip>~<pod>.<namespace>~<namespace>.svc.cluster.local` and the
//! metadata keys the control plane reads.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// Node metadata key: the proxy's namespace.
pub const META_NAMESPACE: &str = "NAMESPACE";
/// Node metadata key: the workload's labels (a struct of strings).
pub const META_LABELS: &str = "LABELS";
/// Node metadata key: the service account the workload runs as.
pub const META_SERVICE_ACCOUNT: &str = "SERVICE_ACCOUNT";
/// Node metadata key: the workload's IP addresses.
pub const META_INSTANCE_IPS: &str = "INSTANCE_IPS";
/// Node metadata key: the Istio version the proxy claims.
pub const META_ISTIO_VERSION: &str = "ISTIO_VERSION";
/// Node metadata key: `"true"` when the agent's DNS proxy answers the
/// app's queries (Istio's `ISTIO_META_DNS_CAPTURE`); such a proxy is sent
/// the name table.
pub const META_DNS_CAPTURE: &str = "DNS_CAPTURE";
/// The workload's name, whatever the pod's (`ISTIO_META_WORKLOAD_NAME`).
pub const META_WORKLOAD_NAME: &str = "WORKLOAD_NAME";
/// The cluster the proxy runs in (`ISTIO_META_CLUSTER_ID`).
pub const META_CLUSTER_ID: &str = "CLUSTER_ID";
/// The default DNS domain suffix of a cluster.
pub const DOMAIN_SUFFIX: &str = "svc.cluster.local";

/// The role of a proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeType {
    /// An application's sidecar.
    Sidecar,
    /// A gateway (ingress or egress).
    Router,
}

impl NodeType {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeType::Sidecar => "sidecar",
            NodeType::Router => "router",
        }
    }
}

/// A parsed proxy node id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NodeId {
    pub node_type: NodeType,
    pub ip: String,
    /// `<pod>.<namespace>`.
    pub id: String,
    /// `<namespace>.svc.cluster.local`.
    pub domain: String,
}

/// A node id or label list that does not parse; the message says why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NodeIdError(String);

impl NodeId {
    /// The node id pilot-agent would build for a pod.
    pub fn new(node_type: NodeType, ip: &str, pod: &str, namespace: &str) -> Self {
        Self {
            node_type,
            ip: ip.to_string(),
            id: format!("{pod}.{namespace}"),
            domain: format!("{namespace}.{DOMAIN_SUFFIX}"),
        }
    }

    /// The namespace, taken from `<pod>.<namespace>` (or the domain).
    pub fn namespace(&self) -> Option<&str> {
        self.id
            .rsplit_once('.')
            .map(|(_, ns)| ns)
            .or_else(|| self.domain.split('.').next())
            .filter(|ns| !ns.is_empty())
    }

    /// The pod (workload) name.
    pub fn pod(&self) -> &str {
        self.id
            .rsplit_once('.')
            .map_or(self.id.as_str(), |(pod, _)| pod)
    }
}

impl FromStr for NodeId {
    type Err = NodeIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split('~').collect();
        let [node_type, ip, id, domain] = parts.as_slice() else {
            return Err(NodeIdError(format!(
                "node id {s:?} must have four '~'-separated parts: <sidecar|router>~<ip>~<pod>.<namespace>~<namespace>.svc.cluster.local"
            )));
        };
        let node_type = match *node_type {
            "sidecar" => NodeType::Sidecar,
            "router" => NodeType::Router,
            other => {
                return Err(NodeIdError(format!(
                    "node id {s:?}: unknown proxy type {other:?}, expected sidecar or router"
                )));
            }
        };
        Ok(Self {
            node_type,
            ip: ip.to_string(),
            id: id.to_string(),
            domain: domain.to_string(),
        })
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}~{}~{}~{}",
            self.node_type.as_str(),
            self.ip,
            self.id,
            self.domain
        )
    }
}

/// Parses `k=v,k2=v2` label lists as used on command lines.
pub fn parse_labels(text: &str) -> Result<BTreeMap<String, String>, NodeIdError> {
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            item.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .ok_or_else(|| NodeIdError(format!("label {item:?} must be key=value")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_id_round_trips() {
        let id = NodeId::new(NodeType::Sidecar, "10.1.0.5", "sleep-1", "default");
        let text = id.to_string();
        assert_eq!(
            text,
            "sidecar~10.1.0.5~sleep-1.default~default.svc.cluster.local"
        );
        let parsed: NodeId = text.parse().unwrap();
        assert_eq!(parsed, id);
        assert_eq!(parsed.namespace(), Some("default"));
        assert_eq!(parsed.pod(), "sleep-1");
    }

    #[test]
    fn node_id_rejects_bad_shapes() {
        assert!("sidecar~1.2.3.4".parse::<NodeId>().is_err());
        assert!("gateway~1~a.b~b.svc".parse::<NodeId>().is_err());
    }

    #[test]
    fn labels_parse() {
        let labels = parse_labels("istio=egressgateway, app=x").unwrap();
        assert_eq!(labels["istio"], "egressgateway");
        assert_eq!(labels["app"], "x");
        assert!(parse_labels("novalue").is_err());
    }
}
