//! `AccessLogService` on the SDS socket, as pilot-agent relays a local
//! Envoy's access logs (its `envoy_accesslog_service` cluster): each stream
//! Envoy opens becomes one stream to the control plane, authenticated with
//! this process's token, its messages forwarded as they are. While the
//! control plane cannot take them, Envoy's stream stays up and its
//! messages are dropped (counted); the upstream stream is opened again
//! with backoff, its first message naming the node and log again. The
//! count of dropped entries is logged at most once a minute, when it grew.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use proto::pb::envoy::service::accesslog::v3::access_log_service_server::AccessLogService;
use proto::pb::envoy::service::accesslog::v3::stream_access_logs_message::{
    Identifier, LogEntries,
};
use proto::pb::envoy::service::accesslog::v3::{StreamAccessLogsMessage, StreamAccessLogsResponse};
use tokio::time::Instant;
use tonic::{Request, Response, Status, Streaming};

use crate::access_log_service::{AccessLogStats, DeliveryError, UpstreamStream};
use crate::xds::ControlPlane;
use crate::xds::backoff::Backoff;

/// Relays Envoy's access log streams to the control plane.
#[derive(Clone)]
pub struct AccessLogRelay {
    control_plane: ControlPlane,
    stats: Arc<AccessLogStats>,
    drops: Arc<Mutex<DropReport>>,
}

impl AccessLogRelay {
    pub fn new(control_plane: ControlPlane, stats: Arc<AccessLogStats>) -> Self {
        Self {
            control_plane,
            stats,
            drops: Arc::default(),
        }
    }
}

/// How often, at most, the relay logs how many entries it has dropped.
const DROP_REPORT_INTERVAL: Duration = Duration::from_secs(60);

/// When the dropped count was last logged, and what it was.
#[derive(Debug, Default)]
struct DropReport {
    at: Option<Instant>,
    dropped: u64,
}

impl DropReport {
    /// Whether `dropped` entries should be logged `now`: the count grew
    /// since it was last logged, at least [`DROP_REPORT_INTERVAL`] ago.
    /// Remembers it when so.
    fn due(&mut self, now: Instant, dropped: u64) -> bool {
        let waited = self
            .at
            .is_none_or(|at| now.duration_since(at) >= DROP_REPORT_INTERVAL);
        if !waited || dropped <= self.dropped {
            return false;
        }
        *self = Self {
            at: Some(now),
            dropped,
        };
        true
    }
}

/// One Envoy stream's way to the control plane.
struct Upstream {
    stream: Option<UpstreamStream>,
    /// The identifier of Envoy's first message, for each new upstream stream.
    identifier: Option<Identifier>,
    /// The open stream has not been sent the identifier yet.
    fresh: bool,
    backoff: Backoff,
    /// No new stream before this, after a failure.
    retry_at: Option<Instant>,
}

impl AccessLogRelay {
    /// Forwards `message`, opening the upstream stream if it is time to.
    async fn forward(&self, upstream: &mut Upstream, mut message: StreamAccessLogsMessage) {
        if let Some(identifier) = &message.identifier {
            upstream.identifier = Some(identifier.clone());
        }
        let entries = entry_count(&message);
        let result = match self.open_if_due(upstream).await {
            Ok(()) => {
                if std::mem::take(&mut upstream.fresh) && message.identifier.is_none() {
                    message.identifier = upstream.identifier.clone();
                }
                match &mut upstream.stream {
                    Some(stream) => stream.send(message).await,
                    None => Err(DeliveryError::Closed),
                }
            }
            Err(error) => Err(error),
        };
        match result {
            Ok(()) => {
                if upstream.retry_at.take().is_some() {
                    tracing::info!(
                        dropped = self.stats.dropped(),
                        "relaying Envoy's access logs to the control plane again"
                    );
                }
                self.stats.record_written(entries);
                upstream.backoff.reset();
            }
            Err(DeliveryError::Closed) if upstream.retry_at.is_some() => {
                self.dropped(entries);
            }
            Err(error) => {
                self.dropped(entries);
                if upstream.retry_at.is_none() {
                    tracing::warn!(%error, "cannot relay Envoy's access logs to the control plane; dropping them until it is back");
                }
                upstream.stream = None;
                upstream.retry_at = Some(Instant::now() + upstream.backoff.next_delay());
            }
        }
    }

    /// Counts `entries` dropped, logging the total when it is due.
    fn dropped(&self, entries: u64) {
        self.stats.record_dropped(entries);
        let dropped = self.stats.dropped();
        if self.drops.lock().due(Instant::now(), dropped) {
            tracing::warn!(
                dropped,
                "Envoy's access log entries dropped so far: the control plane cannot take them"
            );
        }
    }

    /// Opens the upstream stream if none is open, unless a failure was
    /// too recent (then [`DeliveryError::Closed`]).
    async fn open_if_due(&self, upstream: &mut Upstream) -> Result<(), DeliveryError> {
        if upstream.stream.is_some() {
            return Ok(());
        }
        if upstream.retry_at.is_some_and(|at| Instant::now() < at) {
            return Err(DeliveryError::Closed);
        }
        let channel = self.control_plane.connect().await?;
        upstream.stream = Some(UpstreamStream::open(channel));
        upstream.fresh = true;
        Ok(())
    }
}

#[tonic::async_trait]
impl AccessLogService for AccessLogRelay {
    async fn stream_access_logs(
        &self,
        request: Request<Streaming<StreamAccessLogsMessage>>,
    ) -> Result<Response<StreamAccessLogsResponse>, Status> {
        let mut messages = request.into_inner();
        let mut upstream = Upstream {
            stream: None,
            identifier: None,
            fresh: false,
            backoff: Backoff::default(),
            retry_at: None,
        };
        while let Some(message) = messages.message().await? {
            self.forward(&mut upstream, message).await;
        }
        Ok(Response::new(StreamAccessLogsResponse {}))
    }
}

/// How many entries `message` carries.
fn entry_count(message: &StreamAccessLogsMessage) -> u64 {
    let entries = match &message.log_entries {
        Some(LogEntries::HttpLogs(logs)) => logs.log_entry.len(),
        Some(LogEntries::TcpLogs(logs)) => logs.log_entry.len(),
        None => 0,
    };
    entries as u64
}

#[cfg(test)]
mod tests;
