//! Counters the ADS client keeps, rendered in the Prometheus text format.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use shared::type_url::{PUSH_ORDER, short_name};

/// The slot for responses whose type URL is none of [`PUSH_ORDER`].
const UNKNOWN: usize = PUSH_ORDER.len();

/// What the agent did with a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateResult {
    /// Applied and ACKed.
    Accepted,
    /// NACKed; the previous config stays in force.
    Rejected,
}

impl UpdateResult {
    fn index(self) -> usize {
        match self {
            UpdateResult::Accepted => 0,
            UpdateResult::Rejected => 1,
        }
    }

    fn label(self) -> &'static str {
        match self {
            UpdateResult::Accepted => "accepted",
            UpdateResult::Rejected => "rejected",
        }
    }
}

/// The ADS client's counters. Shared with the admin server through an `Arc`.
#[derive(Debug, Default)]
pub struct XdsStats {
    updates: [[AtomicU64; 2]; PUSH_ORDER.len() + 1],
    connection_attempts: AtomicU64,
    connected: AtomicU64,
}

impl XdsStats {
    /// Responses of `type_url` that ended with `result`.
    pub fn updates(&self, type_url: &str, result: UpdateResult) -> u64 {
        self.updates[type_index(type_url)][result.index()].load(Ordering::Relaxed)
    }

    /// Attempts to connect and open a stream, successful or not.
    pub fn connection_attempts(&self) -> u64 {
        self.connection_attempts.load(Ordering::Relaxed)
    }

    /// Whether a stream to the control plane is open now.
    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed) == 1
    }

    pub(crate) fn record_update(&self, type_url: &str, result: UpdateResult) {
        self.updates[type_index(type_url)][result.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn record_connection_attempt(&self) {
        self.connection_attempts.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn set_connected(&self, connected: bool) {
        self.connected
            .store(u64::from(connected), Ordering::Relaxed);
    }

    /// Appends the counters in the Prometheus text exposition format.
    pub fn render_prometheus(&self, out: &mut String) {
        out.push_str(
            "# HELP xds_updates_total xDS responses received, by resource type and whether they were applied or rejected (NACK).\n\
             # TYPE xds_updates_total counter\n",
        );
        let type_names = PUSH_ORDER.iter().map(|t| short_name(t)).chain(["unknown"]);
        for (index, type_name) in type_names.enumerate() {
            for result in [UpdateResult::Accepted, UpdateResult::Rejected] {
                let value = self.updates[index][result.index()].load(Ordering::Relaxed);
                // Writing to a String cannot fail.
                let _ = writeln!(
                    out,
                    "xds_updates_total{{type=\"{type_name}\",result=\"{}\"}} {value}",
                    result.label()
                );
            }
        }
        let _ = write!(
            out,
            "# HELP xds_connection_attempts_total Attempts to connect to the control plane and open an ADS stream.\n\
             # TYPE xds_connection_attempts_total counter\n\
             xds_connection_attempts_total {}\n\
             # HELP xds_connected Whether an ADS stream to the control plane is open (1) or not (0).\n\
             # TYPE xds_connected gauge\n\
             xds_connected {}\n",
            self.connection_attempts(),
            self.connected.load(Ordering::Relaxed),
        );
    }
}

fn type_index(type_url: &str) -> usize {
    PUSH_ORDER
        .iter()
        .position(|t| *t == type_url)
        .unwrap_or(UNKNOWN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::type_url::{CLUSTER, ROUTE};

    #[test]
    fn renders_counters_and_gauge() {
        let stats = XdsStats::default();
        stats.record_update(CLUSTER, UpdateResult::Accepted);
        stats.record_update(CLUSTER, UpdateResult::Accepted);
        stats.record_update(ROUTE, UpdateResult::Rejected);
        stats.record_update(
            "type.googleapis.com/example.Unknown",
            UpdateResult::Rejected,
        );
        stats.record_connection_attempt();
        stats.set_connected(true);

        let mut out = String::new();
        stats.render_prometheus(&mut out);
        for line in [
            "# TYPE xds_updates_total counter",
            "xds_updates_total{type=\"clusters\",result=\"accepted\"} 2",
            "xds_updates_total{type=\"clusters\",result=\"rejected\"} 0",
            "xds_updates_total{type=\"routes\",result=\"rejected\"} 1",
            "xds_updates_total{type=\"unknown\",result=\"rejected\"} 1",
            "# TYPE xds_connection_attempts_total counter",
            "xds_connection_attempts_total 1",
            "# TYPE xds_connected gauge",
            "xds_connected 1",
        ] {
            assert!(out.lines().any(|l| l == line), "missing {line:?} in\n{out}");
        }
        assert_eq!(stats.updates(CLUSTER, UpdateResult::Accepted), 2);
        assert!(stats.connected());
    }
}
