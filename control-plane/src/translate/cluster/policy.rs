//! The traffic policy one cluster gets: a DestinationRule's top-level
//! policy, its subset's and their port-level settings, merged as istiod
//! merges them.

use crate::config::model::{
    ClientTlsSettings, ConnectionPoolSettings, LoadBalancerSettings, OutlierDetection, TlsMode,
    TrafficPolicy,
};

/// The traffic policy one cluster gets, after subset and port-level merging.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EffectivePolicy {
    pub load_balancer: Option<LoadBalancerSettings>,
    pub connection_pool: Option<ConnectionPoolSettings>,
    pub outlier_detection: Option<OutlierDetection>,
    pub tls: Option<ClientTlsSettings>,
}

impl EffectivePolicy {
    /// `policy` as it applies to `port`, and whether port-level settings
    /// matched: a port's settings replace all four components, those it
    /// omits fall back to the defaults (Istio: port-level settings do not
    /// inherit from the destination level).
    fn for_port(policy: &TrafficPolicy, port: u32) -> (Self, bool) {
        let port_level = policy
            .port_level_settings
            .iter()
            .find(|p| p.port.is_some_and(|sel| sel.number == port));
        match port_level {
            Some(p) => (
                Self {
                    load_balancer: p.load_balancer.clone(),
                    connection_pool: p.connection_pool.clone(),
                    outlier_detection: p.outlier_detection.clone(),
                    tls: p.tls.clone(),
                },
                true,
            ),
            None => (
                Self {
                    load_balancer: policy.load_balancer.clone(),
                    connection_pool: policy.connection_pool.clone(),
                    outlier_detection: policy.outlier_detection.clone(),
                    tls: policy.tls.clone(),
                },
                false,
            ),
        }
    }

    /// Istio's merge (`MergeSubsetTrafficPolicy`): the rule's policy for
    /// the port, overridden by each component the subset's policy sets; a
    /// subset's port-level settings replace all four components.
    pub fn merge(top: Option<&TrafficPolicy>, subset: Option<&TrafficPolicy>, port: u32) -> Self {
        let top = top.map(|t| Self::for_port(t, port).0);
        let Some(subset) = subset else {
            return top.unwrap_or_default();
        };
        let (subset, port_level) = Self::for_port(subset, port);
        let Some(mut merged) = top else {
            return subset;
        };
        if subset.load_balancer.is_some() || port_level {
            merged.load_balancer = subset.load_balancer;
        }
        if subset.connection_pool.is_some() || port_level {
            merged.connection_pool = subset.connection_pool;
        }
        if subset.outlier_detection.is_some() || port_level {
            merged.outlier_detection = subset.outlier_detection;
        }
        if subset.tls.is_some() || port_level {
            merged.tls = subset.tls;
        }
        merged
    }
}

impl EffectivePolicy {
    /// The policy without its TLS when `unreadable` and the TLS is SIMPLE or
    /// MUTUAL with a `credentialName`, as istiod leaves it out for a sidecar.
    pub(super) fn without_tls_if(mut self, unreadable: bool) -> Self {
        let credential = self.tls.as_ref().is_some_and(|tls| {
            tls.credential_name.is_some() && matches!(tls.mode, TlsMode::Simple | TlsMode::Mutual)
        });
        if unreadable && credential {
            self.tls = None;
        }
        self
    }
}
