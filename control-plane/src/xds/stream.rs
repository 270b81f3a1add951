//! The life of one ADS stream, whichever protocol it speaks: the first
//! request names the proxy, then requests (subscriptions, ACKs, NACKs) and
//! mesh changes are handled in one loop until either side goes away.

use std::sync::Arc;

use proto::pb::envoy::config::core::v3::Node;
use shared::type_url::{PUSH_ORDER, SECRET};
use tonic::{Status, Streaming};

use super::XdsContext;
use super::authn::Caller;
use super::cache::ProxySnapshot;
use super::closable::Peer;
use super::connection::Connection;
use super::limits::{self, Oversized};
use super::outbox::{Inbox, Outbox, SendError, outbox};
use super::push::Update;
use super::secrets;
use super::state::MeshState;
use super::subscription::{self, RequestKind, Subscription};
use crate::metrics::Metrics;

/// A stream's responses, or the status that ends it.
pub type Responses<R> = Inbox<Result<R, Status>>;

/// Why a stream stops sending.
#[derive(Debug, thiserror::Error)]
enum Stop {
    #[error(transparent)]
    Send(#[from] SendError),
    #[error(transparent)]
    Oversized(#[from] Oversized),
}

/// What differs between state of the world and delta.
pub trait Protocol {
    type Request: prost::Message + Default + Send + 'static;
    type Response: Send + 'static;
    /// For logs.
    const NAME: &'static str;
    const DELTA: bool;

    fn node(request: &Self::Request) -> Option<Node>;
    /// The request in the terms both protocols share.
    fn request(request: &Self::Request) -> subscription::Request<'_>;
    /// What brings the proxy's resources of `type_url` up to date with
    /// `served`; `None` when it has them, unless `force`.
    fn update(
        subscription: &Subscription,
        served: &ProxySnapshot,
        type_url: &str,
        force: bool,
    ) -> Option<Update>;
    fn response(type_url: &str, nonce: String, update: Update) -> Self::Response;
    /// The bytes of the response's encoding.
    fn encoded_len(response: &Self::Response) -> usize;
}

/// Serves a stream of `requests` in a task of its own, for `caller` when
/// the stream came in on the secure port (`None` on the plaintext one),
/// over the connection of `peer`.
pub fn spawn<P: Protocol + 'static>(
    context: Arc<XdsContext>,
    caller: Option<Caller>,
    peer: Option<Peer>,
    requests: Streaming<P::Request>,
) -> Responses<P::Response> {
    let (tx, rx) = outbox(context.limits.send_timeout);
    tokio::spawn(run::<P>(context, caller, peer, requests, tx));
    rx
}

/// What wakes a stream up.
enum Event<R> {
    Request(R),
    MeshChanged,
}

/// Where a stream's log lines say it came from.
fn peer_text(peer: Option<&Peer>) -> String {
    super::authn::peer_text(peer.and_then(|p| p.remote_addr))
}

async fn run<P: Protocol>(
    context: Arc<XdsContext>,
    caller: Option<Caller>,
    peer: Option<Peer>,
    mut requests: Streaming<P::Request>,
    mut tx: Outbox<Result<P::Response, Status>>,
) {
    let peer_addr = peer_text(peer.as_ref());
    let first = match requests.message().await {
        Ok(Some(first)) => first,
        Ok(None) => return,
        Err(status) => {
            tracing::warn!(peer = %peer_addr, ?status, "{} stream ended before its first request", P::NAME);
            return;
        }
    };
    let Some(node) = P::node(&first) else {
        let message = format!(
            "the first request on a {} stream must carry the node",
            P::NAME
        );
        tracing::warn!(peer = %peer_addr, "refused a {} stream: {message}", P::NAME);
        tx.end(Err(Status::invalid_argument(message)));
        return;
    };
    let node_id = node.id.clone();
    let guard = match context.connect(node, P::DELTA, caller.as_ref()) {
        Ok(guard) => guard,
        Err(status) => {
            tracing::warn!(
                peer = %peer_addr,
                node = ?node_id,
                code = ?status.code(),
                reason = ?status.message(),
                "refused a {} stream",
                P::NAME
            );
            tx.end(Err(status));
            return;
        }
    };
    let connection = guard.connection.clone();
    let mut state_rx = context.publisher.subscribe();
    let mut state: Arc<MeshState> = state_rx.borrow_and_update().clone();
    let mut snapshot = context.cache.get(&state, &connection.proxy);
    if let Err(oversized) = limits::check(&snapshot, &context.limits) {
        refuse_oversized(
            &context.metrics,
            &connection,
            &oversized,
            "refused its stream",
        );
        tx.end(Err(oversized.status(&connection.node.id)));
        return;
    }

    let mut event = Some(Event::Request(first));
    loop {
        let sent = match event {
            Some(event) => {
                let mut cx = PushContext {
                    metrics: &context.metrics,
                    connection: &connection,
                    snapshot: &snapshot,
                    state: &state,
                    tx: &mut tx,
                };
                match event {
                    Event::Request(request) => handle::<P>(&mut cx, &request).await,
                    Event::MeshChanged => push_all::<P>(&mut cx).await,
                }
            }
            None => Ok(()),
        };
        if let Err(stop) = sent {
            stopped(&context, &connection, peer.as_ref(), &stop, &mut tx);
            return;
        }
        event = tokio::select! {
            next = requests.message() => match next {
                Ok(Some(request)) => Some(Event::Request(request)),
                Ok(None) => return,
                Err(status) => {
                    tracing::warn!(
                        id = connection.id,
                        node = ?connection.node.id,
                        peer = %peer_addr,
                        ?status,
                        "{} stream closed: its request could not be read",
                        P::NAME
                    );
                    return;
                }
            },
            changed = state_rx.changed() => {
                if changed.is_err() {
                    return;
                }
                state = state_rx.borrow_and_update().clone();
                let next = context.cache.get(&state, &connection.proxy);
                match limits::check(&next, &context.limits) {
                    Ok(()) => {
                        snapshot = next;
                        Some(Event::MeshChanged)
                    }
                    Err(oversized) => {
                        refuse_oversized(
                            &context.metrics,
                            &connection,
                            &oversized,
                            "kept it on the config it has",
                        );
                        None
                    }
                }
            }
        };
    }
}

/// Logs and counts a config too large to send to `connection`'s proxy.
fn refuse_oversized(
    metrics: &Metrics,
    connection: &Connection,
    oversized: &Oversized,
    outcome: &str,
) {
    metrics
        .oversized_configs
        .get_or_create(&vec![("limit", oversized.label().to_string())])
        .inc();
    tracing::error!(
        id = connection.id,
        node = ?connection.node.id,
        limit = oversized.label(),
        "the config of a proxy is too large to send; {outcome}: {oversized}"
    );
}

/// Ends a stream that cannot go on sending: a proxy that stopped taking
/// responses has its connection closed, a config too large its stream
/// refused.
fn stopped<R>(
    context: &XdsContext,
    connection: &Connection,
    peer: Option<&Peer>,
    stop: &Stop,
    tx: &mut Outbox<Result<R, Status>>,
) {
    match stop {
        Stop::Send(SendError::Closed) => {
            tracing::debug!(
                id = connection.id,
                "stream ended while a response was being sent"
            );
        }
        Stop::Send(timed_out @ SendError::TimedOut(_)) => {
            context.metrics.write_timeouts.inc();
            tracing::warn!(
                id = connection.id,
                node = ?connection.node.id,
                peer = %peer_text(peer),
                "closing the connection of a proxy that stopped reading: {timed_out} (--xds-send-timeout)"
            );
            if let Some(peer) = peer {
                peer.close.close();
            }
        }
        Stop::Oversized(oversized) => {
            refuse_oversized(&context.metrics, connection, oversized, "closed its stream");
            tx.end(Err(oversized.status(&connection.node.id)));
        }
    }
}

/// What one response needs to know.
struct PushContext<'a, R> {
    metrics: &'a Metrics,
    connection: &'a Connection,
    snapshot: &'a ProxySnapshot,
    state: &'a MeshState,
    tx: &'a mut Outbox<Result<R, Status>>,
}

