//! The egress decision the control plane marks on fall-through routes and
//! filter chains (`filter_metadata["istio"]["egress_policy"]`), which the
//! agent carries into its access log lines and metrics.

/// What REGISTRY_ONLY decided about traffic no ServiceEntry allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EgressPolicy {
    /// REGISTRY_ONLY: the traffic is refused (BlackHoleCluster, `block_all`).
    Blocked,
    /// REGISTRY_ONLY dry run: the traffic goes out as under ALLOW_ANY, and
    /// would have been refused.
    WouldBlock,
}

impl EgressPolicy {
    /// The mark as xDS, log lines and metric labels spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            EgressPolicy::Blocked => "blocked",
            EgressPolicy::WouldBlock => "would_block",
        }
    }

    /// The mark of a log field or metric label: the policy, or `-` for none.
    pub fn label(policy: Option<Self>) -> &'static str {
        policy.map_or("-", Self::as_str)
    }

    /// The mark spelt `value`, if it is one.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "blocked" => Some(EgressPolicy::Blocked),
            "would_block" => Some(EgressPolicy::WouldBlock),
            _ => None,
        }
    }
}
