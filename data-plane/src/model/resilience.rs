//! A cluster's resilience settings as Envoy reads them: the circuit
//! breakers of the default priority, outlier detection, and the healthy
//! panic threshold.

use std::time::Duration;

/// `circuit_breakers.thresholds` of the DEFAULT priority; Envoy's defaults
/// (1024 connections, pending and active requests, 3 retries) when the
/// cluster sets none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CircuitBreakers {
    pub max_connections: u32,
    pub max_pending_requests: u32,
    pub max_requests: u32,
    pub max_retries: u32,
    /// Publish the `remaining_*` gauges.
    pub track_remaining: bool,
}

impl Default for CircuitBreakers {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            max_pending_requests: 1024,
            max_requests: 1024,
            max_retries: 3,
            track_remaining: false,
        }
    }
}

/// `outlier_detection`: the consecutive-error detectors Envoy runs, with
/// its defaults for unset fields. Enforcement values are percentages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutlierDetection {
    pub consecutive_5xx: u32,
    pub enforcing_consecutive_5xx: u32,
    pub consecutive_gateway_failure: u32,
    pub enforcing_consecutive_gateway_failure: u32,
    pub interval: Duration,
    pub base_ejection_time: Duration,
    /// At least `base_ejection_time` (Envoy: 300s or the base, whichever
    /// is larger, when unset).
    pub max_ejection_time: Duration,
    pub max_ejection_percent: u32,
    /// Eject one host even past `max_ejection_percent`.
    pub always_eject_one_host: bool,
}

impl Default for OutlierDetection {
    fn default() -> Self {
        Self {
            consecutive_5xx: 5,
            enforcing_consecutive_5xx: 100,
            consecutive_gateway_failure: 5,
            enforcing_consecutive_gateway_failure: 0,
            interval: Duration::from_secs(10),
            base_ejection_time: Duration::from_secs(30),
            max_ejection_time: Duration::from_secs(300),
            max_ejection_percent: 10,
            always_eject_one_host: false,
        }
    }
}

/// `common_lb_config.healthy_panic_threshold`, in hundredths of a percent:
/// below this share of healthy hosts, Envoy balances over all hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PanicThreshold(pub u32);

impl PanicThreshold {
    /// Envoy's default: 50%.
    pub const DEFAULT: Self = Self(5000);

    /// Whether `healthy` hosts out of `total` put the cluster in panic.
    pub fn in_panic(self, healthy: usize, total: usize) -> bool {
        if total == 0 {
            return false;
        }
        // healthy / total < threshold / 10000, in integers.
        (healthy as u64) * 10_000 < u64::from(self.0) * total as u64
    }
}

impl Default for PanicThreshold {
    fn default() -> Self {
        Self::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_when_fewer_healthy_hosts_than_the_threshold() {
        let half = PanicThreshold::DEFAULT;
        assert!(!half.in_panic(1, 2), "50% healthy is not below 50%");
        assert!(half.in_panic(1, 3));
        assert!(half.in_panic(0, 1));
        assert!(!PanicThreshold(0).in_panic(0, 1), "0 disables panic");
        assert!(!half.in_panic(0, 0));
    }
}