/// Records what a request says (subscription, ACK, NACK; a stale one is
/// ignored) and sends the response it calls for.
async fn handle<P: Protocol>(
    cx: &mut PushContext<'_, P::Response>,
    request: &P::Request,
) -> Result<(), Stop> {
    let request = P::request(request);
    let type_url = request.type_url;
    let received = cx.connection.subscriptions.lock().receive(&request);
    match &received.kind {
        RequestKind::Stale => {
            tracing::debug!(
                id = cx.connection.id,
                type_url = ?type_url,
                nonce = ?request.response_nonce,
                "ignoring request with a stale nonce"
            );
            cx.metrics
                .expired_nonces
                .get_or_create(&Metrics::type_label(type_url))
                .inc();
        }
        RequestKind::Nack(nack) => {
            tracing::warn!(
                id = cx.connection.id,
                node = ?cx.connection.proxy.id,
                type_url = ?type_url,
                version = ?nack.version,
                error = ?nack.error,
                "proxy rejected config (NACK)"
            );
            cx.metrics
                .rejected(type_url, &cx.connection.proxy.id, nack.code);
        }
        RequestKind::Subscribe | RequestKind::Ack => {}
    }
    if received.respond && type_url == SECRET {
        let none = ProxySnapshot::default();
        let served = secrets::servable(cx.connection, type_url, cx.snapshot, &none);
        let subscriptions = cx.connection.subscriptions.lock();
        if let Some(subscription) = subscriptions.get(type_url) {
            secrets::log_refused(cx.connection, &secrets::refused(subscription, served));
        }
    }
    if received.respond {
        push::<P>(cx, type_url, true).await
    } else {
        Ok(())
    }
}

