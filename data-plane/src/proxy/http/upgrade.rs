//! HTTP/1.1 upgrades (WebSocket) through the connection manager, as Envoy
//! proxies them: a request with `Connection: upgrade` and `Upgrade: <type>`
//! upgrades when its route's or its connection manager's `upgrade_configs`
//! allow the type (else Envoy's 403, details `upgrade_failed`, and the
//! connection closes); it goes upstream with its upgrade headers, without
//! retries; on a 101 both connections are spliced as bytes under the
//! stream idle timeout and the stream is logged when the session ends
//! (flag DC when the app ended it, as Envoy resets the stream then); any
//! other answer is returned as a response, and the connection closes.
//! `Upgrade: h2c` is dropped first, as Envoy's HTTP/1 codec drops it.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use http::header::{self, HeaderMap, HeaderValue};
use http::request::Parts;
use http::{Response, StatusCode, Version};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::time::Instant;

use crate::access_log_service::LogTargets;
use crate::model::route::{Route, RouteAction};
use crate::model::upgrade::UpgradeConfigs;
use crate::proxy::access_log::AccessLog;
use crate::proxy::respond::LocalReply;
use crate::proxy::stats::{ClusterStats, DownstreamStats};
use crate::proxy::tcp::timeouts::{self as copy, Ending, Limits};
use crate::upstream::{self, Admission};

use super::ResponseBody;
use super::body::CountingBody;
use super::exchange::Exchange;
use super::timeouts::StreamGuard;

/// The downstream connection's stream held open while its upgraded
/// session runs, so the connection's timeouts leave the spliced bytes
/// alone. Put on the request by the connection before it is handled.
#[derive(Clone)]
pub(super) struct SessionStream {
    _guard: Arc<StreamGuard>,
}

/// An HTTP/1 request asking to upgrade, with the downstream connection
/// that upgrades once the 101 has been sent.
pub(super) struct UpgradeRequest {
    /// The `Upgrade` header: the protocol asked for.
    protocol: HeaderValue,
    downstream: OnUpgrade,
    stream: Option<SessionStream>,
}

/// Whether `headers` ask for an upgrade as Envoy's codec reads them: an
/// `Upgrade` header and an `upgrade` token in `Connection`.
fn asks_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .any(|token| token.trim().eq_ignore_ascii_case("upgrade"))
}

/// Keeps a stream of the connection open for the session a request asking
/// for an upgrade may start (`open` opens it).
pub(super) fn hold_stream<B>(req: &mut http::Request<B>, open: impl FnOnce() -> StreamGuard) {
    if req.version() != Version::HTTP_2 && asks_upgrade(req.headers()) {
        let stream = SessionStream {
            _guard: Arc::new(open()),
        };
        req.extensions_mut().insert(stream);
    }
}

impl UpgradeRequest {
    /// The upgrade `head` asks for, taken from it (HTTP/1 only; an h2c
    /// upgrade is removed and is none).
    pub(super) fn take(head: &mut Parts) -> Option<Self> {
        if head.version == Version::HTTP_2 || !asks_upgrade(&head.headers) {
            return None;
        }
        let stream = head.extensions.remove::<SessionStream>();
        let downstream = head.extensions.remove::<OnUpgrade>()?;
        let protocol = head.headers.get(header::UPGRADE)?.clone();
        if protocol.as_bytes().eq_ignore_ascii_case(b"h2c") {
            head.headers.remove(header::UPGRADE);
            head.headers.remove("http2-settings");
            return None;
        }
        Some(Self {
            protocol,
            downstream,
            stream,
        })
    }

    /// Whether the matched `route` (none, or not one that forwards: only
    /// the connection manager decides) lets the request upgrade.
    pub(super) fn allowed(&self, upgrades: &UpgradeConfigs, route: Option<&Route>) -> bool {
        let on_route = match route.map(|route| &route.action) {
            Some(RouteAction::Forward(forward)) => forward.upgrades.as_slice(),
            _ => &[],
        };
        let protocol = String::from_utf8_lossy(self.protocol.as_bytes());
        upgrades.allows(on_route, &protocol)
    }

    /// Counts the upgrade as Envoy does once its filter chain is made:
    /// `downstream_cx_upgrades_total`, and `_active` until the stream ends.
    pub(super) fn start(
        self,
        stats: Option<Arc<DownstreamStats>>,
        stream_idle: Option<Duration>,
    ) -> Upgrade {
        if let Some(stats) = &stats {
            stats.upgrades.cx_upgrades_total.fetch_add(1, Relaxed);
            stats.upgrades.cx_upgrades_active.fetch_add(1, Relaxed);
        }
        Upgrade {
            request: self,
            active: Active(stats),
            stream_idle,
        }
    }
}

