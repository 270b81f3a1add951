//! The access log service client's counters, named as Envoy's gRPC access
//! loggers name theirs (`access_logs.grpc_access_log.*`).

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct AccessLogStats {
    written: AtomicU64,
    dropped: AtomicU64,
}

impl AccessLogStats {
    /// Entries handed to a stream to the control plane.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Entries lost: the queue was full, or no stream could take them.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    pub(crate) fn record_written(&self, entries: u64) {
        self.written.fetch_add(entries, Ordering::Relaxed);
    }

    pub(crate) fn record_dropped(&self, entries: u64) {
        self.dropped.fetch_add(entries, Ordering::Relaxed);
    }

    /// Appends the counters in the Prometheus text exposition format.
    pub fn render_prometheus(&self, out: &mut String) {
        // Writing to a String cannot fail.
        let _ = write!(
            out,
            "# TYPE envoy_access_logs_grpc_access_log_logs_written counter\n\
             envoy_access_logs_grpc_access_log_logs_written {}\n\
             # TYPE envoy_access_logs_grpc_access_log_logs_dropped counter\n\
             envoy_access_logs_grpc_access_log_logs_dropped {}\n",
            self.written(),
            self.dropped(),
        );
    }
}
