//! Proxy counters, rendered in Prometheus text with Envoy's stat names so
//! dashboards built for Envoy keep working, and Istio's standard metrics
//! ([`istio`]).

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use dashmap::DashMap;

use crate::upstream::UpstreamError;

mod filters;
pub mod istio;
pub mod lifecycle;
pub mod listener;
mod retries;
mod timeouts;
mod upgrades;

pub use filters::FilterStats;
use istio::IstioStats;
use lifecycle::LifecycleStats;
use listener::ListenersStats;
pub use retries::ResponseCodes;
pub use timeouts::TimeoutStats;
pub use upgrades::UpgradeStats;

/// Counters of one upstream cluster.
#[derive(Default)]
pub struct ClusterStats {
    pub rq_total: AtomicU64,
    /// By response code class: 1xx..5xx.
    pub rq_class: [AtomicU64; 5],
    pub rq_timeout: AtomicU64,
    /// Tries that hit the route's per-try timeout.
    pub rq_per_try_timeout: AtomicU64,
    /// Retries sent, retries whose outcome was not retried again, and
    /// requests that would have been retried with no retry left.
    pub rq_retry: AtomicU64,
    pub rq_retry_success: AtomicU64,
    pub rq_retry_limit_exceeded: AtomicU64,
    /// Retries sent after an exponential backoff (every retry: the agent
    /// has no rate-limited backoff).
    pub rq_retry_backoff_exponential: AtomicU64,
    /// Requests whose body passed the buffer limit while a retry was
    /// possible: no longer retried.
    pub retry_or_shadow_abandoned: AtomicU64,
    /// The responses of tries that were retried, by status code (not in
    /// `rq_class`, which counts the responses that went downstream).
    pub retried: ResponseCodes,
    /// The responses that went downstream, by status code
    /// (`upstream_rq_<code>`, beside `rq_class`).
    pub rq_code: ResponseCodes,
    pub cx_connect_fail: AtomicU64,
    /// Connection attempts that timed out (counted in `cx_connect_fail`
    /// too, as Envoy counts them).
    pub cx_connect_timeout: AtomicU64,
    /// TLS handshakes that failed the subject alt name check.
    pub ssl_fail_verify_san: AtomicU64,
    /// TLS handshakes whose certificate chain did not verify.
    pub ssl_fail_verify_error: AtomicU64,
    /// Connections refused for want of a healthy host (BlackHoleCluster's
    /// every connection, as Envoy counts them).
    pub cx_none_healthy: AtomicU64,
    pub cx_total: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub bytes_received: AtomicU64,
}

/// Counters of one HTTP connection manager or TCP proxy (by stat prefix).
#[derive(Default)]
pub struct DownstreamStats {
    pub rq_total: AtomicU64,
    pub rq_class: [AtomicU64; 5],
    pub cx_total: AtomicU64,
    /// The counters of its HTTP filters (fault, CORS).
    pub filters: FilterStats,
    /// Its request head, stream and connection timeouts.
    pub timeouts: TimeoutStats,
    /// Its HTTP upgrades.
    pub upgrades: UpgradeStats,
}

/// Reads one counter of a cluster.
type ReadCounter = fn(&ClusterStats) -> u64;

#[derive(Default)]
pub struct Stats {
    clusters: DashMap<Arc<str>, Arc<ClusterStats>>,
    downstream: DashMap<Arc<str>, Arc<DownstreamStats>>,
    /// Istio's standard metrics.
    pub istio: IstioStats,
    /// TCP proxy timeouts, draining listeners, the server's state.
    pub lifecycle: LifecycleStats,
    /// Connections per listener, their limits, the TLS inspector.
    pub listeners: ListenersStats,
}

fn class_index(status: u16) -> usize {
    usize::from((status / 100).clamp(1, 5) - 1)
}

