//! What the control plane and the agent agree on about egress: the mark on
//! fall-through routes and chains, the access log service cluster, the body
//! of a blocked request and how a workload is named in telemetry.

use std::collections::BTreeMap;

/// The cluster Envoy's gRPC access loggers stream to (Istio's name); the
/// agent serves it by streaming to its control plane.
pub const ACCESS_LOG_SERVICE_CLUSTER: &str = "envoy_accesslog_service";
/// The filter metadata namespace the egress mark lives in.
pub const METADATA_NAMESPACE: &str = "istio";
/// The mark's field in that namespace (and the access log tag holding it).
pub const EGRESS_POLICY_FIELD: &str = "egress_policy";

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

/// Envoy's command operator for the request's authority.
const ENVOY_AUTHORITY: &str = "%REQ(:AUTHORITY)%";

/// The body of the 502 answering a request for `host` that no ServiceEntry
/// allows (text/plain).
pub fn blocked_body(host: &str) -> String {
    format!("no ServiceEntry allows {host} (REGISTRY_ONLY)\n")
}

/// The same body as an Envoy substitution format string.
pub fn envoy_blocked_body_format() -> String {
    blocked_body(ENVOY_AUTHORITY)
}

/// The label Istio names a workload by, over the pod name rule.
const WORKLOAD_NAME_LABEL: &str = "service.istio.io/workload-name";
/// The label Kubernetes puts on a Deployment's pods.
const POD_TEMPLATE_HASH_LABEL: &str = "pod-template-hash";

/// The workload of pod `pod` as Istio's `source_workload` names it: the
/// `service.istio.io/workload-name` label, else the Deployment's name (the
/// pod name before `-<pod-template-hash>-`), else the pod name.
pub fn workload_name<'a>(pod: &'a str, labels: &'a BTreeMap<String, String>) -> &'a str {
    if let Some(name) = labels.get(WORKLOAD_NAME_LABEL) {
        return name;
    }
    labels
        .get(POD_TEMPLATE_HASH_LABEL)
        .filter(|hash| !hash.is_empty())
        .and_then(|hash| {
            let (deployment, rest) = pod.split_once(&format!("-{hash}-"))?;
            (!rest.is_empty()).then_some(deployment)
        })
        .unwrap_or(pod)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::labels;

    #[test]
    fn marks_round_trip_and_others_are_not_marks() {
        for policy in [EgressPolicy::Blocked, EgressPolicy::WouldBlock] {
            assert_eq!(EgressPolicy::parse(policy.as_str()), Some(policy));
        }
        assert_eq!(EgressPolicy::parse("allowed"), None);
        assert_eq!(EgressPolicy::label(None), "-");
        assert_eq!(
            EgressPolicy::label(Some(EgressPolicy::WouldBlock)),
            "would_block"
        );
    }

    #[test]
    fn blocked_body_names_the_host_for_agent_and_envoy() {
        assert_eq!(
            blocked_body("evil.example:8080"),
            "no ServiceEntry allows evil.example:8080 (REGISTRY_ONLY)\n"
        );
        assert_eq!(
            envoy_blocked_body_format(),
            "no ServiceEntry allows %REQ(:AUTHORITY)% (REGISTRY_ONLY)\n"
        );
    }

    #[test]
    fn workload_is_the_label_else_the_deployment_else_the_pod() {
        let hashed = labels(&[("pod-template-hash", "7d4b9c6f5")]);
        assert_eq!(workload_name("sleep-7d4b9c6f5-x2x8k", &hashed), "sleep");
        let named = labels(&[
            ("pod-template-hash", "7d4b9c6f5"),
            ("service.istio.io/workload-name", "sleeper"),
        ]);
        assert_eq!(workload_name("sleep-7d4b9c6f5-x2x8k", &named), "sleeper");
        assert_eq!(workload_name("curl", &labels(&[("app", "curl")])), "curl");
        assert_eq!(workload_name("other-pod", &hashed), "other-pod");
    }
}
