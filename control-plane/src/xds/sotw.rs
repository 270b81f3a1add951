//! One state-of-the-world ADS stream: requests in (subscriptions, ACKs,
//! NACKs), responses out whenever the proxy's resources change.

use std::collections::BTreeSet;
use std::sync::Arc;

use proto::pb::envoy::config::core::v3::ControlPlane;
use proto::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use shared::type_url::PUSH_ORDER;
use tokio::sync::mpsc;
use tonic::{Status, Streaming};

use super::cache::ServedResources;
use super::connection::Connection;
use super::push::{is_wildcard_type, sotw_version, versions, wanted};
use super::state::MeshState;
use super::subscription::Subscription;
use super::{CONTROL_PLANE_ID, StreamKind, XdsContext};
use crate::metrics::Metrics;

type Sender = mpsc::Sender<Result<DiscoveryResponse, Status>>;

pub async fn run(
    context: Arc<XdsContext>,
    kind: StreamKind,
    mut requests: Streaming<DiscoveryRequest>,
    tx: Sender,
) {
    let first = match requests.message().await {
        Ok(Some(first)) => first,
        Ok(None) => return,
        Err(status) => {
            tracing::debug!(%status, "ADS stream ended before its first request");
            return;
        }
    };
    let Some(node) = first.node.clone() else {
        let _ = tx
            .send(Err(Status::invalid_argument(
                "the first DiscoveryRequest on a stream must carry the node",
            )))
            .await;
        return;
    };
    let guard = match context.connect(node, false, kind) {
        Ok(guard) => guard,
        Err(status) => {
            let _ = tx.send(Err(status)).await;
            return;
        }
    };
    let connection = guard.connection.clone();
    let mut state_rx = context.publisher.subscribe();
    let mut state: Arc<MeshState> = state_rx.borrow_and_update().clone();
    let mut snapshot = context.served(&state, &connection.proxy);

    let mut request = Some(first);
    loop {
        if let Some(req) = request.take() {
            if let Err(status) = kind.check(&req.type_url) {
                let _ = tx.send(Err(status)).await;
                return;
            }
            if let Err(closed) =
                handle_request(&context.metrics, &connection, &snapshot, &state, req, &tx).await
            {
                tracing::debug!(%closed, "ADS stream closed while sending");
                return;
            }
        }
        tokio::select! {
            next = requests.message() => match next {
                Ok(Some(req)) => request = Some(req),
                Ok(None) => return,
                Err(status) => {
                    tracing::debug!(id = connection.id, %status, "ADS stream ended");
                    return;
                }
            },
            changed = state_rx.changed() => {
                if changed.is_err() {
                    return;
                }
                state = state_rx.borrow_and_update().clone();
                snapshot = context.served(&state, &connection.proxy);
                for type_url in PUSH_ORDER {
                    if push(&context.metrics, &connection, &snapshot, &state, type_url, false, &tx).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

async fn handle_request(
    metrics: &Metrics,
    connection: &Connection,
    snapshot: &ServedResources,
    state: &MeshState,
    req: DiscoveryRequest,
    tx: &Sender,
) -> Result<(), &'static str> {
    let type_url = req.type_url.clone();
    let force = {
        let mut subscriptions = connection.subscriptions.lock();
        let first_for_type = !subscriptions.contains_key(&type_url);
        let sub = subscriptions
            .entry(type_url.clone())
            .or_insert_with(|| Subscription::new(is_wildcard_type(&type_url)));
        if !req.response_nonce.is_empty() && req.response_nonce != sub.last_sent_nonce {
            tracing::debug!(
                id = connection.id,
                type_url,
                nonce = req.response_nonce,
                "ignoring request with a stale nonce"
            );
            return Ok(());
        }
        if let Some(error) = &req.error_detail {
            tracing::warn!(
                id = connection.id,
                node = %connection.proxy.id,
                type_url,
                version = sub.last_sent_version,
                error = error.message,
                "proxy rejected config (NACK)"
            );
            metrics
                .rejects
                .get_or_create(&Metrics::type_label(&type_url))
                .inc();
            sub.record_nack(&req.response_nonce, error.message.clone());
        } else if !req.response_nonce.is_empty() {
            sub.record_ack(req.version_info.clone(), &req.response_nonce);
        }
        let names: BTreeSet<String> = req.resource_names.iter().cloned().collect();
        let wildcard = is_wildcard_type(&type_url) && (names.is_empty() || names.contains("*"));
        let changed = names != sub.names || wildcard != sub.wildcard;
        sub.names = names;
        sub.wildcard = wildcard;
        first_for_type || changed
    };
    if force {
        push(metrics, connection, snapshot, state, &type_url, true, tx).await?;
    }
    Ok(())
}

/// Sends the proxy's resources of `type_url` if it subscribed to the type
/// and they differ from what was last sent (or `force`).
async fn push(
    metrics: &Metrics,
    connection: &Connection,
    snapshot: &ServedResources,
    state: &MeshState,
    type_url: &str,
    force: bool,
    tx: &Sender,
) -> Result<(), &'static str> {
    let response = {
        let mut subscriptions = connection.subscriptions.lock();
        let Some(sub) = subscriptions.get_mut(type_url) else {
            return Ok(());
        };
        let resources = wanted(snapshot, type_url, sub);
        let version = sotw_version(&resources);
        if !force && version == sub.last_sent_version {
            return Ok(());
        }
        let nonce = connection.next_nonce();
        let response = DiscoveryResponse {
            version_info: version.clone(),
            resources: resources.values().map(|r| r.any.clone()).collect(),
            type_url: type_url.to_string(),
            nonce: nonce.clone(),
            control_plane: Some(ControlPlane {
                identifier: CONTROL_PLANE_ID.to_string(),
            }),
            ..Default::default()
        };
        sub.record_sent(version, nonce, versions(&resources));
        response
    };
    tx.send(Ok(response))
        .await
        .map_err(|_| "receiver dropped")?;
    metrics
        .pushes
        .get_or_create(&Metrics::type_label(type_url))
        .inc();
    metrics
        .push_time
        .observe(state.published_at.elapsed().as_secs_f64());
    Ok(())
}
