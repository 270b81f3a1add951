//! `envoy.extensions.filters.http.cors.v3.CorsPolicy` → [`CorsPolicy`], as
//! istiod writes it on routes: allowed origins as string matchers, the
//! header values as comma-joined strings, enablement as runtime fractions.

use proto::pb::envoy::extensions::filters::http::cors::v3::CorsPolicy as PbCorsPolicy;

use super::fraction::runtime_fraction;
use super::{At, route};
use crate::model::Error;
use crate::model::cors::CorsPolicy;

pub(super) const CORS: &str = "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors";
pub(super) const CORS_POLICY: &str =
    "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy";

pub(super) fn cors_policy(p: &PbCorsPolicy, at: &At<'_>) -> Result<CorsPolicy, Error> {
    let allow_origins = p
        .allow_origin_string_match
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let at = at.field(format!("allow_origin_string_match[{i}]"));
            Ok((route::string_match(m, &at)?, m.ignore_case))
        })
        .collect::<Result<_, Error>>()?;
    let text = |s: &str| Some(s.to_string()).filter(|s| !s.is_empty());
    Ok(CorsPolicy {
        allow_origins,
        allow_methods: text(&p.allow_methods),
        allow_headers: text(&p.allow_headers),
        expose_headers: text(&p.expose_headers),
        max_age: text(&p.max_age),
        allow_credentials: p.allow_credentials.as_ref().map(|b| b.value),
        allow_private_network_access: p.allow_private_network_access.as_ref().map(|b| b.value),
        forward_not_matching_preflights: p
            .forward_not_matching_preflights
            .as_ref()
            .map(|b| b.value),
        filter_enabled: p
            .filter_enabled
            .as_ref()
            .map(|f| runtime_fraction(f, &at.field("filter_enabled")))
            .transpose()?,
        shadow_enabled: p
            .shadow_enabled
            .as_ref()
            .map(|f| runtime_fraction(f, &at.field("shadow_enabled")))
            .transpose()?,
    })
}