impl Stats {
    pub fn new(istio: IstioStats) -> Self {
        Self {
            clusters: DashMap::new(),
            downstream: DashMap::new(),
            istio,
            lifecycle: LifecycleStats::default(),
            listeners: ListenersStats::default(),
        }
    }

    pub fn cluster(&self, name: &Arc<str>) -> Arc<ClusterStats> {
        if let Some(stats) = self.clusters.get(name) {
            return stats.clone();
        }
        self.clusters.entry(name.clone()).or_default().clone()
    }

    pub fn downstream(&self, prefix: &Arc<str>) -> Arc<DownstreamStats> {
        if let Some(stats) = self.downstream.get(prefix) {
            return stats.clone();
        }
        self.downstream.entry(prefix.clone()).or_default().clone()
    }

    /// A request of the cluster answered `status`, by its upstream or
    /// locally after it had been sent on a connection.
    pub fn record_upstream_response(stats: &ClusterStats, status: u16) {
        stats.rq_total.fetch_add(1, Relaxed);
        Self::record_upstream_code(stats, status);
    }

    /// A request of the cluster answered `status` locally before any
    /// upstream connection took it (overflow, no host, a failed
    /// connection): Envoy charges the code but not `upstream_rq_total`,
    /// which counts requests given to a connection.
    pub fn record_upstream_code(stats: &ClusterStats, status: u16) {
        stats.rq_class[class_index(status)].fetch_add(1, Relaxed);
        stats.rq_code.record(status);
    }

    /// A request of the cluster that failed with `error`, answered
    /// `status` locally: counted in `upstream_rq_total` only if a
    /// connection had taken it.
    pub fn record_upstream_failure(stats: &ClusterStats, error: &UpstreamError, status: u16) {
        if error.was_sent() {
            Self::record_upstream_response(stats, status);
        } else {
            Self::record_upstream_code(stats, status);
        }
    }

    /// A try that was retried after it had been sent on a connection
    /// without a response (a reset, a per-try timeout).
    pub fn record_retried_reset(stats: &ClusterStats) {
        stats.rq_total.fetch_add(1, Relaxed);
    }

    /// A response whose try is retried: a request of the cluster, its
    /// status counted under `retry.` instead of with the responses that
    /// went downstream.
    pub fn record_retried_response(stats: &ClusterStats, status: u16) {
        stats.rq_total.fetch_add(1, Relaxed);
        stats.retried.record(status);
    }

    pub fn record_downstream_response(stats: &DownstreamStats, status: u16) {
        stats.rq_total.fetch_add(1, Relaxed);
        stats.rq_class[class_index(status)].fetch_add(1, Relaxed);
    }

