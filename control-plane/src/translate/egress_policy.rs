//! The outbound policy a sidecar runs under (ALLOW_ANY, REGISTRY_ONLY, or
//! REGISTRY_ONLY in dry run) and the `istio`/`egress_policy` mark it puts on
//! the fall-through routes and filter chains.

use proto::pb::envoy::config::core::v3::Metadata;
use proto::wkt::{Struct, Value, value::Kind};
use shared::egress::{EGRESS_POLICY_FIELD, EgressPolicy, METADATA_NAMESPACE};
use shared::naming::{BLACKHOLE_CLUSTER, PASSTHROUGH_CLUSTER};

use crate::config::Resource;
use crate::config::model::{DRY_RUN_ANNOTATION, OutboundMode, Sidecar};

/// How unregistered traffic leaves a sidecar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboundPolicy {
    /// ALLOW_ANY: to PassthroughCluster, unmarked.
    AllowAny,
    /// REGISTRY_ONLY: to BlackHoleCluster (or a 502), marked `blocked`.
    RegistryOnly,
    /// REGISTRY_ONLY in dry run: as ALLOW_ANY, marked `would_block`.
    DryRun,
}

impl OutboundPolicy {
    /// The policy of a proxy: its Sidecar's mode, or else the mesh's; a
    /// REGISTRY_ONLY Sidecar annotated `istio.io/dry-run: "true"` is a
    /// dry run.
    pub fn of(sidecar: Option<&Resource<Sidecar>>, mesh_mode: OutboundMode) -> Self {
        let mode = sidecar
            .and_then(|s| s.spec.outbound_traffic_policy)
            .map_or(mesh_mode, |p| p.mode);
        let dry_run = sidecar.is_some_and(|s| {
            s.meta
                .annotations
                .get(DRY_RUN_ANNOTATION)
                .is_some_and(|v| v == "true")
        });
        match (mode, dry_run) {
            (OutboundMode::AllowAny, _) => Self::AllowAny,
            (OutboundMode::RegistryOnly, false) => Self::RegistryOnly,
            (OutboundMode::RegistryOnly, true) => Self::DryRun,
        }
    }

    /// Whether unregistered traffic is refused.
    pub fn blocks(self) -> bool {
        self == Self::RegistryOnly
    }

    /// The cluster unregistered TCP traffic goes to.
    pub fn fallthrough_cluster(self) -> &'static str {
        if self.blocks() {
            BLACKHOLE_CLUSTER
        } else {
            PASSTHROUGH_CLUSTER
        }
    }

    /// The mark of the fall-through route and chains: `blocked`,
    /// `would_block`, or none.
    pub fn mark(self) -> Option<EgressPolicy> {
        match self {
            Self::AllowAny => None,
            Self::RegistryOnly => Some(EgressPolicy::Blocked),
            Self::DryRun => Some(EgressPolicy::WouldBlock),
        }
    }

    /// The fall-through's metadata: `filter_metadata["istio"]` with
    /// `egress_policy` set to the mark, or none without a mark.
    pub fn metadata(self) -> Option<Metadata> {
        let mark = self.mark()?;
        let fields = [(
            EGRESS_POLICY_FIELD.to_string(),
            Value {
                kind: Some(Kind::StringValue(mark.as_str().to_string())),
            },
        )];
        Some(Metadata {
            filter_metadata: [(
                METADATA_NAMESPACE.to_string(),
                Struct {
                    fields: fields.into_iter().collect(),
                },
            )]
            .into_iter()
            .collect(),
            ..Default::default()
        })
    }
}

#[cfg(test)]
mod tests;
