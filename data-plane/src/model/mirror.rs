//! Request mirroring (a route's `request_mirror_policies`): a copy of the
//! request sent to another cluster, its answer discarded.

use std::sync::Arc;

use super::fraction::Fraction;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorPolicy {
    pub cluster: Arc<str>,
    /// Share of requests mirrored (all when the policy sets none).
    pub fraction: Fraction,
    /// Suffix the shadow's host with `-shadow` (Envoy's default).
    pub host_suffix: bool,
}
