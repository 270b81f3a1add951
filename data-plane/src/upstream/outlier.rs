//! Envoy's outlier detection for one cluster: consecutive 5xx responses and
//! consecutive gateway failures (502, 503, 504) of a host eject it from load
//! balancing. Local-origin failures count as Envoy counts them without
//! `split_external_local_origin_errors`: a connection that cannot be made
//! or is reset as a 503, a timed-out request as a 504.
//!
//! An ejection takes effect at once; the interval timer brings a host back
//! after `base_ejection_time` × its ejection backoff (capped by
//! `max_ejection_time`). Each enforced ejection raises the backoff, each
//! interval a host stays healthy after its return lowers it. No more than
//! `max_ejection_percent` of the hosts are ejected at once (one host past it
//! only with `always_eject_one_host`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};

use parking_lot::Mutex;
use tokio::time::Instant;

use crate::model::cluster::OutlierDetection;

use super::lb::Host;
use super::stats::ClusterCounters;

/// The outlier state of one host.
#[derive(Debug, Default)]
pub(crate) struct HostMonitor {
    consecutive_5xx: AtomicU32,
    consecutive_gateway_failure: AtomicU32,
    ejected: AtomicBool,
    ejection: Mutex<Ejection>,
}

#[derive(Debug, Default)]
struct Ejection {
    /// The multiplier of `base_ejection_time` for the next return.
    backoff: u32,
    last_ejection: Option<Instant>,
    last_unejection: Option<Instant>,
}

impl HostMonitor {
    /// Ejected by outlier detection (`/failed_outlier_check`).
    pub(crate) fn is_ejected(&self) -> bool {
        self.ejected.load(Relaxed)
    }

    fn reset(&self) {
        self.consecutive_5xx.store(0, Relaxed);
        self.consecutive_gateway_failure.store(0, Relaxed);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Consecutive5xx,
    ConsecutiveGatewayFailure,
}

/// What a finished attempt tells the detector about its host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The upstream's response status.
    Status(u16),
    /// The connection could not be made, or was reset (Envoy: 503).
    ConnectFailed,
    /// The attempt timed out (Envoy: 504).
    TimedOut,
    /// A TCP proxy connection was made (Envoy: 200).
    Connected,
}

impl Outcome {
    fn status(self) -> u16 {
        match self {
            Self::Status(status) => status,
            Self::ConnectFailed => 503,
            Self::TimedOut => 504,
            Self::Connected => 200,
        }
    }
}

/// The outlier detector of one cluster runtime.
#[derive(Debug)]
pub(crate) struct Detector {
    pub(crate) config: OutlierDetection,
    counters: Arc<ClusterCounters>,
    /// Ejection decisions, one at a time (Envoy's main thread).
    decisions: Mutex<()>,
    /// Changes at every ejection and return, so the healthy set is rebuilt.
    pub(crate) generation: AtomicU64,
}

impl Detector {
    pub(crate) fn new(config: OutlierDetection, counters: Arc<ClusterCounters>) -> Self {
        Self {
            config,
            counters,
            decisions: Mutex::new(()),
            generation: AtomicU64::new(0),
        }
    }

    /// Records an attempt's `outcome` on `host`, one of `hosts` (the
    /// cluster's), ejecting it when it reaches a consecutive threshold.
    pub(crate) fn record(&self, host: &Host, outcome: Outcome, hosts: &[Arc<Host>], now: Instant) {
        let monitor = &host.stats.outlier;
        let status = outcome.status();
        if !(500..600).contains(&status) {
            monitor.reset();
            return;
        }
        if matches!(status, 502..=504) {
            let count = monitor.consecutive_gateway_failure.fetch_add(1, Relaxed) + 1;
            if count == self.config.consecutive_gateway_failure {
                self.on_consecutive(host, Kind::ConsecutiveGatewayFailure, hosts, now);
            }
        } else {
            monitor.consecutive_gateway_failure.store(0, Relaxed);
        }
        let count = monitor.consecutive_5xx.fetch_add(1, Relaxed) + 1;
        if count == self.config.consecutive_5xx {
            self.on_consecutive(host, Kind::Consecutive5xx, hosts, now);
        }
    }

