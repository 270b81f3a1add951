//! The responses of tries a cluster retried, counted apart from the
//! responses that reached the downstream as Envoy counts them:
//! `cluster.<name>.retry.upstream_rq_<code>`, `retry.upstream_rq_<class>xx`
//! and `retry.upstream_rq_completed` (in Prometheus
//! `envoy_cluster_retry_upstream_rq{envoy_response_code=…}`,
//! `envoy_cluster_retry_upstream_rq_xx{envoy_response_code_class=…}`,
//! `envoy_cluster_retry_upstream_rq_completed`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use parking_lot::Mutex;

use super::ClusterStats;

/// Responses by status code (those retried, or those that went
/// downstream).
#[derive(Default)]
pub struct ResponseCodes(Mutex<BTreeMap<u16, u64>>);

impl ResponseCodes {
    /// Counts a response.
    pub fn record(&self, status: u16) {
        *self.0.lock().entry(status).or_default() += 1;
    }

    /// How many there were, by status code.
    pub fn by_code(&self) -> BTreeMap<u16, u64> {
        self.0.lock().clone()
    }
}

/// The series of the clusters in `clusters` (sorted by name) that retried
/// a response: as Envoy, a cluster has them once it has retried one.
pub(super) fn render(out: &mut String, clusters: &[(Arc<str>, Arc<ClusterStats>)]) {
    let counted: Vec<(&Arc<str>, BTreeMap<u16, u64>)> = clusters
        .iter()
        .map(|(name, stats)| (name, stats.retried.by_code()))
        .filter(|(_, codes)| !codes.is_empty())
        .collect();
    let _ = writeln!(out, "# TYPE envoy_cluster_retry_upstream_rq counter");
    for (name, codes) in &counted {
        for (code, count) in codes {
            let _ = writeln!(
                out,
                "envoy_cluster_retry_upstream_rq{{envoy_response_code=\"{code}\",envoy_cluster_name=\"{name}\"}} {count}"
            );
        }
    }
    let _ = writeln!(out, "# TYPE envoy_cluster_retry_upstream_rq_xx counter");
    for (name, codes) in &counted {
        let mut classes: BTreeMap<u16, u64> = BTreeMap::new();
        for (code, count) in codes {
            *classes.entry((code / 100).clamp(1, 5)).or_default() += count;
        }
        for (class, count) in classes {
            let _ = writeln!(
                out,
                "envoy_cluster_retry_upstream_rq_xx{{envoy_response_code_class=\"{class}\",envoy_cluster_name=\"{name}\"}} {count}"
            );
        }
    }
    let _ = writeln!(
        out,
        "# TYPE envoy_cluster_retry_upstream_rq_completed counter"
    );
    for (name, codes) in &counted {
        let _ = writeln!(
            out,
            "envoy_cluster_retry_upstream_rq_completed{{envoy_cluster_name=\"{name}\"}} {}",
            codes.values().sum::<u64>()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retried_responses_render_by_code_class_and_in_all() {
        let retried = Arc::new(ClusterStats::default());
        retried.retried.record(503);
        retried.retried.record(503);
        retried.retried.record(500);
        let quiet = Arc::new(ClusterStats::default());
        let mut out = String::new();
        render(&mut out, &[("c".into(), retried), ("quiet".into(), quiet)]);
        let cluster = "envoy_cluster_name=\"c\"";
        for line in [
            format!("envoy_cluster_retry_upstream_rq{{envoy_response_code=\"500\",{cluster}}} 1\n"),
            format!("envoy_cluster_retry_upstream_rq{{envoy_response_code=\"503\",{cluster}}} 2\n"),
            format!(
                "envoy_cluster_retry_upstream_rq_xx{{envoy_response_code_class=\"5\",{cluster}}} 3\n"
            ),
            format!("envoy_cluster_retry_upstream_rq_completed{{{cluster}}} 3\n"),
        ] {
            assert!(out.contains(&line), "{line} in {out}");
        }
        assert!(!out.contains("quiet"), "{out}");
    }
}
