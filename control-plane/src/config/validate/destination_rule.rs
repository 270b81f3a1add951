//! DestinationRule checks: host, subsets and traffic policies (top level,
//! per subset and per port), with Istio's ranges for connection pools,
//! outlier detection and load balancers.

use std::collections::HashMap;

use super::check::Check;
use crate::config::duration::Duration;
use crate::config::error::Problem;
use crate::config::model::{
    ConnectionPoolSettings, ConsistentHashLb, DestinationRule, H2UpgradePolicy,
    LoadBalancerSettings, OutlierDetection, TrafficPolicy,
};

/// Maglev's table size bound (exclusive), as Envoy and Istio check it.
const MAGLEV_TABLE_SIZE_LIMIT: u64 = 5_000_011;

impl Check<'_> {
    pub(super) fn destination_rule(&mut self, spec: &DestinationRule) {
        self.host("spec.host", &spec.host);
        if let Some(policy) = &spec.traffic_policy {
            self.traffic_policy("spec.trafficPolicy", policy);
        }
        let mut names: HashMap<&str, String> = HashMap::new();
        for (index, subset) in spec.subsets.iter().enumerate() {
            let field = format!("spec.subsets[{index}]");
            if subset.name.is_empty() {
                self.report(format!("{field}.name"), Problem::SubsetWithoutName);
            } else if let Some(first) = names.get(subset.name.as_str()) {
                let problem = Problem::DuplicateSubset {
                    name: subset.name.clone(),
                    first: first.clone(),
                };
                self.report(format!("{field}.name"), problem);
            } else {
                names.insert(&subset.name, field.clone());
            }
            if let Some(policy) = &subset.traffic_policy {
                self.traffic_policy(&format!("{field}.trafficPolicy"), policy);
            }
        }
    }

    fn traffic_policy(&mut self, field: &str, policy: &TrafficPolicy) {
        self.policy_components(
            field,
            policy.connection_pool.as_ref(),
            policy.outlier_detection.as_ref(),
            policy.load_balancer.as_ref(),
        );
        for (index, setting) in policy.port_level_settings.iter().enumerate() {
            let here = format!("{field}.portLevelSettings[{index}]");
            if let Some(port) = setting.port {
                self.port_number(format!("{here}.port.number"), port.number);
            }
            self.policy_components(
                &here,
                setting.connection_pool.as_ref(),
                setting.outlier_detection.as_ref(),
                setting.load_balancer.as_ref(),
            );
        }
    }

    fn policy_components(
        &mut self,
        field: &str,
        pool: Option<&ConnectionPoolSettings>,
        outlier: Option<&OutlierDetection>,
        lb: Option<&LoadBalancerSettings>,
    ) {
        if let Some(pool) = pool {
            self.connection_pool(&format!("{field}.connectionPool"), pool);
        }
        if let Some(outlier) = outlier {
            self.outlier_detection(&format!("{field}.outlierDetection"), outlier);
        }
        if let Some(lb) = lb {
            self.load_balancer(&format!("{field}.loadBalancer"), lb);
        }
    }

    fn connection_pool(&mut self, field: &str, pool: &ConnectionPoolSettings) {
        if pool.tcp.is_none() && pool.http.is_none() {
            self.report(field, Problem::EmptyConnectionPool);
        }
        if let Some(tcp) = &pool.tcp {
            let at = |name: &str| format!("{field}.tcp.{name}");
            self.optional_duration(at("connectTimeout"), tcp.connect_timeout);
            self.optional_duration(at("maxConnectionDuration"), tcp.max_connection_duration);
            // 0s turns the idle timeout off.
            let idle = tcp.idle_timeout.filter(|d| !d.0.is_zero());
            self.optional_duration(at("idleTimeout"), idle);
            if let Some(keepalive) = &tcp.tcp_keepalive {
                self.optional_duration(at("tcpKeepalive.time"), keepalive.time);
                self.optional_duration(at("tcpKeepalive.interval"), keepalive.interval);
            }
        }
        if let Some(http) = &pool.http {
            self.optional_duration(format!("{field}.http.idleTimeout"), http.idle_timeout);
            if http.h2_upgrade_policy == Some(H2UpgradePolicy::Upgrade)
                && http.use_client_protocol == Some(true)
            {
                self.report(
                    format!("{field}.http.useClientProtocol"),
                    Problem::UpgradeWithClientProtocol,
                );
            }
        }
    }

    fn outlier_detection(&mut self, field: &str, outlier: &OutlierDetection) {
        self.optional_duration(format!("{field}.interval"), outlier.interval);
        self.optional_duration(
            format!("{field}.baseEjectionTime"),
            outlier.base_ejection_time,
        );
        for (name, value) in [
            ("maxEjectionPercent", outlier.max_ejection_percent),
            ("minHealthPercent", outlier.min_health_percent),
        ] {
            if let Some(value) = value.filter(|v| !(0..=100).contains(v)) {
                self.report(
                    format!("{field}.{name}"),
                    Problem::PercentOutOfRange {
                        value: value.to_string(),
                    },
                );
            }
        }
    }

    fn load_balancer(&mut self, field: &str, lb: &LoadBalancerSettings) {
        let Some(hash) = &lb.consistent_hash else {
            return;
        };
        if lb.simple.is_some() {
            self.report(
                format!("{field}.consistentHash"),
                Problem::OneOf {
                    fields: "simple, consistentHash",
                },
            );
        }
        self.consistent_hash(&format!("{field}.consistentHash"), hash);
    }

    fn consistent_hash(&mut self, field: &str, hash: &ConsistentHashLb) {
        let keys = [
            hash.http_header_name.is_some(),
            hash.http_cookie.is_some(),
            hash.use_source_ip.is_some(),
            hash.http_query_parameter_name.is_some(),
        ];
        if keys.into_iter().filter(|set| *set).count() > 1 {
            self.report(
                field,
                Problem::OneOf {
                    fields: "httpHeaderName, httpCookie, useSourceIp, httpQueryParameterName",
                },
            );
        }
        if let Some(cookie) = &hash.http_cookie
            && cookie.name.is_empty()
        {
            self.report(
                format!("{field}.httpCookie.name"),
                Problem::CookieWithoutName,
            );
        }
        if hash.ring_hash.is_some() && hash.maglev.is_some() {
            self.report(
                field,
                Problem::OneOf {
                    fields: "ringHash, maglev",
                },
            );
        }
        let algorithm = hash.ring_hash.is_some() || hash.maglev.is_some();
        if hash.minimum_ring_size.is_some_and(|size| size != 0) && algorithm {
            self.report(
                format!("{field}.minimumRingSize"),
                Problem::OneOf {
                    fields: "minimumRingSize, ringHash, maglev",
                },
            );
        }
        if let Some(maglev) = &hash.maglev {
            let size = maglev.table_size.unwrap_or(0);
            let reason = if size == 0 {
                Some("must be set")
            } else if size >= MAGLEV_TABLE_SIZE_LIMIT {
                Some("must be less than 5000011")
            } else if !is_prime(size) {
                Some("must be a prime number")
            } else {
                None
            };
            if let Some(reason) = reason {
                self.report(
                    format!("{field}.maglev.tableSize"),
                    Problem::MaglevTableSize { size, reason },
                );
            }
        }
    }

    /// A duration, when set, as Istio's `ValidateDuration` takes it.
    fn optional_duration(&mut self, field: String, duration: Option<Duration>) {
        if let Some(duration) = duration {
            self.duration(&field, duration);
        }
    }
}

/// Envoy's primality test for maglev table sizes, which Istio copies (1
/// counts as prime there).
fn is_prime(n: u64) -> bool {
    if n < 4 {
        return n != 0;
    }
    if n.is_multiple_of(2) {
        return false;
    }
    (3..)
        .step_by(2)
        .take_while(|f| f * f <= n)
        .all(|factor| !n.is_multiple_of(factor))
}