    fn on_consecutive(&self, host: &Host, kind: Kind, hosts: &[Arc<Host>], now: Instant) {
        let _decision = self.decisions.lock();
        let monitor = &host.stats.outlier;
        if monitor.is_ejected() {
            return;
        }
        let counters = &self.counters.outlier;
        match kind {
            Kind::Consecutive5xx => &counters.ejections_detected_consecutive_5xx,
            Kind::ConsecutiveGatewayFailure => {
                &counters.ejections_detected_consecutive_gateway_failure
            }
        }
        .fetch_add(1, Relaxed);
        self.eject(monitor, kind, hosts, now);
        match kind {
            Kind::Consecutive5xx => {
                counters.ejections_consecutive_5xx.fetch_add(1, Relaxed);
                monitor.consecutive_5xx.store(0, Relaxed);
            }
            Kind::ConsecutiveGatewayFailure => {
                monitor.consecutive_gateway_failure.store(0, Relaxed);
            }
        }
    }

    fn eject(&self, monitor: &HostMonitor, kind: Kind, hosts: &[Arc<Host>], now: Instant) {
        let counters = &self.counters.outlier;
        let active = hosts
            .iter()
            .filter(|h| h.stats.outlier.is_ejected())
            .count();
        let total = hosts.len().max(1);
        let within = 100 * (active + 1) <= self.config.max_ejection_percent as usize * total;
        if !(within || (self.config.always_eject_one_host && active == 0)) {
            counters.ejections_overflow.fetch_add(1, Relaxed);
            return;
        }
        if kind == Kind::Consecutive5xx {
            counters.ejections_total.fetch_add(1, Relaxed);
        }
        let enforcing = match kind {
            Kind::Consecutive5xx => self.config.enforcing_consecutive_5xx,
            Kind::ConsecutiveGatewayFailure => self.config.enforcing_consecutive_gateway_failure,
        };
        if fastrand::u32(..100) >= enforcing {
            return;
        }
        counters.ejections_enforced_total.fetch_add(1, Relaxed);
        match kind {
            Kind::Consecutive5xx => &counters.ejections_enforced_consecutive_5xx,
            Kind::ConsecutiveGatewayFailure => {
                &counters.ejections_enforced_consecutive_gateway_failure
            }
        }
        .fetch_add(1, Relaxed);
        let mut ejection = monitor.ejection.lock();
        monitor.ejected.store(true, Relaxed);
        ejection.last_ejection = Some(now);
        let base = self.config.base_ejection_time;
        if base * ejection.backoff < self.config.max_ejection_time + base {
            ejection.backoff += 1;
        }
        self.generation.fetch_add(1, Relaxed);
        tracing::debug!(
            backoff = ejection.backoff,
            ?kind,
            "outlier detection ejected a host"
        );
    }

    /// The interval timer: returns hosts whose ejection time is over, and
    /// lowers the backoff of hosts that stayed healthy.
    pub(crate) fn on_interval(&self, hosts: &[Arc<Host>], now: Instant) {
        let _decision = self.decisions.lock();
        let base = self.config.base_ejection_time;
        for host in hosts {
            let monitor = &host.stats.outlier;
            let mut ejection = monitor.ejection.lock();
            if monitor.is_ejected() {
                let ejected_for = ejection
                    .last_ejection
                    .map_or(std::time::Duration::ZERO, |at| {
                        now.saturating_duration_since(at)
                    });
                if (base * ejection.backoff).min(self.config.max_ejection_time) <= ejected_for {
                    monitor.ejected.store(false, Relaxed);
                    monitor.reset();
                    ejection.last_unejection = Some(now);
                    self.generation.fetch_add(1, Relaxed);
                }
            } else if ejection
                .last_unejection
                .is_some_and(|at| now.saturating_duration_since(at) >= self.config.interval)
            {
                ejection.backoff = ejection.backoff.saturating_sub(1);
            }
        }
    }
}

#[cfg(test)]
mod tests;