/// Sends, type by type, what changed with the mesh.
async fn push_all<P: Protocol>(cx: &mut PushContext<'_, P::Response>) -> Result<(), Stop> {
    for type_url in PUSH_ORDER {
        push::<P>(cx, type_url, false).await?;
    }
    Ok(())
}

/// Sends the proxy's resources of `type_url` if it subscribed to the type
/// and they differ from what it holds (or `force`).
async fn push<P: Protocol>(
    cx: &mut PushContext<'_, P::Response>,
    type_url: &str,
    force: bool,
) -> Result<(), Stop> {
    let started = std::time::Instant::now();
    let response = {
        let mut subscriptions = cx.connection.subscriptions.lock();
        let Some(subscription) = subscriptions.get_mut(type_url) else {
            return Ok(());
        };
        let none = ProxySnapshot::default();
        let served = secrets::servable(cx.connection, type_url, cx.snapshot, &none);
        let Some(update) = P::update(subscription, served, type_url, force) else {
            return Ok(());
        };
        let nonce = cx.connection.next_nonce();
        let version = update.version.clone();
        let holds = update.holds.clone();
        let response = P::response(type_url, nonce.clone(), update);
        limits::check_message(type_url, P::encoded_len(&response))?;
        subscription.record_sent(version, nonce, holds);
        response
    };
    cx.tx.send(Ok(response)).await?;
    cx.metrics
        .pushes
        .get_or_create(&Metrics::type_label(type_url))
        .inc();
    cx.metrics
        .push_time
        .get_or_create(&Metrics::type_label(type_url))
        .observe(started.elapsed().as_secs_f64());
    cx.metrics
        .convergence_time
        .observe(cx.state.published_at.elapsed().as_secs_f64());
    Ok(())
}
