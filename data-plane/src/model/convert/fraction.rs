//! Envoy's `FractionalPercent` and `RuntimeFractionalPercent` → a
//! [`Fraction`]. The agent has no runtime layer, so a runtime key changes
//! nothing: Envoy with no value under the key uses the default too.

use proto::pb::envoy::config::core::v3::RuntimeFractionalPercent;
use proto::pb::envoy::r#type::v3::{FractionalPercent, fractional_percent::DenominatorType};

use super::At;
use crate::model::Error;
use crate::model::fraction::Fraction;

/// A fractional percent; an absent one is 0 (Envoy's proto default).
pub(super) fn fraction(p: Option<&FractionalPercent>, at: &At<'_>) -> Result<Fraction, Error> {
    let Some(p) = p else {
        return Ok(Fraction {
            numerator: 0,
            denominator: 100,
        });
    };
    let denominator = match DenominatorType::try_from(p.denominator) {
        Ok(DenominatorType::Hundred) => 100,
        Ok(DenominatorType::TenThousand) => 10_000,
        Ok(DenominatorType::Million) => 1_000_000,
        Err(_) => {
            return Err(at
                .field("denominator")
                .error(format!("unknown denominator {}", p.denominator)));
        }
    };
    Ok(Fraction {
        numerator: p.numerator,
        denominator,
    })
}

/// A runtime fractional percent: its default value.
pub(super) fn runtime_fraction(
    p: &RuntimeFractionalPercent,
    at: &At<'_>,
) -> Result<Fraction, Error> {
    fraction(p.default_value.as_ref(), &at.field("default_value"))
}
