//! The counters Envoy keeps per cluster for its circuit breakers, outlier
//! detection and panic mode, kept by cluster name so they outlive a
//! cluster update (as Envoy's stats do), and their Prometheus rendering
//! next to the gauges read from the running cluster.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::ClusterStatus;

/// Counters of one cluster (`cluster.<name>.…`).
#[derive(Debug, Default)]
pub(crate) struct ClusterCounters {
    pub(crate) cx_overflow: AtomicU64,
    pub(crate) rq_pending_overflow: AtomicU64,
    /// Requests past `max_requests`.
    pub(crate) rq_active_overflow: AtomicU64,
    pub(crate) rq_retry_overflow: AtomicU64,
    /// Pooled connections closed for the cluster's idle timeout.
    pub(crate) cx_idle_timeout: AtomicU64,
    /// Connections drained at `max_connection_duration`.
    pub(crate) cx_max_duration_reached: AtomicU64,
    pub(crate) lb_healthy_panic: AtomicU64,
    pub(crate) outlier: OutlierCounters,
}

/// `cluster.<name>.outlier_detection.…` counters.
#[derive(Debug, Default)]
pub(crate) struct OutlierCounters {
    pub(crate) ejections_enforced_total: AtomicU64,
    pub(crate) ejections_overflow: AtomicU64,
    pub(crate) ejections_enforced_consecutive_5xx: AtomicU64,
    pub(crate) ejections_detected_consecutive_5xx: AtomicU64,
    pub(crate) ejections_enforced_consecutive_gateway_failure: AtomicU64,
    pub(crate) ejections_detected_consecutive_gateway_failure: AtomicU64,
    /// Deprecated in Envoy, still counted: ejections for 5xx.
    pub(crate) ejections_total: AtomicU64,
    pub(crate) ejections_consecutive_5xx: AtomicU64,
}

/// One cluster as the stats see it: its status and its counters.
pub(crate) struct Row<'a> {
    pub(crate) status: &'a ClusterStatus,
    pub(crate) counters: &'a ClusterCounters,
}

type Read = fn(&Row<'_>) -> u64;
/// A counter of a cluster, and one of its outlier detection.
type Counter = fn(&ClusterCounters) -> &AtomicU64;
type OutlierCounter = fn(&OutlierCounters) -> &AtomicU64;

/// Writes the circuit breaker, outlier detection and panic series of
/// `rows` in Prometheus text, named as Envoy's `/stats/prometheus` names
/// them.
pub(crate) fn render(rows: &[Row<'_>], out: &mut String) {
    let counters: [(&str, Counter); 7] = [
        ("envoy_cluster_upstream_cx_overflow", |c| &c.cx_overflow),
        ("envoy_cluster_upstream_rq_pending_overflow", |c| {
            &c.rq_pending_overflow
        }),
        ("envoy_cluster_upstream_rq_active_overflow", |c| {
            &c.rq_active_overflow
        }),
        ("envoy_cluster_upstream_rq_retry_overflow", |c| {
            &c.rq_retry_overflow
        }),
        ("envoy_cluster_lb_healthy_panic", |c| &c.lb_healthy_panic),
        ("envoy_cluster_upstream_cx_max_duration_reached", |c| {
            &c.cx_max_duration_reached
        }),
        ("envoy_cluster_upstream_cx_idle_timeout", |c| {
            &c.cx_idle_timeout
        }),
    ];
    for (metric, read) in counters {
        family(out, metric, "counter", rows.iter(), |r| {
            read(r.counters).load(Relaxed)
        });
    }
    let gauges: [(&str, Read); 4] = [
        ("envoy_cluster_circuit_breakers_default_cx_open", |r| {
            u64::from(r.status.breakers.cx_open)
        }),
        (
            "envoy_cluster_circuit_breakers_default_rq_pending_open",
            |r| u64::from(r.status.breakers.rq_pending_open),
        ),
        ("envoy_cluster_circuit_breakers_default_rq_open", |r| {
            u64::from(r.status.breakers.rq_open)
        }),
        (
            "envoy_cluster_circuit_breakers_default_rq_retry_open",
            |r| u64::from(r.status.breakers.rq_retry_open),
        ),
    ];
    for (metric, read) in gauges {
        family(out, metric, "gauge", rows.iter(), read);
    }
    let remaining: [(&str, Read); 4] = [
        ("envoy_cluster_circuit_breakers_default_remaining_cx", |r| {
            r.status.breakers.remaining_cx
        }),
        (
            "envoy_cluster_circuit_breakers_default_remaining_pending",
            |r| r.status.breakers.remaining_pending,
        ),
        ("envoy_cluster_circuit_breakers_default_remaining_rq", |r| {
            r.status.breakers.remaining_rq
        }),
        (
            "envoy_cluster_circuit_breakers_default_remaining_retries",
            |r| r.status.breakers.remaining_retries,
        ),
    ];
    let tracking = || {
        rows.iter()
            .filter(|r| r.status.breakers.limits.track_remaining)
    };
    for (metric, read) in remaining {
        family(out, metric, "gauge", tracking(), read);
    }
    let detecting = || rows.iter().filter(|r| r.status.outlier_detection);
    family(
        out,
        "envoy_cluster_outlier_detection_ejections_active",
        "gauge",
        detecting(),
        |r| r.status.endpoints.iter().filter(|e| e.ejected).count() as u64,
    );
    let outlier: [(&str, OutlierCounter); 8] = [
        ("ejections_enforced_total", |o| &o.ejections_enforced_total),
        ("ejections_overflow", |o| &o.ejections_overflow),
        ("ejections_enforced_consecutive_5xx", |o| {
            &o.ejections_enforced_consecutive_5xx
        }),
        ("ejections_detected_consecutive_5xx", |o| {
            &o.ejections_detected_consecutive_5xx
        }),
        ("ejections_enforced_consecutive_gateway_failure", |o| {
            &o.ejections_enforced_consecutive_gateway_failure
        }),
        ("ejections_detected_consecutive_gateway_failure", |o| {
            &o.ejections_detected_consecutive_gateway_failure
        }),
        ("ejections_total", |o| &o.ejections_total),
        ("ejections_consecutive_5xx", |o| {
            &o.ejections_consecutive_5xx
        }),
    ];
    for (name, read) in outlier {
        let metric = format!("envoy_cluster_outlier_detection_{name}");
        family(out, &metric, "counter", detecting(), |r| {
            read(&r.counters.outlier).load(Relaxed)
        });
    }
}

fn family<'a, 'r: 'a>(
    out: &mut String,
    metric: &str,
    kind: &str,
    rows: impl Iterator<Item = &'a Row<'r>>,
    read: impl Fn(&Row<'_>) -> u64,
) {
    let _ = writeln!(out, "# TYPE {metric} {kind}");
    for row in rows {
        let _ = writeln!(
            out,
            "{metric}{{envoy_cluster_name=\"{}\"}} {}",
            row.status.name,
            read(row)
        );
    }
}
