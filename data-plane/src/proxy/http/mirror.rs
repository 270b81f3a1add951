//! Request mirroring, as Envoy's router shadows a request: for each of the
//! route's mirror policies whose share draws it and whose cluster exists,
//! a copy of the upstream request goes to the mirror cluster with its host
//! suffixed `-shadow` (before the port) and `x-envoy-internal: true`,
//! fire and forget: its answer is discarded, it never delays or fails the
//! request, it has no access log line, and it counts in the mirror
//! cluster's stats. The body streams to the shadows as the request sends
//! it; a shadow that falls more than [`SHADOW_BUFFER_LIMIT`] behind, or
//! whose request body does not finish, is abandoned.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http::header::{self, HeaderValue};
use http::request::Parts;
use http_body::{Body as _, Frame, SizeHint};
use http_body_util::BodyExt;
use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::model::mirror::MirrorPolicy;
use crate::proxy::stats::Stats;
use crate::proxy::{ProxyContext, fast_random};
use crate::upstream::{self, Body};

/// How far a shadow's body may lag behind the request's (Envoy's default
/// per-connection buffer limit).
pub(super) const SHADOW_BUFFER_LIMIT: usize = 1024 * 1024;

/// Starts the shadows of a request with upstream `head` and `body` under
/// `mirrors`, each bounded by the route `timeout`; returns the body the
/// request itself sends (the same one when nothing is mirrored).
pub(super) fn start(
    context: &ProxyContext,
    mirrors: &[MirrorPolicy],
    head: &Parts,
    body: Body,
    timeout: Option<Duration>,
) -> Body {
    if mirrors.is_empty() {
        return body;
    }
    let config = context.store.load();
    let chosen: Vec<&MirrorPolicy> = mirrors
        .iter()
        .filter(|m| m.fraction.hits(fast_random()))
        .filter(|m| {
            let exists = config.cluster(&m.cluster).is_some();
            if !exists {
                tracing::debug!(cluster = %m.cluster, "shadow cluster does not exist");
            }
            exists
        })
        .collect();
    if chosen.is_empty() {
        return body;
    }
    if body.is_end_stream() {
        for mirror in chosen {
            let request = Request::from_parts(
                shadow_head(head, mirror.host_suffix),
                upstream::empty_body(),
            );
            spawn(context, mirror, request, timeout, None);
        }
        return body;
    }
    let mut tee = Tee {
        inner: body,
        shadows: Vec::new(),
    };
    for mirror in chosen {
        let (shadow_body, abandoned) = tee.shadow();
        let request = Request::from_parts(shadow_head(head, mirror.host_suffix), shadow_body);
        spawn(context, mirror, request, timeout, Some(abandoned));
    }
    tee.boxed()
}

fn spawn(
    context: &ProxyContext,
    mirror: &MirrorPolicy,
    request: Request<Body>,
    timeout: Option<Duration>,
    abandoned: Option<Arc<Notify>>,
) {
    tokio::spawn(send(
        context.upstreams.clone(),
        context.stats.clone(),
        mirror.cluster.clone(),
        request,
        timeout,
        abandoned,
    ));
}

/// The shadow's head: the upstream request's, its host suffixed.
fn shadow_head(head: &Parts, host_suffix: bool) -> Parts {
    let mut shadow = head.clone();
    if host_suffix
        && let Some(host) = shadow
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
        && let Ok(suffixed) = HeaderValue::from_str(&shadow_host(host))
    {
        shadow.headers.insert(header::HOST, suffixed);
    }
    shadow
        .headers
        .insert("x-envoy-internal", HeaderValue::from_static("true"));
    shadow
}

/// Envoy's shadow host: `-shadow` before the port, if there is one
/// (`[::1]:80` has one, `[::1]` has none).
pub(super) fn shadow_host(host: &str) -> String {
    let port_start = host
        .rfind(':')
        .filter(|colon| host.rfind(']').is_none_or(|bracket| bracket < *colon));
    match port_start {
        Some(colon) => format!("{}-shadow{}", &host[..colon], &host[colon..]),
        None => format!("{host}-shadow"),
    }
}

