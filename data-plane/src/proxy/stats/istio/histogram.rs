//! The distributions of an HTTP series (`istio_request_duration_milliseconds`,
//! `istio_request_bytes`, `istio_response_bytes`) with Envoy's default
//! histogram buckets, which Istio's bootstrap keeps for them; recorded with
//! atomics, rendered cumulative as Prometheus reads them.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Envoy's default histogram bucket bounds.
pub const BUCKETS: [f64; 19] = [
    0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
    60000.0, 300000.0, 600000.0, 1800000.0, 3600000.0,
];

/// One distribution: per-bucket counts (not cumulative), the sum in
/// thousandths and the count.
#[derive(Debug, Default)]
pub struct Histogram {
    /// `counts[i]`: values in `(BUCKETS[i-1], BUCKETS[i]]`; the last slot
    /// holds values above every bound.
    counts: [AtomicU64; BUCKETS.len() + 1],
    sum_thousandths: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    pub fn record(&self, value: f64) {
        let value = value.max(0.0);
        let slot = BUCKETS
            .iter()
            .position(|bound| value <= *bound)
            .unwrap_or(BUCKETS.len());
        self.counts[slot].fetch_add(1, Relaxed);
        self.sum_thousandths
            .fetch_add((value * 1000.0).round() as u64, Relaxed);
        self.count.fetch_add(1, Relaxed);
    }

    /// Writes `<metric>_bucket`, `_sum` and `_count` with `labels` (the
    /// series' labels, without braces).
    pub fn render(&self, out: &mut String, metric: &str, labels: &str) {
        let mut cumulative = 0;
        for (bound, count) in BUCKETS.iter().zip(&self.counts) {
            cumulative += count.load(Relaxed);
            let _ = writeln!(
                out,
                "{metric}_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
            );
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(out, "{metric}_bucket{{{labels},le=\"+Inf\"}} {count}");
        let sum = self.sum_thousandths.load(Relaxed) as f64 / 1000.0;
        let _ = writeln!(out, "{metric}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{metric}_count{{{labels}}} {count}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_on_a_bound_is_in_that_bucket_and_buckets_are_cumulative() {
        let histogram = Histogram::default();
        histogram.record(1.0);
        histogram.record(3.0);
        histogram.record(4_000_000.0);
        let mut out = String::new();
        histogram.render(&mut out, "m", "a=\"b\"");
        assert!(out.contains("m_bucket{a=\"b\",le=\"0.5\"} 0\n"), "{out}");
        assert!(out.contains("m_bucket{a=\"b\",le=\"1\"} 1\n"), "{out}");
        assert!(out.contains("m_bucket{a=\"b\",le=\"5\"} 2\n"), "{out}");
        assert!(
            out.contains("m_bucket{a=\"b\",le=\"3600000\"} 2\n"),
            "{out}"
        );
        assert!(out.contains("m_bucket{a=\"b\",le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("m_sum{a=\"b\"} 4000004\n"), "{out}");
        assert!(out.contains("m_count{a=\"b\"} 3\n"), "{out}");
    }
}
