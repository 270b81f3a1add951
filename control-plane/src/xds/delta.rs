//! One incremental (delta) ADS stream: subscriptions change by name, and
//! responses carry only resources whose version changed plus the names
//! removed.

use std::sync::Arc;

use proto::pb::envoy::config::core::v3::{ControlPlane, Node};
use proto::pb::envoy::service::discovery::v3::{DeltaDiscoveryRequest, DeltaDiscoveryResponse};

use super::CONTROL_PLANE_ID;
use super::cache::{ServedResources, VersionedResource};
use super::connection::Connection;
use super::outgoing::Outgoing;
use super::push::{is_wildcard_type, sotw_version, wanted};
use super::state::MeshState;
use super::stream::{Protocol, PushContext};
use super::subscription::Subscription;
use crate::metrics::Metrics;

type Sender = super::stream::Sender<Outgoing<DeltaDiscoveryResponse>>;

/// The incremental protocol.
pub struct Delta;

impl Protocol for Delta {
    type Request = DeltaDiscoveryRequest;
    type Response = Outgoing<DeltaDiscoveryResponse>;
    const NAME: &'static str = "delta ADS";
    const DELTA: bool = true;

    fn node(request: &DeltaDiscoveryRequest) -> Option<Node> {
        request.node.clone()
    }

    fn type_url(request: &DeltaDiscoveryRequest) -> &str {
        &request.type_url
    }

    async fn handle(
        cx: &PushContext<'_, Outgoing<DeltaDiscoveryResponse>>,
        request: DeltaDiscoveryRequest,
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
        cx: &PushContext<'_, Outgoing<DeltaDiscoveryResponse>>,
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
    req: DeltaDiscoveryRequest,
    tx: &Sender,
) -> Result<(), &'static str> {
    let type_url = req.type_url.clone();
    let force = {
        let mut subscriptions = connection.subscriptions.lock();
        let first_for_type = !subscriptions.contains_key(&type_url);
        let sub = subscriptions.entry(type_url.clone()).or_insert_with(|| {
            let mut sub = Subscription::new(
                is_wildcard_type(&type_url) && req.resource_names_subscribe.is_empty(),
            );
            sub.sent = Arc::new(
                req.initial_resource_versions
                    .iter()
                    .map(|(name, version)| (name.as_str().into(), version.as_str().into()))
                    .collect(),
            );
            sub
        });
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
                error = error.message,
                "proxy rejected config (NACK)"
            );
            metrics
                .rejects
                .get_or_create(&Metrics::type_label(&type_url))
                .inc();
            sub.record_nack(&req.response_nonce, error.message.clone());
        } else if !req.response_nonce.is_empty() {
            sub.record_ack(sub.last_sent_version.clone(), &req.response_nonce);
        }
        let mut changed = false;
        for name in &req.resource_names_subscribe {
            changed = true;
            if name == "*" {
                sub.wildcard = true;
            } else {
                sub.names.insert(name.clone());
            }
        }
        for name in &req.resource_names_unsubscribe {
            if name == "*" {
                sub.wildcard = false;
            } else {
                sub.names.remove(name);
                if sub.sent.contains_key(name.as_str()) {
                    Arc::make_mut(&mut sub.sent).remove(name.as_str());
                }
            }
        }
        first_for_type || changed
    };
    push(metrics, connection, snapshot, state, &type_url, force, tx).await
}

/// Sends what changed for `type_url` since the last response: new or
/// updated resources and the names of removed ones. `force` sends a
/// response even when nothing changed (the answer to a first request).
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
        let current = wanted(snapshot, type_url, sub);
        let updated: Vec<Arc<VersionedResource>> = current
            .iter()
            .filter(|(name, r)| sub.sent.get(**name) != Some(&r.version))
            .map(|(_, r)| Arc::clone(r))
            .collect();
        let removed: Vec<Arc<str>> = sub
            .sent
            .keys()
            .filter(|name| !current.contains_key(&***name))
            .filter(|name| sub.wants(name))
            .cloned()
            .collect();
        if updated.is_empty() && removed.is_empty() && !force {
            return Ok(());
        }
        let mut holds = sub.sent.clone();
        if !updated.is_empty() || !removed.is_empty() {
            let holds = Arc::make_mut(&mut holds);
            for name in &removed {
                holds.remove(name);
            }
            for r in &updated {
                holds.insert(r.name.clone(), r.version.clone());
            }
        }
        let version = sotw_version(&current);
        let nonce = connection.next_nonce();
        sub.record_sent(version.clone(), nonce.clone(), holds);
        let head = DeltaDiscoveryResponse {
            system_version_info: version,
            type_url: type_url.to_string(),
            removed_resources: removed.iter().map(|name| name.to_string()).collect(),
            nonce,
            control_plane: Some(ControlPlane {
                identifier: CONTROL_PLANE_ID.to_string(),
            }),
            ..Default::default()
        };
        Outgoing {
            head,
            resources: updated,
        }
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
