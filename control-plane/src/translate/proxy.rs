//! The proxy a translation is for, read from its xDS `Node` as istiod does.

use std::collections::BTreeMap;

use proto::pb::envoy::config::core::v3::Node;
use proto::wkt::{Struct, value::Kind};
use shared::node::{self, NodeId, NodeIdError, NodeType};
use shared::workload::{DEFAULT_CLUSTER_ID, EndpointWorkload};

use crate::config::model::Labels;

/// A connected proxy: its role, namespace, labels and addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proxy {
    pub id: String,
    pub node_type: NodeType,
    pub namespace: String,
    pub labels: Labels,
    pub ips: Vec<String>,
    pub service_account: String,
    /// Its agent answers the app's DNS queries (node metadata
    /// `DNS_CAPTURE`): it is sent the name table.
    pub dns_capture: bool,
}

/// A connected proxy, as a workload that can be an endpoint of the services
/// whose `workloadSelector` admits it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Workload {
    pub namespace: String,
    pub address: String,
    pub labels: Labels,
    /// The service account its identity was proven for (its token).
    pub service_account: String,
    /// A connected gateway whose service account the control plane was told
    /// to trust as a gateway's (`--gateway-service-account`): it may be an
    /// endpoint of the services that select its labels.
    pub trusted_gateway: bool,
    /// A gateway (node type `router`), whatever its service account.
    pub router: bool,
    /// Its workload's name, as its own telemetry names it
    /// (`source_workload`).
    pub name: String,
    /// Its `CLUSTER_ID`.
    pub cluster: String,
}

impl Workload {
    /// Applies node metadata `WORKLOAD_NAME` (which names the workload
    /// whatever its pod's name) and `CLUSTER_ID`, as the agent applies them
    /// to its own `source_workload` and `source_cluster`.
    pub fn with_node_metadata(mut self, node: &Node) -> Self {
        if let Some(metadata) = node.metadata.as_ref() {
            if let Some(name) = string_field(metadata, node::META_WORKLOAD_NAME) {
                self.name = name;
            }
            if let Some(cluster) = string_field(metadata, node::META_CLUSTER_ID) {
                self.cluster = cluster;
            }
        }
        self
    }

    /// The `istio.workload` metadata of its endpoints.
    pub fn endpoint_workload(&self) -> EndpointWorkload {
        EndpointWorkload::new(&self.name, &self.namespace, &self.labels, &self.cluster)
    }
}

impl Proxy {
    /// Reads the node id (`sidecar~ip~pod.ns~ns.svc.cluster.local`) and the
    /// `NAMESPACE`, `LABELS`, `INSTANCE_IPS`, `SERVICE_ACCOUNT` and
    /// `DNS_CAPTURE` metadata.
    pub fn from_node(node: &Node) -> Result<Self, NodeIdError> {
        let id: NodeId = node.id.parse()?;
        let metadata = node.metadata.as_ref();
        let namespace = metadata
            .and_then(|m| string_field(m, node::META_NAMESPACE))
            .or_else(|| id.namespace().map(str::to_string))
            .unwrap_or_else(|| crate::config::DEFAULT_NAMESPACE.to_string());
        let labels = metadata.map(labels_field).unwrap_or_default();
        let mut ips: Vec<String> = metadata
            .and_then(|m| string_field(m, node::META_INSTANCE_IPS))
            .map(|ips| {
                ips.split(',')
                    .map(|ip| ip.trim().to_string())
                    .filter(|ip| !ip.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        if ips.is_empty() && !id.ip.is_empty() {
            ips.push(id.ip.clone());
        }
        let service_account = metadata
            .and_then(|m| string_field(m, node::META_SERVICE_ACCOUNT))
            .unwrap_or_else(|| "default".to_string());
        let dns_capture = metadata
            .and_then(|m| string_field(m, node::META_DNS_CAPTURE))
            .is_some_and(|value| is_true(&value));
        Ok(Self {
            id: node.id.clone(),
            node_type: id.node_type,
            namespace,
            labels,
            ips,
            service_account,
            dns_capture,
        })
    }

    /// Builds the `Node` a proxy with this identity would send.
    pub fn to_node(&self) -> Node {
        let mut fields = BTreeMap::new();
        fields.insert(
            node::META_NAMESPACE.to_string(),
            string_value(&self.namespace),
        );
        fields.insert(
            node::META_INSTANCE_IPS.to_string(),
            string_value(&self.ips.join(",")),
        );
        fields.insert(
            node::META_SERVICE_ACCOUNT.to_string(),
            string_value(&self.service_account),
        );
        if self.dns_capture {
            fields.insert(node::META_DNS_CAPTURE.to_string(), string_value("true"));
        }
        let labels = self
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), string_value(v)))
            .collect();
        fields.insert(
            node::META_LABELS.to_string(),
            proto::wkt::Value {
                kind: Some(Kind::StructValue(Struct { fields: labels })),
            },
        );
        Node {
            id: self.id.clone(),
            metadata: Some(Struct {
                fields: fields.into_iter().collect(),
            }),
            ..Default::default()
        }
    }

    /// This proxy as a workload, for services that select it, named by
    /// its pod and labels (see [`shared::egress::workload_name`]) in
    /// Istio's default cluster.
    pub fn as_workload(&self) -> Option<Workload> {
        let node_id = self.id.parse::<NodeId>().ok();
        let pod = node_id.as_ref().map_or(self.id.as_str(), NodeId::pod);
        Some(Workload {
            name: shared::egress::workload_name(pod, &self.labels).to_string(),
            cluster: DEFAULT_CLUSTER_ID.to_string(),
            namespace: self.namespace.clone(),
            address: self.ips.first()?.clone(),
            labels: self.labels.clone(),
            service_account: self.service_account.clone(),
            trusted_gateway: false,
            router: self.node_type == NodeType::Router,
        })
    }
}

/// A boolean metadata value as istiod reads one (Go's `strconv.ParseBool`).
fn is_true(value: &str) -> bool {
    matches!(value, "1" | "t" | "T" | "true" | "TRUE" | "True")
}

fn string_value(text: &str) -> proto::wkt::Value {
    proto::wkt::Value {
        kind: Some(Kind::StringValue(text.to_string())),
    }
}

fn string_field(metadata: &Struct, key: &str) -> Option<String> {
    match metadata.fields.get(key)?.kind.as_ref()? {
        Kind::StringValue(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

fn labels_field(metadata: &Struct) -> Labels {
    let Some(Kind::StructValue(labels)) = metadata
        .fields
        .get(node::META_LABELS)
        .and_then(|v| v.kind.as_ref())
    else {
        return Labels::new();
    };
    labels
        .fields
        .iter()
        .filter_map(|(k, v)| match v.kind.as_ref()? {
            Kind::StringValue(s) => Some((k.clone(), s.clone())),
            _ => None,
        })
        .collect()
}
