//! The proxy's identity, built as Istio's pilot-agent builds it.

use std::collections::BTreeMap;

use proto::pb::envoy::config::core::v3::Node;
use proto::wkt::{Struct, Value, value::Kind};
use shared::node::{self, NodeId, NodeType};

/// Who this proxy is.
#[derive(Debug, Clone)]
pub struct Identity {
    pub node_id: String,
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    pub ips: Vec<String>,
    pub service_account: String,
    /// The agent's DNS proxy answers the app's queries: node metadata
    /// `DNS_CAPTURE: "true"`, as pilot-agent sends it.
    pub dns_capture: bool,
    /// More node metadata, as pilot-agent takes it from `ISTIO_META_*`
    /// (strings) and `ISTIO_METAJSON_*` (objects) variables; the keys
    /// above are this agent's own and win.
    pub metadata: BTreeMap<String, Value>,
}

impl Identity {
    /// From an explicit node id, or from ip, pod and namespace.
    pub fn new(
        node_type: NodeType,
        node_id: Option<String>,
        ip: &str,
        pod: &str,
        namespace: &str,
        labels: BTreeMap<String, String>,
        service_account: &str,
    ) -> Result<Self, node::NodeIdError> {
        let (node_id, namespace, ip) = match node_id {
            Some(id) => {
                let parsed: NodeId = id.parse()?;
                let namespace = parsed.namespace().unwrap_or(namespace).to_string();
                let ip = parsed.ip.clone();
                (id, namespace, ip)
            }
            None => (
                NodeId::new(node_type, ip, pod, namespace).to_string(),
                namespace.to_string(),
                ip.to_string(),
            ),
        };
        Ok(Self {
            node_id,
            namespace,
            labels,
            ips: vec![ip],
            service_account: service_account.to_string(),
            dns_capture: false,
            metadata: BTreeMap::new(),
        })
    }

    /// The node metadata `key` when it is a string.
    pub fn metadata_text(&self, key: &str) -> Option<&str> {
        match self.metadata.get(key)?.kind.as_ref()? {
            Kind::StringValue(text) => Some(text),
            _ => None,
        }
    }

    /// The xDS `Node` with Istio's metadata keys.
    pub fn to_node(&self) -> Node {
        let string = |s: &str| Value {
            kind: Some(Kind::StringValue(s.to_string())),
        };
        let labels = Struct {
            fields: self
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), string(v)))
                .collect(),
        };
        let own = [
            (node::META_NAMESPACE, string(&self.namespace)),
            (node::META_INSTANCE_IPS, string(&self.ips.join(","))),
            (node::META_SERVICE_ACCOUNT, string(&self.service_account)),
            (
                node::META_LABELS,
                Value {
                    kind: Some(Kind::StructValue(labels)),
                },
            ),
        ]
        .into_iter()
        .chain(
            self.dns_capture
                .then(|| (node::META_DNS_CAPTURE, string("true"))),
        )
        .map(|(k, v)| (k.to_string(), v));
        let fields = self
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .chain(own)
            .collect();
        Node {
            id: self.node_id.clone(),
            cluster: self
                .labels
                .get("app")
                .cloned()
                .unwrap_or_else(|| "istio-proxy".to_string()),
            metadata: Some(Struct { fields }),
            user_agent_name: "data-plane".to_string(),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_istio_identity() {
        let labels = BTreeMap::from([("istio".to_string(), "egressgateway".to_string())]);
        let id = Identity::new(
            NodeType::Router,
            None,
            "10.0.0.9",
            "gw-1",
            "istio-system",
            labels,
            "gw",
        )
        .unwrap();
        assert_eq!(
            id.node_id,
            "router~10.0.0.9~gw-1.istio-system~istio-system.svc.cluster.local"
        );
        let node = id.to_node();
        let meta = node.metadata.unwrap();
        assert!(
            matches!(&meta.fields["NAMESPACE"].kind, Some(Kind::StringValue(ns)) if ns == "istio-system")
        );
        assert!(
            matches!(&meta.fields["LABELS"].kind, Some(Kind::StructValue(l)) if l.fields.contains_key("istio"))
        );
        assert!(
            matches!(&meta.fields["SERVICE_ACCOUNT"].kind, Some(Kind::StringValue(sa)) if sa == "gw"),
            "the control plane checks it against the token"
        );
    }

    /// The sidecar of workload `app` in `default`, at 10.0.0.5.
    fn app_sidecar() -> Identity {
        Identity::new(
            NodeType::Sidecar,
            None,
            "10.0.0.5",
            "app",
            "default",
            BTreeMap::new(),
            "app",
        )
        .unwrap()
    }

    #[test]
    fn dns_capture_is_announced_as_pilot_agent_announces_it() {
        let mut id = app_sidecar();
        let meta = id.to_node().metadata.unwrap();
        assert!(!meta.fields.contains_key("DNS_CAPTURE"));
        id.dns_capture = true;
        let meta = id.to_node().metadata.unwrap();
        assert!(
            matches!(&meta.fields["DNS_CAPTURE"].kind, Some(Kind::StringValue(v)) if v == "true")
        );
    }

    #[test]
    fn more_metadata_goes_along_and_never_replaces_the_agents_own() {
        let mut id = app_sidecar();
        let string = |s: &str| Value {
            kind: Some(Kind::StringValue(s.to_string())),
        };
        id.metadata
            .insert("CLUSTER_ID".into(), string("Kubernetes"));
        id.metadata.insert("NAMESPACE".into(), string("other"));
        let meta = id.to_node().metadata.unwrap();
        assert_eq!(meta.fields["CLUSTER_ID"], string("Kubernetes"));
        assert_eq!(meta.fields["NAMESPACE"], string("default"));
    }

    #[test]
    fn explicit_node_id_wins() {
        let id = Identity::new(
            NodeType::Sidecar,
            Some("sidecar~1.2.3.4~app.ns1~ns1.svc.cluster.local".into()),
            "",
            "",
            "default",
            BTreeMap::new(),
            "default",
        )
        .unwrap();
        assert_eq!(id.namespace, "ns1");
        assert_eq!(id.ips, vec!["1.2.3.4".to_string()]);
    }
}
