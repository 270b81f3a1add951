//! Sidecar: the hosts a sidecar sees and its outbound traffic policy.

use serde::Deserialize;

use super::{OutboundTrafficPolicy, WorkloadSelector};

/// Istio's dry-run annotation (as on AuthorizationPolicy): on a Sidecar
/// whose mode is REGISTRY_ONLY, `"true"` lets unregistered traffic out as
/// ALLOW_ANY does, marked `would_block`.
pub const DRY_RUN_ANNOTATION: &str = "istio.io/dry-run";

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Sidecar {
    pub workload_selector: Option<WorkloadSelector>,
    #[serde(default)]
    pub egress: Vec<IstioEgressListener>,
    pub outbound_traffic_policy: Option<OutboundTrafficPolicy>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IstioEgressListener {
    #[serde(default)]
    pub hosts: Vec<String>,
}
