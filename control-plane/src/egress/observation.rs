//! What one access log entry says about egress: the source workload, the destination (host or SNI or IP, port, protocol), the decision and the traffic.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use shared::egress::EgressPolicy;

use crate::config::model::Labels;

/// The proxy that sent an entry: its token's namespace and service account,
/// its workload's name and its node's labels.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SourceWorkload {
    pub namespace: String,
    pub service_account: String,
    /// Istio's `source_workload`: [`shared::egress::workload_name`] of the
    /// node's pod and labels; empty in records written before it was kept.
    #[serde(default)]
    pub workload: String,
    #[serde(default)]
    pub labels: Labels,
}

impl SourceWorkload {
    /// The workload `other` of `namespace`: the traffic its workloads'
    /// `other` records cannot hold once those are at their bound.
    pub fn namespace_other(namespace: &str) -> Self {
        Self {
            namespace: namespace.to_string(),
            service_account: super::inventory::OTHER.to_string(),
            workload: super::inventory::OTHER.to_string(),
            labels: Labels::default(),
        }
    }

    /// The source of pod `pod`, named as Istio's telemetry names its
    /// workload (`source_workload`, the same rule as the agent's metrics).
    pub fn of_pod(namespace: &str, service_account: &str, pod: &str, labels: Labels) -> Self {
        Self {
            namespace: namespace.to_string(),
            service_account: service_account.to_string(),
            workload: shared::egress::workload_name(pod, &labels).to_string(),
            labels,
        }
    }

    /// The workload's name: Istio's `source_workload`, else (a record
    /// without one) its service account.
    pub fn name(&self) -> &str {
        if self.workload.is_empty() {
            &self.service_account
        } else {
            &self.workload
        }
    }
}

/// How the destination was reached, as the inventory records it: HTTP
/// entries are `HTTP`, TCP entries with an SNI `TLS`, other TCP `TCP`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Protocol {
    Http,
    Tls,
    Tcp,
}

impl Protocol {
    /// The name ServiceEntry ports and the inventory give it.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http => "HTTP",
            Protocol::Tls => "TLS",
            Protocol::Tcp => "TCP",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the traffic went: the Host (HTTP), the SNI (TLS) or the original
/// destination address (TCP), the port and the protocol.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Destination {
    pub host: String,
    pub port: u16,
    pub protocol: Protocol,
}

/// What the outbound policy did with the traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Allowed,
    Blocked,
    /// Let through under a REGISTRY_ONLY dry run that would have blocked it.
    WouldBlock,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allowed => "allowed",
            Decision::Blocked => EgressPolicy::Blocked.as_str(),
            Decision::WouldBlock => EgressPolicy::WouldBlock.as_str(),
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One outbound request or connection, read from an access log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// Shared by every entry of a stream.
    pub source: Arc<SourceWorkload>,
    pub destination: Destination,
    /// The resource that handled it: a ServiceEntry `namespace/name`,
    /// `PassthroughCluster`, `BlackHoleCluster` or `unknown` (see
    /// [`super::handled_by`]).
    pub handled_by: String,
    pub decision: Decision,
    /// Bytes from the workload (Envoy's received bytes, the request).
    pub received_bytes: u64,
    /// Bytes to the workload (Envoy's sent bytes, the response).
    pub sent_bytes: u64,
    /// The HTTP response code; `None` for TCP and TLS.
    pub response_code: Option<u32>,
    /// When it was recorded, in seconds since the Unix epoch.
    pub at: u64,
}

/// Response codes and how often each was seen.
pub type ResponseCodes = BTreeMap<u32, u64>;
