//! Transparent capture for a sidecar, as istio-init sets it up, with no
//! way around it: outbound IPv4 TCP from the app is redirected to the
//! agent's outbound listener (15001), DNS optionally to its DNS proxy
//! (15053), QUIC and the app's IPv6 are refused, and `--lockdown` lets
//! nothing else out. `init` reconciles the rules in place with the wanted
//! ones (idempotent), cleanup removes exactly ours, and `analyze` reports
//! every path out that bypasses the proxy.

pub mod analyze;
mod apply;
mod filter;
mod nat;
mod plan;
mod ranges;
mod reconcile;
mod saved;

pub use apply::{read_saved, restore};
pub use plan::{CapturePlan, Family, FamilyRules};
pub use ranges::{IncludeRanges, parse_include, parse_ranges};
pub use reconcile::restore_input;
pub use saved::SavedRules;

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("invalid IP range {0:?}: expected a CIDR (a.b.c.d/n, x:y::/n) or an address")]
    InvalidRange(String),
    #[error("{command}: {reason}")]
    Command { command: String, reason: String },
}

/// Brings `family`'s rules to `wanted`: returns the restore input applied,
/// or `None` when the rules in place were already the wanted ones.
pub fn reconcile(wanted: &FamilyRules) -> Result<Option<String>, CaptureError> {
    let saved = read_saved(wanted.family)?;
    let input = restore_input(&saved, wanted);
    if let Some(input) = &input {
        restore(wanted.family, input)?;
    }
    Ok(input)
}
