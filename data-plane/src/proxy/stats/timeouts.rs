//! The counters of an HTTP connection manager's timeouts, named as Envoy
//! names them (`http.<stat_prefix>.downstream_rq_header_timeout`, in
//! Prometheus `envoy_http_downstream_rq_header_timeout{envoy_http_conn_manager_prefix=…}`).

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::DownstreamStats;

#[derive(Default)]
pub struct TimeoutStats {
    /// Connections closed by the connection idle timeout.
    pub cx_idle_timeout: AtomicU64,
    /// Connections drained at `max_connection_duration`.
    pub cx_max_duration_reached: AtomicU64,
    /// Requests whose head was not complete within `request_headers_timeout`.
    pub rq_header_timeout: AtomicU64,
    /// Streams ended by `stream_idle_timeout`.
    pub rq_idle_timeout: AtomicU64,
    /// Requests not received whole within `request_timeout`.
    pub rq_timeout: AtomicU64,
    /// Streams ended by `max_stream_duration`.
    pub rq_max_duration_reached: AtomicU64,
}

type Read = fn(&TimeoutStats) -> u64;

/// The rows of the connection managers in `downstream` (sorted by prefix).
pub(super) fn render(out: &mut String, downstream: &[(Arc<str>, Arc<DownstreamStats>)]) {
    let metrics: [(&str, Read); 6] = [
        ("envoy_http_downstream_cx_idle_timeout", |s| {
            s.cx_idle_timeout.load(Relaxed)
        }),
        ("envoy_http_downstream_cx_max_duration_reached", |s| {
            s.cx_max_duration_reached.load(Relaxed)
        }),
        ("envoy_http_downstream_rq_header_timeout", |s| {
            s.rq_header_timeout.load(Relaxed)
        }),
        ("envoy_http_downstream_rq_idle_timeout", |s| {
            s.rq_idle_timeout.load(Relaxed)
        }),
        ("envoy_http_downstream_rq_timeout", |s| {
            s.rq_timeout.load(Relaxed)
        }),
        ("envoy_http_downstream_rq_max_duration_reached", |s| {
            s.rq_max_duration_reached.load(Relaxed)
        }),
    ];
    for (metric, read) in metrics {
        let _ = writeln!(out, "# TYPE {metric} counter");
        for (prefix, stats) in downstream {
            let _ = writeln!(
                out,
                "{metric}{{envoy_http_conn_manager_prefix=\"{prefix}\"}} {}",
                read(&stats.timeouts)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_with_envoy_s_names_per_connection_manager() {
        let stats = Arc::new(DownstreamStats::default());
        stats.timeouts.rq_header_timeout.fetch_add(3, Relaxed);
        let mut out = String::new();
        render(&mut out, &[("outbound_0.0.0.0_80".into(), stats)]);
        assert!(out.contains("# TYPE envoy_http_downstream_rq_header_timeout counter\n"));
        assert!(out.contains(
            "envoy_http_downstream_rq_header_timeout{envoy_http_conn_manager_prefix=\"outbound_0.0.0.0_80\"} 3\n"
        ));
        assert!(out.contains(
            "envoy_http_downstream_cx_idle_timeout{envoy_http_conn_manager_prefix=\"outbound_0.0.0.0_80\"} 0\n"
        ));
    }
}
