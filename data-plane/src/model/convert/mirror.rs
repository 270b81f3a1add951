//! A route action's `request_mirror_policies` → [`MirrorPolicy`]s, as
//! istiod writes them (cluster, runtime fraction, `trace_sampled`). A
//! cluster named by a header, header mutations and host rewrites are
//! rejected.

use proto::pb::envoy::config::route::v3::route_action::RequestMirrorPolicy;

use super::At;
use super::fraction::runtime_fraction;
use crate::model::Error;
use crate::model::fraction::Fraction;
use crate::model::mirror::MirrorPolicy;

pub(super) fn mirror_policies(
    policies: &[RequestMirrorPolicy],
    at: &At<'_>,
) -> Result<Vec<MirrorPolicy>, Error> {
    policies
        .iter()
        .enumerate()
        .map(|(i, p)| mirror_policy(p, &at.field(format!("request_mirror_policies[{i}]"))))
        .collect()
}

/// One policy; `trace_sampled` only concerns tracing, which the agent
/// does not do.
fn mirror_policy(p: &RequestMirrorPolicy, at: &At<'_>) -> Result<MirrorPolicy, Error> {
    let unsupported = [
        ("cluster_header", !p.cluster_header.is_empty()),
        (
            "request_headers_mutations",
            !p.request_headers_mutations.is_empty(),
        ),
        ("host_rewrite_literal", !p.host_rewrite_literal.is_empty()),
    ];
    if let Some((field, _)) = unsupported.iter().find(|(_, set)| *set) {
        return Err(at
            .field(field)
            .error("not supported by this agent (mirrors name their cluster)"));
    }
    if p.cluster.is_empty() {
        return Err(at.field("cluster").error("a cluster is required"));
    }
    let fraction = match &p.runtime_fraction {
        None => Fraction::ALL,
        Some(f) => runtime_fraction(f, &at.field("runtime_fraction"))?,
    };
    Ok(MirrorPolicy {
        cluster: p.cluster.as_str().into(),
        fraction,
        host_suffix: !p.disable_shadow_host_suffix_append,
    })
}
