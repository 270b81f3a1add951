//! The counters of an HTTP connection manager's upgrades, named as Envoy
//! names them: `downstream_cx_upgrades_total`, the gauge
//! `downstream_cx_upgrades_active`, and `downstream_rq_ws_on_non_ws_route`
//! for upgrades refused (in Prometheus `envoy_http_…{envoy_http_conn_manager_prefix=…}`).

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::DownstreamStats;

#[derive(Default)]
pub struct UpgradeStats {
    /// Requests allowed to upgrade.
    pub cx_upgrades_total: AtomicU64,
    /// Upgraded streams not yet ended.
    pub cx_upgrades_active: AtomicU64,
    /// Upgrades refused (403 `upgrade_failed`).
    pub rq_ws_on_non_ws_route: AtomicU64,
}

type Read = fn(&UpgradeStats) -> u64;

/// The rows of the connection managers in `downstream` (sorted by prefix).
pub(super) fn render(out: &mut String, downstream: &[(Arc<str>, Arc<DownstreamStats>)]) {
    let metrics: [(&str, &str, Read); 3] = [
        ("envoy_http_downstream_cx_upgrades_total", "counter", |s| {
            s.cx_upgrades_total.load(Relaxed)
        }),
        ("envoy_http_downstream_cx_upgrades_active", "gauge", |s| {
            s.cx_upgrades_active.load(Relaxed)
        }),
        (
            "envoy_http_downstream_rq_ws_on_non_ws_route",
            "counter",
            |s| s.rq_ws_on_non_ws_route.load(Relaxed),
        ),
    ];
    for (metric, kind, read) in metrics {
        let _ = writeln!(out, "# TYPE {metric} {kind}");
        for (prefix, stats) in downstream {
            let _ = writeln!(
                out,
                "{metric}{{envoy_http_conn_manager_prefix=\"{prefix}\"}} {}",
                read(&stats.upgrades)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upgrade_series_render_with_envoy_s_names_and_types() {
        let stats = Arc::new(DownstreamStats::default());
        stats.upgrades.cx_upgrades_total.fetch_add(2, Relaxed);
        stats.upgrades.cx_upgrades_active.fetch_add(1, Relaxed);
        let mut out = String::new();
        render(&mut out, &[("outbound_0.0.0.0_80".into(), stats)]);
        assert!(out.contains("# TYPE envoy_http_downstream_cx_upgrades_active gauge\n"));
        assert!(out.contains(
            "envoy_http_downstream_cx_upgrades_total{envoy_http_conn_manager_prefix=\"outbound_0.0.0.0_80\"} 2\n"
        ));
        assert!(out.contains(
            "envoy_http_downstream_cx_upgrades_active{envoy_http_conn_manager_prefix=\"outbound_0.0.0.0_80\"} 1\n"
        ));
        assert!(out.contains(
            "envoy_http_downstream_rq_ws_on_non_ws_route{envoy_http_conn_manager_prefix=\"outbound_0.0.0.0_80\"} 0\n"
        ));
    }
}
