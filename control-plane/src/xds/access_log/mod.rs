//! Envoy's AccessLogService on the secure port (`StreamAccessLogs`): a proxy streams its outbound access log entries, each becomes an observation in the egress inventory of the workload its token and node prove.

mod entry;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use proto::pb::envoy::config::core::v3::Node;
use proto::pb::envoy::service::accesslog::v3::access_log_service_server::AccessLogService;
use proto::pb::envoy::service::accesslog::v3::stream_access_logs_message::LogEntries;
use proto::pb::envoy::service::accesslog::v3::{StreamAccessLogsMessage, StreamAccessLogsResponse};
use shared::node::NodeId;
use tonic::{Request, Response, Status, Streaming};

use super::admission::{self, TrustedGateways};
use super::authn::{Caller, peer_text, refuse};
use super::{XdsContext, identify};
use crate::config::ConfigSnapshot;
use crate::config::model::Labels;
use crate::egress::{LiveInventory, Observation, SourceWorkload};
use crate::metrics::Metrics;

use entry::{LogEntry, Skipped, observation};

/// The entries of one message recorded at most; the rest are dropped and
/// counted.
pub const MAX_ENTRIES_PER_MESSAGE: usize = 1000;
/// The most labels a stream's node may carry.
pub const MAX_LABELS: usize = 64;
/// The longest label key: Kubernetes' prefix (253) + `/` + name (63).
pub const MAX_LABEL_KEY_LEN: usize = 317;
/// The longest label value (Kubernetes').
pub const MAX_LABEL_VALUE_LEN: usize = 63;

/// The AccessLogService, for `tonic::transport::Server::add_service` through
/// its generated server.
pub struct AccessLog {
    context: Arc<XdsContext>,
    inventory: Arc<LiveInventory>,
}

impl AccessLog {
    pub fn new(context: Arc<XdsContext>, inventory: Arc<LiveInventory>) -> Self {
        Self { context, inventory }
    }

    /// Records what one message holds, for `source`, entry by entry.
    fn record(&self, source: &Arc<SourceWorkload>, message: StreamAccessLogsMessage) {
        let snapshot = self.context.publisher.current().snapshot.clone();
        let at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs());
        match message.log_entries {
            None => {}
            Some(LogEntries::HttpLogs(logs)) => {
                self.record_entries(source, &logs.log_entry, &snapshot, at);
            }
            Some(LogEntries::TcpLogs(logs)) => {
                self.record_entries(source, &logs.log_entry, &snapshot, at);
            }
        }
    }

    /// Records the first [`MAX_ENTRIES_PER_MESSAGE`] of `entries`, counting
    /// the rest as dropped.
    fn record_entries<E: LogEntry>(
        &self,
        source: &Arc<SourceWorkload>,
        entries: &[E],
        snapshot: &ConfigSnapshot,
        at: u64,
    ) {
        self.count_over_cap(entries.len());
        for entry in entries.iter().take(MAX_ENTRIES_PER_MESSAGE) {
            self.observe(observation(source, entry, snapshot, at));
        }
    }

    fn observe(&self, observation: Result<Observation, Skipped>) {
        match observation {
            Ok(observation) => self.inventory.observe(observation),
            Err(skipped) => self.dropped(skipped.reason(), 1),
        }
    }

    /// The source of the entries that follow a message naming `node`.
    fn source(&self, caller: &Caller, node: &Node) -> Result<Arc<SourceWorkload>, Status> {
        source_workload(
            caller,
            node,
            &self.context.trusted_gateways,
            &self.context.metrics,
        )
        .map(Arc::new)
    }

    fn count_over_cap(&self, entries: usize) {
        if let Some(over) = entries
            .checked_sub(MAX_ENTRIES_PER_MESSAGE)
            .filter(|n| *n > 0)
        {
            tracing::warn!(
                entries,
                "an access log message holds more than {MAX_ENTRIES_PER_MESSAGE} entries; the rest are dropped"
            );
            self.dropped("over_message_cap", over);
        }
    }

    fn dropped(&self, reason: &str, count: usize) {
        self.context
            .metrics
            .access_log_entries_dropped
            .get_or_create(&vec![("reason", reason.to_string())])
            .inc_by(u64::try_from(count).unwrap_or(u64::MAX));
    }
}

