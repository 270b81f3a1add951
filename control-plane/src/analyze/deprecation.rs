//! Istio's `deprecation.FieldAnalyzer`: fields Istio's API marks
//! deprecated (IST0002): a fault delay's `percent` (Istio's analyzer),
//! and likewise `mirrorPercent` and a consistent hash's
//! `minimumRingSize`, each with the field that replaces it.

use super::generated;
use super::message::{DEPRECATED, Message, Subject};
use crate::config::model::TrafficPolicy;
use crate::config::{ConfigSnapshot, Kind};

pub(super) fn analyze(snapshot: &ConfigSnapshot, out: &mut Vec<Message>) {
    for vs in snapshot
        .virtual_services
        .iter()
        .filter(|vs| !generated(&vs.meta))
    {
        for (index, http) in vs.spec.http.iter().enumerate() {
            let delay = http.fault.as_ref().and_then(|f| f.delay.as_ref());
            if delay.and_then(|d| d.percent).is_some_and(|p| p > 0) {
                out.push(Message::istio(
                    DEPRECATED,
                    Subject::of(
                        Kind::VirtualService,
                        vs,
                        Some(format!("spec.http[{index}].fault.delay.percent")),
                    ),
                    replaced(
                        "HTTPRoute.fault.delay.percent",
                        "HTTPRoute.fault.delay.percentage",
                    ),
                ));
            }
            if http.mirror_percent.is_some() {
                out.push(Message::istio(
                    DEPRECATED,
                    Subject::of(
                        Kind::VirtualService,
                        vs,
                        Some(format!("spec.http[{index}].mirrorPercent")),
                    ),
                    replaced("HTTPRoute.mirrorPercent", "HTTPRoute.mirrorPercentage"),
                ));
            }
        }
    }
    for rule in snapshot
        .destination_rules
        .iter()
        .filter(|r| !generated(&r.meta))
    {
        let mut policies: Vec<(String, &TrafficPolicy)> = Vec::new();
        if let Some(policy) = &rule.spec.traffic_policy {
            policies.push(("spec.trafficPolicy".into(), policy));
        }
        for (index, subset) in rule.spec.subsets.iter().enumerate() {
            if let Some(policy) = &subset.traffic_policy {
                policies.push((format!("spec.subsets[{index}].trafficPolicy"), policy));
            }
        }
        for (field, policy) in policies {
            let mut balancers = vec![(field.clone(), policy.load_balancer.as_ref())];
            for (index, port) in policy.port_level_settings.iter().enumerate() {
                let at = format!("{field}.portLevelSettings[{index}]");
                balancers.push((at, port.load_balancer.as_ref()));
            }
            for (at, balancer) in balancers {
                let hash = balancer.and_then(|lb| lb.consistent_hash.as_ref());
                if hash.is_some_and(|h| h.minimum_ring_size.is_some()) {
                    out.push(Message::istio(
                        DEPRECATED,
                        Subject::of(
                            Kind::DestinationRule,
                            rule,
                            Some(format!("{at}.loadBalancer.consistentHash.minimumRingSize")),
                        ),
                        replaced(
                            "ConsistentHashLB.minimumRingSize",
                            "ConsistentHashLB.ringHash.minimumRingSize",
                        ),
                    ));
                }
            }
        }
    }
}

/// Istio's wording of a field replaced by another.
fn replaced(deprecated: &str, replacement: &str) -> String {
    format!("Deprecated: {deprecated} is deprecated; use {replacement}")
}
