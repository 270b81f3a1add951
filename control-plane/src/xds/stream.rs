//! The life of one ADS stream, whichever protocol it speaks: the first
//! request names the proxy, then requests (subscriptions, ACKs, NACKs) and
//! mesh changes are handled in one loop until either side goes away.

use std::sync::Arc;

use proto::pb::envoy::config::core::v3::Node;
use shared::type_url::{PUSH_ORDER, SECRET};
use tokio::sync::mpsc;
use tonic::{Status, Streaming};

use super::XdsContext;
use super::authn::Caller;
use super::cache::ProxySnapshot;
use super::connection::Connection;
use super::push::Update;
use super::secrets;
use super::state::MeshState;
use super::subscription::{self, RequestKind, Subscription};
use crate::metrics::Metrics;

/// Responses waiting to be sent on one stream.
const RESPONSE_QUEUE: usize = 16;

/// A stream's responses, or the status that ends it.
pub type Responses<R> = mpsc::Receiver<Result<R, Status>>;

/// The proxy's end of the stream went away while a response was on its way.
#[derive(Debug, thiserror::Error)]
#[error("the stream closed while a response was being sent")]
pub struct Closed;

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
}

/// Serves a stream of `requests` in a task of its own, for `caller` when
/// the stream came in on the secure port (`None` on the plaintext one).
pub fn spawn<P: Protocol + 'static>(
    context: Arc<XdsContext>,
    caller: Option<Caller>,
    requests: Streaming<P::Request>,
) -> Responses<P::Response> {
    let (tx, rx) = mpsc::channel(RESPONSE_QUEUE);
    tokio::spawn(run::<P>(context, caller, requests, tx));
    rx
}

/// What wakes a stream up.
enum Event<R> {
    Request(R),
    MeshChanged,
}

async fn run<P: Protocol>(
    context: Arc<XdsContext>,
    caller: Option<Caller>,
    mut requests: Streaming<P::Request>,
    tx: mpsc::Sender<Result<P::Response, Status>>,
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
    let guard = match context.connect(node, P::DELTA, caller.as_ref()) {
        Ok(guard) => guard,
        Err(status) => {
            let _ = tx.send(Err(status)).await;
            return;
        }
    };
    let connection = guard.connection.clone();
    let mut state_rx = context.publisher.subscribe();
    let mut state: Arc<MeshState> = state_rx.borrow_and_update().clone();
    let mut snapshot = context.cache.get(&state, &connection.proxy);

    let mut event = Event::Request(first);
    loop {
        let cx = PushContext {
            metrics: &context.metrics,
            connection: &connection,
            snapshot: &snapshot,
            state: &state,
            tx: &tx,
        };
        let sent = match event {
            Event::Request(request) => handle::<P>(&cx, &request).await,
            Event::MeshChanged => push_all::<P>(&cx).await,
        };
        if let Err(closed) = sent {
            tracing::debug!(id = connection.id, %closed, "{} stream ended", P::NAME);
            return;
        }
        event = tokio::select! {
            next = requests.message() => match next {
                Ok(Some(request)) => Event::Request(request),
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
                snapshot = context.cache.get(&state, &connection.proxy);
                Event::MeshChanged
            }
        };
    }
}

/// What one response needs to know.
struct PushContext<'a, R> {
    metrics: &'a Metrics,
    connection: &'a Connection,
    snapshot: &'a ProxySnapshot,
    state: &'a MeshState,
    tx: &'a mpsc::Sender<Result<R, Status>>,
}

/// Records what a request says (subscription, ACK, NACK; a stale one is
/// ignored) and sends the response it calls for.
async fn handle<P: Protocol>(
    cx: &PushContext<'_, P::Response>,
    request: &P::Request,
) -> Result<(), Closed> {
    let request = P::request(request);
    let type_url = request.type_url;
    let received = cx.connection.subscriptions.lock().receive(&request);
    match &received.kind {
        RequestKind::Stale => tracing::debug!(
            id = cx.connection.id,
            type_url,
            nonce = request.response_nonce,
            "ignoring request with a stale nonce"
        ),
        RequestKind::Nack(nack) => {
            tracing::warn!(
                id = cx.connection.id,
                node = ?cx.connection.proxy.id,
                type_url,
                version = nack.version,
                error = nack.error,
                "proxy rejected config (NACK)"
            );
            cx.metrics
                .rejects
                .get_or_create(&Metrics::type_label(type_url))
                .inc();
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
async fn push_all<P: Protocol>(cx: &PushContext<'_, P::Response>) -> Result<(), Closed> {
    for type_url in PUSH_ORDER {
        push::<P>(cx, type_url, false).await?;
    }
    Ok(())
}

/// Sends the proxy's resources of `type_url` if it subscribed to the type
/// and they differ from what it holds (or `force`).
async fn push<P: Protocol>(
    cx: &PushContext<'_, P::Response>,
    type_url: &str,
    force: bool,
) -> Result<(), Closed> {
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
        subscription.record_sent(update.version.clone(), nonce.clone(), update.holds.clone());
        P::response(type_url, nonce, update)
    };
    cx.tx.send(Ok(response)).await.map_err(|_| Closed)?;
    cx.metrics
        .pushes
        .get_or_create(&Metrics::type_label(type_url))
        .inc();
    cx.metrics
        .push_time
        .observe(cx.state.published_at.elapsed().as_secs_f64());
    Ok(())
}
