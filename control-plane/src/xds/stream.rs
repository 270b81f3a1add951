//! The life of one ADS stream, whichever protocol it speaks: the first
//! request names the proxy, then requests (subscriptions, ACKs, NACKs) and
//! mesh changes are handled in one loop until either side goes away.

use std::future::Future;
use std::sync::Arc;

use proto::pb::envoy::config::core::v3::Node;
use shared::type_url::PUSH_ORDER;
use tokio::sync::mpsc;
use tonic::{Status, Streaming};

use super::cache::ServedResources;
use super::connection::Connection;
use super::state::MeshState;
use super::{StreamKind, XdsContext};
use crate::metrics::Metrics;

/// Where a stream's responses go.
pub type Sender<R> = mpsc::Sender<Result<R, Status>>;

/// What one response needs to know.
pub struct PushContext<'a, R> {
    pub metrics: &'a Metrics,
    pub connection: &'a Connection,
    pub snapshot: &'a ServedResources,
    pub state: &'a MeshState,
    pub tx: &'a Sender<R>,
}

/// What differs between state of the world and delta.
pub trait Protocol {
    type Request: prost::Message + Default + Send + 'static;
    type Response: Send + 'static;
    /// For logs.
    const NAME: &'static str;
    const DELTA: bool;

    fn node(request: &Self::Request) -> Option<Node>;
    fn type_url(request: &Self::Request) -> &str;
    /// Handles a request: subscription changes, ACK or NACK, and the
    /// response it calls for.
    fn handle(
        cx: &PushContext<'_, Self::Response>,
        request: Self::Request,
    ) -> impl Future<Output = Result<(), &'static str>> + Send;
    /// Sends what changed of `type_url` (or everything, when `force`).
    fn push(
        cx: &PushContext<'_, Self::Response>,
        type_url: &str,
        force: bool,
    ) -> impl Future<Output = Result<(), &'static str>> + Send;
}

pub async fn run<P: Protocol>(
    context: Arc<XdsContext>,
    kind: StreamKind,
    mut requests: Streaming<P::Request>,
    tx: Sender<P::Response>,
) {
    let first = match requests.message().await {
        Ok(Some(first)) => first,
        Ok(None) => return,
        Err(status) => {
            tracing::debug!(%status, "{} stream ended before its first request", P::NAME);
            return;
        }
    };
    let Some(node) = P::node(&first) else {
        let message = format!(
            "the first request on a {} stream must carry the node",
            P::NAME
        );
        let _ = tx.send(Err(Status::invalid_argument(message))).await;
        return;
    };
    let guard = match context.connect(node, P::DELTA, kind) {
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
        let cx = PushContext {
            metrics: &context.metrics,
            connection: &connection,
            snapshot: &snapshot,
            state: &state,
            tx: &tx,
        };
        if let Some(req) = request.take() {
            if let Err(status) = kind.check(P::type_url(&req)) {
                let _ = tx.send(Err(status)).await;
                return;
            }
            if let Err(closed) = P::handle(&cx, req).await {
                tracing::debug!(id = connection.id, %closed, "{} stream closed while sending", P::NAME);
                return;
            }
        }
        tokio::select! {
            next = requests.message() => match next {
                Ok(Some(req)) => request = Some(req),
                Ok(None) => return,
                Err(status) => {
                    tracing::debug!(id = connection.id, %status, "{} stream ended", P::NAME);
                    return;
                }
            },
            changed = state_rx.changed() => {
                if changed.is_err() {
                    return;
                }
                state = state_rx.borrow_and_update().clone();
                snapshot = context.served(&state, &connection.proxy);
                let cx = PushContext {
                    metrics: &context.metrics,
                    connection: &connection,
                    snapshot: &snapshot,
                    state: &state,
                    tx: &tx,
                };
                for type_url in PUSH_ORDER {
                    if P::push(&cx, type_url, false).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}
