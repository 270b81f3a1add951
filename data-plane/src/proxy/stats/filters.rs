//! The counters of the HTTP filters before the router, per HTTP connection
//! manager, named as Envoy names them (`http.<stat_prefix>.fault.*`,
//! `http.<stat_prefix>.cors.*`, in Prometheus
//! `envoy_http_fault_delays_injected{envoy_http_conn_manager_prefix=…}`).
//! A connection manager's rows appear once its filter has run.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};

use super::DownstreamStats;

#[derive(Default)]
pub struct FilterStats {
    /// The connection manager runs the fault filter.
    pub fault: AtomicBool,
    pub delays_injected: AtomicU64,
    pub aborts_injected: AtomicU64,
    /// Requests being delayed or aborted now (a gauge).
    pub active_faults: AtomicI64,
    /// The connection manager runs the CORS filter.
    pub cors: AtomicBool,
    pub origin_valid: AtomicU64,
    pub origin_invalid: AtomicU64,
}

type Read = fn(&FilterStats) -> u64;

/// One filter's metrics (name, Prometheus type, reader).
type Metrics<'m> = &'m [(&'static str, &'static str, Read)];

/// Whether a connection manager runs the filter.
type Runs = fn(&FilterStats) -> bool;

/// The rows of the connection managers in `downstream` (sorted by prefix).
pub(super) fn render(out: &mut String, downstream: &[(Arc<str>, Arc<DownstreamStats>)]) {
    let fault: [(&'static str, &'static str, Read); 3] = [
        ("envoy_http_fault_delays_injected", "counter", |s| {
            s.delays_injected.load(Relaxed)
        }),
        ("envoy_http_fault_aborts_injected", "counter", |s| {
            s.aborts_injected.load(Relaxed)
        }),
        ("envoy_http_fault_active_faults", "gauge", |s| {
            u64::try_from(s.active_faults.load(Relaxed)).unwrap_or(0)
        }),
    ];
    let cors: [(&'static str, &'static str, Read); 2] = [
        ("envoy_http_cors_origin_valid", "counter", |s| {
            s.origin_valid.load(Relaxed)
        }),
        ("envoy_http_cors_origin_invalid", "counter", |s| {
            s.origin_invalid.load(Relaxed)
        }),
    ];
    let sets: [(Metrics<'_>, Runs); 2] = [
        (&fault, |s| s.fault.load(Relaxed)),
        (&cors, |s| s.cors.load(Relaxed)),
    ];
    for (metrics, runs) in sets {
        let running: Vec<_> = downstream
            .iter()
            .filter(|(_, stats)| runs(&stats.filters))
            .collect();
        if running.is_empty() {
            continue;
        }
        for (metric, kind, read) in metrics {
            let _ = writeln!(out, "# TYPE {metric} {kind}");
            for (prefix, stats) in &running {
                let _ = writeln!(
                    out,
                    "{metric}{{envoy_http_conn_manager_prefix=\"{prefix}\"}} {}",
                    read(&stats.filters)
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_connection_managers_running_a_filter_show_its_rows() {
        let faulty = Arc::new(DownstreamStats::default());
        faulty.filters.fault.store(true, Relaxed);
        faulty.filters.delays_injected.store(2, Relaxed);
        faulty.filters.aborts_injected.store(1, Relaxed);
        let plain = Arc::new(DownstreamStats::default());
        let mut out = String::new();
        render(
            &mut out,
            &[
                ("outbound_0.0.0.0_80".into(), faulty),
                ("outbound_0.0.0.0_8080".into(), plain),
            ],
        );
        assert!(out.contains(
            "envoy_http_fault_delays_injected{envoy_http_conn_manager_prefix=\"outbound_0.0.0.0_80\"} 2\n"
        ));
        assert!(out.contains(
            "envoy_http_fault_aborts_injected{envoy_http_conn_manager_prefix=\"outbound_0.0.0.0_80\"} 1\n"
        ));
        assert!(out.contains("# TYPE envoy_http_fault_active_faults gauge\n"));
        assert!(!out.contains("8080"), "{out}");
        assert!(!out.contains("cors"), "{out}");
    }
}
