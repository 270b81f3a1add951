//! tcp_proxy `hash_policy` → model: Envoy takes at most one, and the agent
//! hashes by the downstream source IP only (istiod's `useSourceIp`).

use proto::pb::envoy::r#type::v3::HashPolicy;
use proto::pb::envoy::r#type::v3::hash_policy::PolicySpecifier;

use super::At;
use crate::model::Error;

/// Whether the connection's source IP picks the host; `filter_state`
/// policies are rejected.
pub(super) fn source_ip(policies: &[HashPolicy], at: &At<'_>) -> Result<bool, Error> {
    match policies {
        [] => Ok(false),
        [policy] => match &policy.policy_specifier {
            Some(PolicySpecifier::SourceIp(_)) => Ok(true),
            Some(PolicySpecifier::FilterState(_)) => Err(at
                .field("hash_policy[0].filter_state")
                .error("not supported by this agent: only source_ip")),
            None => Err(at
                .field("hash_policy[0]")
                .error("a hash policy needs source_ip or filter_state")),
        },
        _ => Err(at
            .field("hash_policy")
            .error("at most one hash policy (Envoy's limit)")),
    }
}

#[cfg(test)]
mod tests {
    use proto::pb::envoy::r#type::v3::hash_policy::{FilterState, SourceIp};

    use super::*;

    fn policy(specifier: PolicySpecifier) -> HashPolicy {
        HashPolicy {
            policy_specifier: Some(specifier),
        }
    }

    fn convert(policies: &[HashPolicy]) -> Result<bool, Error> {
        source_ip(policies, &At::resource("listener", "0.0.0.0_3306"))
    }

    #[test]
    fn source_ip_hashes_and_no_policy_picks_at_random() {
        assert!(convert(&[policy(PolicySpecifier::SourceIp(SourceIp {}))]).unwrap());
        assert!(!convert(&[]).unwrap());
    }

    #[test]
    fn filter_state_empty_and_several_policies_are_rejected() {
        let filter_state = policy(PolicySpecifier::FilterState(FilterState {
            key: "k".into(),
        }));
        assert_eq!(
            convert(std::slice::from_ref(&filter_state))
                .unwrap_err()
                .field,
            "hash_policy[0].filter_state"
        );
        assert!(convert(&[HashPolicy::default()]).is_err());
        let ip = policy(PolicySpecifier::SourceIp(SourceIp {}));
        assert!(convert(&[ip.clone(), ip]).is_err());
    }
}