/// The workload whose entries a stream carries: the caller's namespace and
/// service account, and the labels of the node its first message names,
/// which must be the caller's as ADS requires (else PERMISSION_DENIED,
/// recorded as every refusal is) and within Kubernetes' bounds on labels
/// (else INVALID_ARGUMENT). Its workload is named from the node id's pod
/// as Istio names it.
pub fn source_workload(
    caller: &Caller,
    node: &Node,
    gateways: &TrustedGateways,
    metrics: &Metrics,
) -> Result<SourceWorkload, Status> {
    let proxy = identify(node)?;
    let admitted = admission::admit(node, proxy, &caller.account, gateways)
        .map_err(|error| refuse(metrics, caller.peer, &error))?;
    let labels = admitted.proxy.labels;
    check_labels(&labels)?;
    let node_id = admitted.proxy.id.parse::<NodeId>();
    let pod = node_id.as_ref().map_or("", NodeId::pod);
    Ok(SourceWorkload::of_pod(
        &caller.account.namespace,
        &caller.account.name,
        pod,
        labels,
    ))
}

/// Refuses labels past Kubernetes' bounds: more than [`MAX_LABELS`], a key
/// longer than [`MAX_LABEL_KEY_LEN`] or a value longer than
/// [`MAX_LABEL_VALUE_LEN`] bytes.
fn check_labels(labels: &Labels) -> Result<(), Status> {
    if labels.len() > MAX_LABELS {
        return Err(Status::invalid_argument(format!(
            "the node carries {} labels, at most {MAX_LABELS} are accepted in an access log stream",
            labels.len()
        )));
    }
    if labels.iter().any(|(key, _)| key.len() > MAX_LABEL_KEY_LEN) {
        return Err(Status::invalid_argument(format!(
            "a node label key is longer than {MAX_LABEL_KEY_LEN} bytes (Kubernetes' bound); access logs refused"
        )));
    }
    if let Some((key, _)) = labels
        .iter()
        .find(|(_, value)| value.len() > MAX_LABEL_VALUE_LEN)
    {
        return Err(Status::invalid_argument(format!(
            "the value of node label {key} is longer than {MAX_LABEL_VALUE_LEN} bytes (Kubernetes' bound); access logs refused"
        )));
    }
    Ok(())
}

/// The node a message names: every stream's first, and the first of each
/// stream a relay (`data-plane sds`) forwards on its one stream.
fn node_of(message: &StreamAccessLogsMessage) -> Option<&Node> {
    message.identifier.as_ref()?.node.as_ref()
}

#[tonic::async_trait]
impl AccessLogService for AccessLog {
    async fn stream_access_logs(
        &self,
        request: Request<Streaming<StreamAccessLogsMessage>>,
    ) -> Result<Response<StreamAccessLogsResponse>, Status> {
        let caller = request
            .extensions()
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| {
                Status::unauthenticated("access logs are taken on the secure port only")
            })?;
        let mut messages = request.into_inner();
        let Some(first) = messages.message().await? else {
            return Ok(Response::new(StreamAccessLogsResponse {}));
        };
        let node = node_of(&first).ok_or_else(|| {
            Status::invalid_argument(
                "the first message of an access log stream must carry identifier.node",
            )
        })?;
        let mut source = self.source(&caller, node)?;
        tracing::info!(
            peer = %peer_text(caller.peer),
            namespace = %source.namespace,
            service_account = %source.service_account,
            "access log stream opened"
        );
        self.record(&source, first);
        while let Some(message) = messages.message().await? {
            if let Some(node) = node_of(&message) {
                source = self.source(&caller, node)?;
            }
            self.record(&source, message);
        }
        tracing::info!(peer = %peer_text(caller.peer), "access log stream ended");
        Ok(Response::new(StreamAccessLogsResponse {}))
    }
}
