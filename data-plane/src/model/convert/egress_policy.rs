//! The egress mark of a route or filter chain: `metadata.filter_metadata
//! ["istio"]["egress_policy"]`, `"blocked"` or `"would_block"`. Other fields
//! of Istio's metadata are left alone; any other value of this one is
//! rejected.

use proto::pb::envoy::config::core::v3::Metadata;
use proto::wkt::value::Kind;
use shared::egress::{EGRESS_POLICY_FIELD, EgressPolicy, METADATA_NAMESPACE};

use super::At;
use crate::model::Error;

/// The mark in `metadata` (at `at`, the resource's `metadata` field), if any.
pub(super) fn egress_policy(
    metadata: Option<&Metadata>,
    at: &At<'_>,
) -> Result<Option<EgressPolicy>, Error> {
    let Some(value) = metadata
        .and_then(|m| m.filter_metadata.get(METADATA_NAMESPACE))
        .and_then(|istio| istio.fields.get(EGRESS_POLICY_FIELD))
    else {
        return Ok(None);
    };
    let at = at.field(format_args!(
        "filter_metadata.{METADATA_NAMESPACE}.{EGRESS_POLICY_FIELD}"
    ));
    match &value.kind {
        Some(Kind::StringValue(mark)) => EgressPolicy::parse(mark).map(Some).ok_or_else(|| {
            at.error(format!(
                "{mark:?} is not an egress policy (expected \"blocked\" or \"would_block\")"
            ))
        }),
        _ => Err(at.error("must be a string, \"blocked\" or \"would_block\"")),
    }
}