/// Sends one shadow, counts its answer on the mirror cluster, and drops
/// it; gives up when the route times out or its body is abandoned.
async fn send(
    upstreams: Arc<upstream::Upstreams>,
    stats: Arc<Stats>,
    cluster: Arc<str>,
    request: Request<Body>,
    timeout: Option<Duration>,
    abandoned: Option<Arc<Notify>>,
) {
    let chosen = parking_lot::Mutex::new(None);
    let exchange = async {
        let result = upstreams
            .send_http_to(&cluster, request, None, &chosen)
            .await;
        let cluster_stats = stats.cluster(&cluster);
        match result {
            Ok((response, _)) => {
                Stats::record_upstream_response(&cluster_stats, response.status().as_u16());
                let _ = response.into_body().collect().await;
            }
            Err(error) => {
                tracing::debug!(%cluster, %error, "shadow request failed");
                Stats::record_upstream_failure(&cluster_stats, &error, 503);
            }
        }
    };
    let abandoned = async {
        match &abandoned {
            Some(notify) => notify.notified().await,
            None => std::future::pending().await,
        }
    };
    let bounded = async {
        tokio::select! {
            () = exchange => {}
            () = abandoned => tracing::debug!(%cluster, "shadow request abandoned"),
        }
    };
    match timeout {
        Some(timeout) => {
            let _ = tokio::time::timeout(timeout, bounded).await;
        }
        None => bounded.await,
    }
}

/// The frames one shadow has yet to send.
#[derive(Default)]
struct Shared {
    frames: VecDeque<Frame<Bytes>>,
    queued: usize,
    ended: bool,
    waker: Option<Waker>,
    /// Notified when the shadow is given up (too far behind, or the
    /// request body failed or was dropped unfinished).
    abandoned: Arc<Notify>,
    gone: bool,
}

impl Shared {
    fn abandon(&mut self) {
        if !self.gone {
            self.gone = true;
            self.frames.clear();
            self.abandoned.notify_one();
        }
    }
}

/// The request's body, copying each frame to the shadows.
struct Tee {
    inner: Body,
    shadows: Vec<Arc<Mutex<Shared>>>,
}

impl Tee {
    /// A new shadow's body, and what tells its sender it was abandoned.
    fn shadow(&mut self) -> (Body, Arc<Notify>) {
        let shared = Arc::new(Mutex::new(Shared::default()));
        let abandoned = shared.lock().abandoned.clone();
        self.shadows.push(shared.clone());
        (ShadowBody { shared }.boxed(), abandoned)
    }
}

impl http_body::Body for Tee {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        let ended = matches!(polled, Poll::Ready(None)) || self.inner.is_end_stream();
        for shadow in &self.shadows {
            let mut shadow = shadow.lock();
            if shadow.gone {
                continue;
            }
            match &polled {
                Poll::Ready(Some(Ok(frame))) => {
                    let copy = match (frame.data_ref(), frame.trailers_ref()) {
                        (Some(data), _) => Some(Frame::data(data.clone())),
                        (None, Some(trailers)) => Some(Frame::trailers(trailers.clone())),
                        _ => None,
                    };
                    if let Some(copy) = copy {
                        shadow.queued += copy.data_ref().map_or(0, Bytes::len);
                        shadow.frames.push_back(copy);
                    }
                    if shadow.queued > SHADOW_BUFFER_LIMIT {
                        shadow.abandon();
                        continue;
                    }
                }
                Poll::Ready(Some(Err(_))) => {
                    shadow.abandon();
                    continue;
                }
                Poll::Ready(None) | Poll::Pending => {}
            }
            if ended {
                shadow.ended = true;
            }
            if let Some(waker) = shadow.waker.take() {
                waker.wake();
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Tee {
    /// A request body dropped unfinished abandons its shadows.
    fn drop(&mut self) {
        for shadow in &self.shadows {
            let mut shadow = shadow.lock();
            if !shadow.ended {
                shadow.abandon();
            }
        }
    }
}

/// One shadow's body: the frames the request body has sent.
struct ShadowBody {
    shared: Arc<Mutex<Shared>>,
}

impl http_body::Body for ShadowBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let mut shared = self.shared.lock();
        if let Some(frame) = shared.frames.pop_front() {
            shared.queued -= frame.data_ref().map_or(0, Bytes::len);
            return Poll::Ready(Some(Ok(frame)));
        }
        if shared.ended && !shared.gone {
            return Poll::Ready(None);
        }
        shared.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

#[cfg(test)]
mod tests;