    /// Prometheus text exposition.
    pub fn render(&self, out: &mut String) {
        let mut clusters: Vec<_> = self
            .clusters
            .iter()
            .map(|e| (e.key().clone(), e.value().clone()))
            .collect();
        clusters.sort_by(|a, b| a.0.cmp(&b.0));
        let counters: [(&str, ReadCounter); 16] = [
            ("envoy_cluster_upstream_rq_total", |s| {
                s.rq_total.load(Relaxed)
            }),
            ("envoy_cluster_upstream_rq_timeout", |s| {
                s.rq_timeout.load(Relaxed)
            }),
            ("envoy_cluster_upstream_rq_per_try_timeout", |s| {
                s.rq_per_try_timeout.load(Relaxed)
            }),
            ("envoy_cluster_upstream_rq_retry", |s| {
                s.rq_retry.load(Relaxed)
            }),
            ("envoy_cluster_upstream_rq_retry_success", |s| {
                s.rq_retry_success.load(Relaxed)
            }),
            ("envoy_cluster_upstream_rq_retry_limit_exceeded", |s| {
                s.rq_retry_limit_exceeded.load(Relaxed)
            }),
            ("envoy_cluster_upstream_rq_retry_backoff_exponential", |s| {
                s.rq_retry_backoff_exponential.load(Relaxed)
            }),
            ("envoy_cluster_retry_or_shadow_abandoned", |s| {
                s.retry_or_shadow_abandoned.load(Relaxed)
            }),
            ("envoy_cluster_upstream_cx_connect_fail", |s| {
                s.cx_connect_fail.load(Relaxed)
            }),
            ("envoy_cluster_upstream_cx_connect_timeout", |s| {
                s.cx_connect_timeout.load(Relaxed)
            }),
            ("envoy_cluster_ssl_fail_verify_error", |s| {
                s.ssl_fail_verify_error.load(Relaxed)
            }),
            ("envoy_cluster_ssl_fail_verify_san", |s| {
                s.ssl_fail_verify_san.load(Relaxed)
            }),
            ("envoy_cluster_upstream_cx_none_healthy", |s| {
                s.cx_none_healthy.load(Relaxed)
            }),
            ("envoy_cluster_upstream_cx_total", |s| {
                s.cx_total.load(Relaxed)
            }),
            ("envoy_cluster_upstream_cx_tx_bytes_total", |s| {
                s.bytes_sent.load(Relaxed)
            }),
            ("envoy_cluster_upstream_cx_rx_bytes_total", |s| {
                s.bytes_received.load(Relaxed)
            }),
        ];
        for (metric, read) in counters {
            let _ = writeln!(out, "# TYPE {metric} counter");
            for (name, stats) in &clusters {
                let _ = writeln!(
                    out,
                    "{metric}{{envoy_cluster_name=\"{name}\"}} {}",
                    read(stats)
                );
            }
        }
        retries::render(out, &clusters);
        let _ = writeln!(out, "# TYPE envoy_cluster_upstream_rq_xx counter");
        for (name, stats) in &clusters {
            for (i, count) in stats.rq_class.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "envoy_cluster_upstream_rq_xx{{envoy_response_code_class=\"{}\",envoy_cluster_name=\"{name}\"}} {}",
                    i + 1,
                    count.load(Relaxed)
                );
            }
        }
        let _ = writeln!(out, "# TYPE envoy_cluster_upstream_rq counter");
        for (name, stats) in &clusters {
            for (code, count) in stats.rq_code.by_code() {
                let _ = writeln!(
                    out,
                    "envoy_cluster_upstream_rq{{envoy_response_code=\"{code}\",envoy_cluster_name=\"{name}\"}} {count}"
                );
            }
        }
        let mut downstream: Vec<_> = self
            .downstream
            .iter()
            .map(|e| (e.key().clone(), e.value().clone()))
            .collect();
        downstream.sort_by(|a, b| a.0.cmp(&b.0));
        let _ = writeln!(out, "# TYPE envoy_http_downstream_rq_total counter");
        for (prefix, stats) in &downstream {
            let _ = writeln!(
                out,
                "envoy_http_downstream_rq_total{{envoy_http_conn_manager_prefix=\"{prefix}\"}} {}",
                stats.rq_total.load(Relaxed)
            );
        }
        let _ = writeln!(out, "# TYPE envoy_http_downstream_rq_xx counter");
        for (prefix, stats) in &downstream {
            for (i, count) in stats.rq_class.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "envoy_http_downstream_rq_xx{{envoy_response_code_class=\"{}\",envoy_http_conn_manager_prefix=\"{prefix}\"}} {}",
                    i + 1,
                    count.load(Relaxed)
                );
            }
        }
        let _ = writeln!(out, "# TYPE envoy_listener_downstream_cx_total counter");
        for (prefix, stats) in &downstream {
            let _ = writeln!(
                out,
                "envoy_listener_downstream_cx_total{{envoy_listener_prefix=\"{prefix}\"}} {}",
                stats.cx_total.load(Relaxed)
            );
        }
        self.lifecycle.render(out);
        self.listeners.render(out);
        filters::render(out, &downstream);
        timeouts::render(out, &downstream);
        upgrades::render(out, &downstream);
        self.istio.render(out);
    }
}

#[cfg(test)]
mod tests;
