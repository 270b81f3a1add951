//! The task that streams queued entries to the control plane's
//! `AccessLogService/StreamAccessLogs`: one stream per log name on one
//! authenticated connection, the first message of each naming the node and
//! the log name, then batches of whatever the queue holds. A failure drops
//! the entries at hand (counted) and reconnects with the ADS client's
//! backoff; meanwhile the queue fills and then drops, so a request never
//! waits for the control plane.

use std::collections::HashMap;
use std::sync::Arc;

use proto::pb::envoy::config::core::v3::Node;
use proto::pb::envoy::service::accesslog::v3::StreamAccessLogsMessage;
use proto::pb::envoy::service::accesslog::v3::access_log_service_client::AccessLogServiceClient;
use proto::pb::envoy::service::accesslog::v3::stream_access_logs_message::{
    HttpAccessLogEntries, Identifier, LogEntries, TcpAccessLogEntries,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;

use super::{AccessLogStats, Entry, QueueReceiver, QueuedEntry};
use crate::xds::backoff::Backoff;
use crate::xds::{AuthorizedChannel, ControlPlane, refusal};

/// Entries sent in one message at most.
const MAX_BATCH: usize = 256;
/// Messages a stream holds while HTTP/2 flow control holds them back.
const STREAM_BUFFER: usize = 16;

/// Why entries could not be handed to the control plane.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error(transparent)]
    Connect(#[from] crate::xds::Error),
    #[error("the control plane ended the access log stream: {}", refusal(.0))]
    Refused(tonic::Status),
    #[error("the access log stream to the control plane closed")]
    Closed,
}

/// One `StreamAccessLogs` call to the control plane, fed message by
/// message. Dropping it ends the call's messages: the control plane sees
/// the stream end once the ones sent are through.
pub(crate) struct UpstreamStream {
    messages: mpsc::Sender<StreamAccessLogsMessage>,
    call: JoinHandle<Result<(), tonic::Status>>,
}

impl UpstreamStream {
    /// Opens the call on `channel`; it runs in a task of its own.
    pub(crate) fn open(channel: AuthorizedChannel) -> Self {
        let (messages, outgoing) = mpsc::channel(STREAM_BUFFER);
        let call = tokio::spawn(async move {
            AccessLogServiceClient::new(channel)
                .stream_access_logs(ReceiverStream::new(outgoing))
                .await
                .map(drop)
        });
        Self { messages, call }
    }

    /// Hands `message` to the call, unless it has ended.
    pub(crate) async fn send(
        &mut self,
        message: StreamAccessLogsMessage,
    ) -> Result<(), DeliveryError> {
        if self.call.is_finished() {
            return Err(self.ended().await);
        }
        if self.messages.send(message).await.is_err() {
            return Err(self.ended().await);
        }
        Ok(())
    }

    /// Why the call ended (it has, or is about to).
    async fn ended(&mut self) -> DeliveryError {
        match (&mut self.call).await {
            Ok(Err(status)) => DeliveryError::Refused(status),
            Ok(Ok(())) | Err(_) => DeliveryError::Closed,
        }
    }
}

/// Streams the agent's access log entries to the control plane.
pub struct AccessLogClient {
    control_plane: ControlPlane,
    node: Node,
    queue: QueueReceiver,
    stats: Arc<AccessLogStats>,
}

/// The connection and its streams, by log name.
#[derive(Default)]
struct Connection {
    channel: Option<AuthorizedChannel>,
    streams: HashMap<StreamKey, UpstreamStream>,
}

impl AccessLogClient {
    pub fn new(
        control_plane: ControlPlane,
        node: Node,
        queue: QueueReceiver,
        stats: Arc<AccessLogStats>,
    ) -> Self {
        Self {
            control_plane,
            node,
            queue,
            stats,
        }
    }

    /// Drains the queue until every sender is gone.
    pub async fn run(mut self) {
        let mut backoff = Backoff::default();
        let mut connection = Connection::default();
        let mut healthy = true;
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while self.queue.0.recv_many(&mut batch, MAX_BATCH).await > 0 {
            let mut failed = false;
            for (key, entries, count) in messages(batch.drain(..)) {
                if failed {
                    self.stats.record_dropped(count);
                    continue;
                }
                match self.deliver(&mut connection, key, entries).await {
                    Ok(()) => {
                        self.stats.record_written(count);
                        if !healthy {
                            tracing::info!(
                                "streaming access log entries to the control plane again"
                            );
                        }
                        healthy = true;
                        backoff.reset();
                    }
                    Err(error) => {
                        self.stats.record_dropped(count);
                        if healthy {
                            tracing::warn!(%error, "cannot stream access log entries to the control plane; dropping them until it is back");
                        } else {
                            tracing::debug!(%error, "access log stream still failing");
                        }
                        healthy = false;
                        failed = true;
                        connection = Connection::default();
                    }
                }
            }
            if failed {
                tokio::time::sleep(backoff.next_delay()).await;
            }
        }
    }

    async fn deliver(
        &self,
        connection: &mut Connection,
        key: StreamKey,
        entries: LogEntries,
    ) -> Result<(), DeliveryError> {
        let channel = match &connection.channel {
            Some(channel) => channel.clone(),
            None => {
                let channel = self.control_plane.connect().await?;
                connection.channel = Some(channel.clone());
                channel
            }
        };
        let mut message = StreamAccessLogsMessage {
            identifier: None,
            log_entries: Some(entries),
        };
        let stream = connection.streams.entry(key).or_insert_with_key(|key| {
            message.identifier = Some(Identifier {
                node: Some(self.node.clone()),
                log_name: key.log_name.to_string(),
            });
            UpstreamStream::open(channel)
        });
        stream.send(message).await
    }
}

/// Which stream a message goes on: as Envoy's loggers, one per log name
/// and kind of entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct StreamKey {
    pub(super) log_name: Arc<str>,
    pub(super) http: bool,
}

/// The messages `entries` make: consecutive entries of one stream in one
/// message, with how many entries each holds.
pub(super) fn messages(
    entries: impl Iterator<Item = QueuedEntry>,
) -> Vec<(StreamKey, LogEntries, u64)> {
    let mut messages: Vec<(StreamKey, LogEntries, u64)> = Vec::new();
    for QueuedEntry { log_name, entry } in entries {
        let key = StreamKey {
            log_name,
            http: matches!(entry, Entry::Http(_)),
        };
        match (messages.last_mut(), entry) {
            (Some((last, LogEntries::HttpLogs(logs), count)), Entry::Http(entry))
                if *last == key =>
            {
                logs.log_entry.push(*entry);
                *count += 1;
            }
            (Some((last, LogEntries::TcpLogs(logs), count)), Entry::Tcp(entry)) if *last == key => {
                logs.log_entry.push(*entry);
                *count += 1;
            }
            (_, Entry::Http(entry)) => messages.push((
                key,
                LogEntries::HttpLogs(HttpAccessLogEntries {
                    log_entry: vec![*entry],
                }),
                1,
            )),
            (_, Entry::Tcp(entry)) => messages.push((
                key,
                LogEntries::TcpLogs(TcpAccessLogEntries {
                    log_entry: vec![*entry],
                }),
                1,
            )),
        }
    }
    messages
}
