//! One state-of-the-world ADS stream: requests in (subscriptions, ACKs,
//! NACKs), responses out whenever the proxy's resources change.

use std::collections::BTreeSet;
use std::sync::Arc;

use proto::pb::envoy::config::core::v3::{ControlPlane, Node};
use proto::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};

use super::CONTROL_PLANE_ID;
use super::cache::ServedResources;
use super::connection::Connection;
use super::outgoing::Outgoing;
use super::push::{is_wildcard_type, sotw_version, versions, wanted};
use super::state::MeshState;
use super::stream::{Protocol, PushContext};
use super::subscription::Subscription;
use crate::metrics::Metrics;

type Sender = super::stream::Sender<Outgoing<DiscoveryResponse>>;

/// The state-of-the-world protocol.
pub struct StateOfTheWorld;

impl Protocol for StateOfTheWorld {
    type Request = DiscoveryRequest;
    type Response = Outgoing<DiscoveryResponse>;
    const NAME: &'static str = "ADS";
    const DELTA: bool = false;

    fn node(request: &DiscoveryRequest) -> Option<Node> {
        request.node.clone()
    }

    fn type_url(request: &DiscoveryRequest) -> &str {
        &request.type_url
    }

    async fn handle(
        cx: &PushContext<'_, Outgoing<DiscoveryResponse>>,
        request: DiscoveryRequest,
    ) -> Result<(), &'static str> {
        handle_request(
            cx.metrics,
            cx.connection,
            cx.snapshot,
            cx.state,
            request,
            cx.tx,
        )
        .await
    }

    async fn push(
        cx: &PushContext<'_, Outgoing<DiscoveryResponse>>,
        type_url: &str,
        force: bool,
    ) -> Result<(), &'static str> {
        push(
            cx.metrics,
            cx.connection,
            cx.snapshot,
            cx.state,
            type_url,
            force,
            cx.tx,
        )
        .await
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
        // A wildcard subscriber gets the whole type, summed up once for
        // every proxy that shares the translation.
        let whole = if sub.wildcard {
            snapshot.whole(type_url)
        } else {
            None
        };
        let version = whole.map_or_else(|| sotw_version(&resources), |w| w.version.clone());
        if !force && version == sub.last_sent_version {
            return Ok(());
        }
        let nonce = connection.next_nonce();
        let response = Outgoing {
            head: DiscoveryResponse {
                version_info: version.clone(),
                type_url: type_url.to_string(),
                nonce: nonce.clone(),
                control_plane: Some(ControlPlane {
                    identifier: CONTROL_PLANE_ID.to_string(),
                }),
                ..Default::default()
            },
            resources: resources.values().map(|r| Arc::clone(r)).collect(),
        };
        let holds = whole.map_or_else(
            || versions(resources.values().map(|r| &***r)),
            |w| w.versions.clone(),
        );
        sub.record_sent(version, nonce, holds);
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
