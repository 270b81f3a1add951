//! The agent's side of Envoy's access log service: the entries of the
//! listeners whose HTTP connection manager or TCP proxy has a gRPC access
//! logger are built on the proxy workers (`entry.rs`), put on a bounded
//! queue without ever waiting (a full queue drops the entry and counts it),
//! and streamed to the control plane's `StreamAccessLogs` by one task on
//! the control thread (`client.rs`), over the same authenticated connection
//! as ADS and the CA.

mod client;
mod entry;
mod stats;

pub(crate) use client::UpstreamStream;
pub use client::{AccessLogClient, DeliveryError};
pub use entry::{http_entry, tcp_entry};
pub use stats::AccessLogStats;

use std::sync::Arc;

use proto::pb::envoy::data::accesslog::v3::{HttpAccessLogEntry, TcpAccessLogEntry};
use tokio::sync::mpsc;

use crate::model::access_log::{FileAccessLog, GrpcAccessLog};
use crate::proxy::access_log::AccessLog;

/// Entries waiting for the client; past this many, new ones are dropped.
pub const QUEUE_CAPACITY: usize = 4096;

/// One entry on its way to the control plane, with the log name of the
/// stream it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedEntry {
    pub log_name: Arc<str>,
    pub entry: Entry,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    Http(Box<HttpAccessLogEntry>),
    Tcp(Box<TcpAccessLogEntry>),
}

/// The proxy workers' end of the queue.
#[derive(Debug, Clone)]
pub struct AccessLogQueue {
    entries: mpsc::Sender<QueuedEntry>,
    stats: Arc<AccessLogStats>,
}

/// The client's end of the queue.
pub struct QueueReceiver(mpsc::Receiver<QueuedEntry>);

impl AccessLogQueue {
    /// A queue of `capacity` entries, counting into `stats`.
    pub fn new(capacity: usize, stats: Arc<AccessLogStats>) -> (Self, QueueReceiver) {
        let (entries, receiver) = mpsc::channel(capacity);
        (Self { entries, stats }, QueueReceiver(receiver))
    }

    /// Queues the entry of an HTTP request.
    pub fn send_http(&self, log: &AccessLog, logger: &GrpcAccessLog) {
        self.send(logger, || Entry::Http(Box::new(http_entry(log, logger))));
    }

    /// Queues the entry of a TCP connection.
    pub fn send_tcp(&self, log: &AccessLog, logger: &GrpcAccessLog) {
        self.send(logger, || Entry::Tcp(Box::new(tcp_entry(log, logger))));
    }

    /// Queues the entry `build` makes, building it only if the queue has
    /// room; else counts it dropped.
    fn send(&self, logger: &GrpcAccessLog, build: impl FnOnce() -> Entry) {
        match self.entries.try_reserve() {
            Ok(slot) => slot.send(QueuedEntry {
                log_name: logger.log_name.clone(),
                entry: build(),
            }),
            Err(_) => self.stats.record_dropped(1),
        }
    }
}

/// Where one request's or connection's entry goes: the file loggers, the
/// control plane, both or neither.
#[derive(Debug, Clone, Default)]
pub struct LogTargets {
    files: Arc<[FileAccessLog]>,
    grpc: Option<(Arc<GrpcAccessLog>, AccessLogQueue)>,
}

impl LogTargets {
    /// The targets of a filter with the file loggers `files` and the gRPC
    /// logger `grpc`; its entries are queued on `queue` (`None`: this agent
    /// does not report to the control plane).
    pub fn new(
        files: &Arc<[FileAccessLog]>,
        grpc: Option<&Arc<GrpcAccessLog>>,
        queue: Option<&AccessLogQueue>,
    ) -> Self {
        Self {
            files: files.clone(),
            grpc: grpc.cloned().zip(queue.cloned()),
        }
    }

    /// These targets with the gRPC logger `grpc` instead, queued on `queue`.
    pub fn with_grpc(&self, grpc: &Arc<GrpcAccessLog>, queue: Option<&AccessLogQueue>) -> Self {
        Self::new(&self.files, Some(grpc), queue)
    }

    /// Whether nothing is logged.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.grpc.is_none()
    }

    /// Logs an HTTP request.
    pub fn emit_http(&self, log: &AccessLog) {
        log.emit(&self.files);
        if let Some((logger, queue)) = &self.grpc {
            queue.send_http(log, logger);
        }
    }

    /// Logs a TCP connection.
    pub fn emit_tcp(&self, log: &AccessLog) {
        log.emit(&self.files);
        if let Some((logger, queue)) = &self.grpc {
            queue.send_tcp(log, logger);
        }
    }
}

#[cfg(test)]
mod tests;