/// Envoy's answer to an upgrade its configuration does not allow (counted
/// in `downstream_rq_ws_on_non_ws_route`); the connection closes after it.
pub(super) fn refuse(
    exchange: Exchange<'_>,
    stats: Option<&DownstreamStats>,
) -> Response<ResponseBody> {
    if let Some(stats) = stats {
        stats.upgrades.rq_ws_on_non_ws_route.fetch_add(1, Relaxed);
    }
    let mut response = exchange.reply(LocalReply::upgrade_failed());
    close_after(&mut response);
    response
}

fn close_after<B>(response: &mut Response<B>) {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
}

/// Decrements `downstream_cx_upgrades_active` when the stream ends.
struct Active(Option<Arc<DownstreamStats>>);

impl Drop for Active {
    fn drop(&mut self) {
        if let Some(stats) = &self.0 {
            stats.upgrades.cx_upgrades_active.fetch_sub(1, Relaxed);
        }
    }
}

/// An allowed upgrade on its way upstream.
pub(super) struct Upgrade {
    request: UpgradeRequest,
    active: Active,
    /// The connection manager's `stream_idle_timeout`, which ends an
    /// upgraded stream idle that long.
    stream_idle: Option<Duration>,
}

impl Upgrade {
    /// Puts the upgrade headers back on the upstream request's `head`
    /// (the plan dropped them with the other hop-by-hop headers).
    pub(super) fn restore_headers(&self, head: &mut Parts) {
        head.headers
            .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        head.headers
            .insert(header::UPGRADE, self.request.protocol.clone());
    }

    /// Answers the client with the upstream's response (`parts`, `body`):
    /// on a 101, splices the two upgraded connections until the session
    /// ends; otherwise the response as it is, closing the connection after
    /// it.
    pub(super) fn respond(
        self,
        exchange: Exchange<'_>,
        mut parts: http::response::Parts,
        body: Incoming,
        cluster_stats: Arc<ClusterStats>,
    ) -> Response<ResponseBody> {
        let admission = parts.extensions.remove::<Arc<Admission>>();
        if parts.status != StatusCode::SWITCHING_PROTOCOLS {
            let body = CountingBody {
                inner: body,
                stats: cluster_stats,
                _admission: admission,
            };
            let mut response = exchange.respond(Response::from_parts(parts, body.boxed()));
            close_after(&mut response);
            return response;
        }
        let upstream = parts.extensions.remove::<OnUpgrade>();
        parts
            .headers
            .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        parts
            .headers
            .insert(header::UPGRADE, self.request.protocol.clone());
        let mut response = Response::from_parts(parts, upstream::empty_body());
        let (log, targets) = exchange.upgraded(&mut response);
        let session = Session {
            log,
            targets,
            idle: self.stream_idle,
            active: self.active,
            _stream: self.request.stream,
            _admission: admission,
        };
        tokio::spawn(session.run(self.request.downstream, upstream));
        drop(body);
        response
    }
}

/// An upgraded stream: its log, written when it ends, and what it holds
/// while it runs.
struct Session {
    log: AccessLog,
    targets: Arc<LogTargets>,
    idle: Option<Duration>,
    active: Active,
    _stream: Option<SessionStream>,
    /// The request's circuit breaker slots, held while the session runs.
    _admission: Option<Arc<Admission>>,
}

impl Session {
    async fn run(mut self, downstream: OnUpgrade, upstream: Option<OnUpgrade>) {
        let Some(upstream) = upstream else {
            tracing::debug!("upstream 101 without an upgraded connection");
            self.targets.emit_http(&self.log);
            return;
        };
        match tokio::try_join!(downstream, upstream) {
            Ok((downstream, upstream)) => {
                let limits = Limits {
                    idle: self.idle,
                    max_duration: None,
                    started: Instant::now(),
                    // Envoy's connection manager resets the upgraded
                    // stream, closing its upstream, when the client's
                    // connection ends.
                    downstream_end_closes: true,
                };
                let copied = copy::copy(
                    &mut TokioIo::new(downstream),
                    &mut TokioIo::new(upstream),
                    limits,
                )
                .await;
                self.log.bytes_received += copied.received;
                self.log.bytes_sent += copied.sent;
                if copied.ending == Ending::Closed && copied.downstream_ended_first {
                    // The app closing its connection resets Envoy's
                    // upgraded stream: flag DC.
                    self.log.response_flags = "DC";
                } else if copied.ending == Ending::IdleTimeout {
                    // Envoy resets a stream idle past its timeout once its
                    // response has started: flag SI.
                    self.log.response_flags = "SI";
                    if let Some(stats) = &self.active.0 {
                        stats.timeouts.rq_idle_timeout.fetch_add(1, Relaxed);
                    }
                }
            }
            Err(error) => tracing::debug!(%error, "an upgraded connection failed"),
        }
        self.targets.emit_http(&self.log);
    }
}

#[cfg(test)]
mod tests;
