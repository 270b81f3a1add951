//! The HTTP connection manager: serves HTTP/1.1 and h2c downstream, routes
//! each request by the route configuration, forwards it upstream with the
//! route's timeout and retries, and logs it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::PathAndQuery;
use http::{Request, Response, Uri};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Empty, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use crate::model::RunningConfig;
use crate::model::cluster::Discovery;
use crate::model::listener::{ChainAction, TcpProxy};
use crate::model::route::{
    Forward, PathMatch, Redirect, RequestFacts, Route, RouteAction, RouteConfig, RouteMatch,
    VirtualHost,
};
use crate::upstream::UpstreamError;

use super::access_log::AccessLog;
use super::respond::LocalReply;
use super::stats::{ClusterStats, DownstreamStats, Stats};
use super::{ProxyContext, fast_random};

pub type ResponseBody = BoxBody<Bytes, hyper::Error>;

/// Why forwarding failed: the upstream, or a timeout (per try or route).
enum ForwardError {
    Upstream(UpstreamError),
    Timeout,
}

/// Where a connection's requests find their routes.
#[derive(Debug, Clone)]
pub enum RouteSource {
    /// The route configuration of the filter chain that took the connection.
    Chain {
        route_config_name: Arc<str>,
        inline: Option<Arc<RouteConfig>>,
        stat_prefix: Arc<str>,
    },
    /// Explicit proxy mode: each request names its destination; the
    /// listener for its port decides, as if the connection had been captured
    /// (the accepting listener when no other listener has that port).
    ExplicitProxy { accepting: Arc<str> },
}

/// What every request on one downstream connection shares.
pub struct Downstream {
    pub local: Option<SocketAddr>,
    pub remote: Option<SocketAddr>,
    pub original_dst: Option<SocketAddr>,
    pub source: RouteSource,
    pub access_log: bool,
    /// The client's SPIFFE id, when it authenticated with a mesh certificate.
    pub peer_identity: Option<Arc<str>>,
    /// The SNI the client sent (TLS-terminated connections).
    pub server_name: Option<Arc<str>>,
}

/// Serves HTTP on an accepted connection until it closes.
pub async fn serve<IO>(io: IO, context: Arc<ProxyContext>, downstream: Arc<Downstream>)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req: Request<Incoming>| {
        let context = context.clone();
        let downstream = downstream.clone();
        async move { Ok::<_, Infallible>(handle(req, &context, &downstream).await) }
    });
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    if let Err(error) = builder.serve_connection(TokioIo::new(io), service).await {
        tracing::debug!(%error, "downstream HTTP connection ended with an error");
    }
}

const HOP_BY_HOP: [HeaderName; 7] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::UPGRADE,
];

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
    headers.remove(header::TRANSFER_ENCODING);
}

/// The request's authority: the absolute URI's, else the Host header.
fn authority(req: &Request<Incoming>) -> Option<HeaderValue> {
    match req.uri().authority() {
        Some(authority) => HeaderValue::from_str(authority.as_str()).ok(),
        None => req.headers().get(header::HOST).cloned(),
    }
}

/// A header value as text, empty when absent or not visible ASCII.
fn text(value: Option<&HeaderValue>) -> &str {
    value.and_then(|v| v.to_str().ok()).unwrap_or_default()
}

/// The route configuration (and stats prefix) for a request.
fn route_config(
    config: &RunningConfig,
    downstream: &Downstream,
    req: &Request<Incoming>,
) -> Option<(Arc<RouteConfig>, Arc<str>, Option<SocketAddr>)> {
    match &downstream.source {
        RouteSource::Chain {
            route_config_name,
            inline,
            stat_prefix,
        } => {
            let routes = inline
                .clone()
                .or_else(|| config.route(route_config_name).cloned())?;
            Some((routes, stat_prefix.clone(), downstream.original_dst))
        }
        RouteSource::ExplicitProxy { accepting } => {
            let port = req.uri().port_u16().unwrap_or(80);
            let listener = config
                .listener_for_original_dst(SocketAddr::from(([0, 0, 0, 0], port)))
                .or_else(|| config.listener(accepting))?;
            match &listener.select_chain(port, None)?.action {
                ChainAction::Http(hcm) => {
                    let routes = hcm
                        .inline_routes
                        .clone()
                        .or_else(|| config.route(&hcm.route_config_name).cloned())?;
                    Some((routes, hcm.stat_prefix.clone(), None))
                }
                ChainAction::Tcp(tcp) => {
                    Some((Arc::new(forward_all(tcp)), tcp.stat_prefix.clone(), None))
                }
            }
        }
    }
}

/// Routes for plain HTTP that a captured connection would have sent
/// through a TCP proxy: everything to the proxy's cluster, no timeout.
fn forward_all(tcp: &TcpProxy) -> RouteConfig {
    RouteConfig {
        name: tcp.stat_prefix.clone(),
        virtual_hosts: vec![VirtualHost {
            name: tcp.stat_prefix.clone(),
            domains: vec!["*".to_string()],
            routes: vec![Route {
                name: tcp.stat_prefix.clone(),
                matcher: RouteMatch {
                    path: PathMatch::Prefix("/".to_string()),
                    case_sensitive: true,
                    headers: Vec::new(),
                    query: Vec::new(),
                },
                action: RouteAction::Forward(Forward {
                    target: tcp.target.clone(),
                    timeout: None,
                    retry: None,
                    prefix_rewrite: None,
                    host_rewrite: None,
                }),
                decorator: None,
                request_headers_to_add: Vec::new(),
                request_headers_to_remove: Vec::new(),
                response_headers_to_add: Vec::new(),
                response_headers_to_remove: Vec::new(),
            }],
            include_attempt_count: false,
        }],
    }
}

async fn handle(
    req: Request<Incoming>,
    context: &Arc<ProxyContext>,
    downstream: &Downstream,
) -> Response<ResponseBody> {
    context.record_activity();
    let config = context.store.load();
    let mut log = AccessLog::new(protocol(req.version()), downstream.local, downstream.remote);
    log.method = Some(req.method().clone());
    log.path = req.uri().path_and_query().cloned();
    log.authority = authority(&req);
    log.user_agent = req.headers().get(header::USER_AGENT).cloned();
    log.forwarded_for = req.headers().get("x-forwarded-for").cloned();
    log.bytes_received = req.body().size_hint().exact().unwrap_or(0);
    log.peer_identity = downstream.peer_identity.clone();
    log.requested_server_name = downstream.server_name.clone();

    let Some((routes, stat_prefix, original_dst)) = route_config(&config, downstream, &req) else {
        return finish_local(LocalReply::no_route(), log, downstream, None);
    };
    let downstream_stats = context.stats.downstream(&stat_prefix);
    let authority = log.authority.clone();
    let path = log.path.clone();
    let facts = RequestFacts {
        authority: text(authority.as_ref()),
        path: path.as_ref().map_or("", PathAndQuery::as_str),
        headers: req.headers(),
        method: req.method(),
    };
    let Some((vhost, route)) = routes.route(&facts) else {
        return finish_local(
            LocalReply::no_route(),
            log,
            downstream,
            Some(&downstream_stats),
        );
    };
    log.route_name = Some(route.name.clone());
    match &route.action {
        RouteAction::Direct { status, body } => {
            let reply = LocalReply {
                status: http::StatusCode::from_u16(*status)
                    .unwrap_or(http::StatusCode::BAD_GATEWAY),
                body: body.clone().unwrap_or_default(),
                ..LocalReply::blocked()
            };
            finish_local(reply, log, downstream, Some(&downstream_stats))
        }
        RouteAction::Redirect(redirect) => {
            let response = redirect_response(redirect, &req);
            log.response_code = response.status().as_u16();
            log.response_code_details = "direct_response";
            Stats::record_downstream_response(&downstream_stats, log.response_code);
            finish(response, log, downstream)
        }
        RouteAction::Forward(forward) => {
            forward_request(
                req,
                context,
                downstream,
                vhost,
                route,
                forward,
                original_dst,
                log,
                downstream_stats,
            )
            .await
        }
    }
}

fn protocol(version: http::Version) -> &'static str {
    match version {
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_2 => "HTTP/2",
        _ => "HTTP/1.1",
    }
}

fn finish_local(
    reply: LocalReply,
    mut log: AccessLog,
    downstream: &Downstream,
    stats: Option<&DownstreamStats>,
) -> Response<ResponseBody> {
    log.response_code = reply.status.as_u16();
    log.response_flags = reply.flags;
    log.response_code_details = reply.details;
    log.transport_failure_reason = reply.transport_failure.clone();
    if let Some(stats) = stats {
        Stats::record_downstream_response(stats, log.response_code);
    }
    finish(reply.into_response(), log, downstream)
}

/// Wraps the response body so the access log is written, with the bytes
/// sent, when the body ends (or the client goes away).
fn finish(
    response: Response<ResponseBody>,
    log: AccessLog,
    downstream: &Downstream,
) -> Response<ResponseBody> {
    if !downstream.access_log {
        return response;
    }
    response.map(|body| {
        LoggedBody {
            inner: body,
            log: Some(log),
        }
        .boxed()
    })
}

fn redirect_response(redirect: &Redirect, req: &Request<Incoming>) -> Response<ResponseBody> {
    let scheme = redirect
        .scheme
        .clone()
        .unwrap_or_else(|| "http".to_string());
    let host = redirect.host.clone().unwrap_or_else(|| {
        text(authority(req).as_ref())
            .split(':')
            .next()
            .unwrap_or_default()
            .to_string()
    });
    let port = redirect.port.map(|p| format!(":{p}")).unwrap_or_default();
    let path = redirect.path.clone().unwrap_or_else(|| {
        req.uri()
            .path_and_query()
            .map_or("/".into(), |p| p.as_str().to_string())
    });
    let location = format!("{scheme}://{host}{port}{path}");
    let mut response = Response::new(Empty::new().map_err(|never| match never {}).boxed());
    *response.status_mut() =
        http::StatusCode::from_u16(redirect.status).unwrap_or(http::StatusCode::MOVED_PERMANENTLY);
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// A request id in UUID v4 form.
fn request_id() -> HeaderValue {
    let a = fast_random();
    let b = fast_random();
    HeaderValue::from_bytes(&uuid_v4(a, b)).unwrap_or(HeaderValue::from_static(
        "00000000-0000-4000-8000-000000000000",
    ))
}

/// The UUID v4 text of two random numbers, written without `format!` (one
/// per request).
fn uuid_v4(a: u64, b: u64) -> [u8; 36] {
    fn hex(out: &mut [u8], mut value: u64) {
        for digit in out.iter_mut().rev() {
            *digit = b"0123456789abcdef"[(value & 0xf) as usize];
            value >>= 4;
        }
    }
    let mut text = [b'-'; 36];
    hex(&mut text[0..8], a >> 32);
    hex(&mut text[9..13], (a >> 16) & 0xffff);
    hex(&mut text[14..18], 0x4000 | (a & 0x0fff));
    hex(&mut text[19..23], ((b >> 48) & 0x3fff) | 0x8000);
    hex(&mut text[24..36], b & 0xffff_ffff_ffff);
    text
}

#[allow(clippy::too_many_arguments)]
async fn forward_request(
    req: Request<Incoming>,
    context: &Arc<ProxyContext>,
    downstream: &Downstream,
    vhost: &VirtualHost,
    route: &Route,
    forward: &Forward,
    original_dst: Option<SocketAddr>,
    mut log: AccessLog,
    downstream_stats: Arc<DownstreamStats>,
) -> Response<ResponseBody> {
    let Some(cluster) = forward.target.pick(fast_random()).cloned() else {
        return finish_local(
            LocalReply::no_route(),
            log,
            downstream,
            Some(&downstream_stats),
        );
    };
    log.upstream_cluster = Some(cluster.clone());
    let cluster_stats = context.stats.cluster(&cluster);
    let passthrough = context
        .store
        .load()
        .cluster(&cluster)
        .is_some_and(|c| matches!(c.discovery, Discovery::OriginalDst));
    let original_dst = match original_dst {
        None if passthrough => match resolve_authority(context, text(log.authority.as_ref())).await
        {
            Ok(dst) => Some(dst),
            Err(error) => {
                let reply = LocalReply::upstream_failure(&error);
                return finish_local(reply, log, downstream, Some(&downstream_stats));
            }
        },
        other => other,
    };

    let (mut parts, body) = req.into_parts();
    let host = match &forward.host_rewrite {
        Some(rewrite) => HeaderValue::from_str(rewrite).ok(),
        None => log.authority.clone(),
    };
    let path = rewrite_path(log.path.as_ref(), route, forward);
    strip_hop_by_hop(&mut parts.headers);
    let headers = &mut parts.headers;
    if let Some(host) = host {
        headers.insert(header::HOST, host);
    }
    headers.insert(
        HeaderName::from_static("x-forwarded-proto"),
        HeaderValue::from_static("http"),
    );
    if !headers.contains_key("x-request-id") {
        headers.insert(HeaderName::from_static("x-request-id"), request_id());
    }
    log.request_id = headers.get("x-request-id").cloned();
    // The route's decorator replaces one from downstream (a sidecar's, at a
    // gateway), as Envoy does on outbound listeners, all the ones Istio has.
    if let Some(operation) = &route.decorator
        && let Ok(value) = HeaderValue::from_str(operation)
    {
        headers.insert(
            HeaderName::from_static("x-envoy-decorator-operation"),
            value,
        );
    }
    for name in &route.request_headers_to_remove {
        headers.remove(name.as_str());
    }
    for add in &route.request_headers_to_add {
        if add.overwrite {
            headers.insert(add.name.clone(), add.value.clone());
        } else {
            headers.append(add.name.clone(), add.value.clone());
        }
    }
    parts.uri = Uri::from(path);
    parts.version = http::Version::HTTP_11;

    let retry = forward.retry.as_ref();
    let replayable = body.is_end_stream();
    let mut body = Some(body.boxed());
    let max_attempts = if replayable {
        retry.map_or(1, |r| r.num_retries + 1)
    } else {
        1
    };
    let started = Instant::now();
    let chosen = parking_lot::Mutex::new(None);
    let attempts = async {
        let mut attempt = 1;
        loop {
            // Only a request that may be retried is copied; the last
            // attempt takes it.
            let mut request_parts = if attempt < max_attempts {
                parts.clone()
            } else {
                std::mem::replace(&mut parts, Request::new(()).into_parts().0)
            };
            if vhost.include_attempt_count {
                request_parts.headers.insert(
                    HeaderName::from_static("x-envoy-attempt-count"),
                    HeaderValue::from(attempt),
                );
            }
            let request_body = body
                .take()
                .unwrap_or_else(|| Empty::new().map_err(|never| match never {}).boxed());
            let request = Request::from_parts(request_parts, request_body);
            let send = context
                .upstreams
                .send_http_to(&cluster, request, original_dst, &chosen);
            let result = match retry.and_then(|r| r.per_try_timeout) {
                Some(per_try) => match tokio::time::timeout(per_try, send).await {
                    Ok(result) => result.map_err(ForwardError::Upstream),
                    Err(_) => Err(ForwardError::Timeout),
                },
                None => send.await.map_err(ForwardError::Upstream),
            };
            let retryable = match (&result, retry) {
                (Err(ForwardError::Upstream(e)), Some(r)) => {
                    (e.is_connect_failure() && r.on_connect_failure)
                        || (r.on_reset && !e.is_connect_failure())
                }
                (Err(ForwardError::Timeout), Some(r)) => {
                    r.on_reset || r.on_5xx || r.on_gateway_error
                }
                (Ok((response, _)), Some(r)) => r.retries_status(response.status().as_u16()),
                _ => false,
            };
            if let Err(ForwardError::Upstream(error)) = &result
                && error.is_connect_failure()
            {
                cluster_stats
                    .cx_connect_fail
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            if !retryable || attempt >= max_attempts {
                return result;
            }
            attempt += 1;
            tracing::debug!(cluster = %cluster, attempt, "retrying upstream request");
        }
    };
    let result = match forward.timeout {
        Some(timeout) => match tokio::time::timeout(timeout, attempts).await {
            Ok(result) => result,
            Err(_) => Err(ForwardError::Timeout),
        },
        None => attempts.await,
    };
    let (response, info) = match result {
        Ok(ok) => ok,
        Err(ForwardError::Timeout) => {
            log.upstream_host = *chosen.lock();
            cluster_stats
                .rq_timeout
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Stats::record_upstream_response(&cluster_stats, 504);
            return finish_local(
                LocalReply::timeout(),
                log,
                downstream,
                Some(&downstream_stats),
            );
        }
        Err(ForwardError::Upstream(error)) => {
            let reply = LocalReply::upstream_failure(&error);
            if matches!(error, UpstreamError::UnknownCluster(_)) {
                return finish_local(reply, log, downstream, Some(&downstream_stats));
            }
            Stats::record_upstream_response(&cluster_stats, reply.status.as_u16());
            return finish_local(reply, log, downstream, Some(&downstream_stats));
        }
    };
    context.record_activity();
    let service_time = started.elapsed();
    log.upstream_host = Some(info.address);
    log.upstream_service_time = Some(service_time.as_millis());
    log.response_code = response.status().as_u16();
    log.response_code_details = "via_upstream";
    Stats::record_upstream_response(&cluster_stats, log.response_code);
    Stats::record_downstream_response(&downstream_stats, log.response_code);
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    parts.headers.insert(
        HeaderName::from_static("x-envoy-upstream-service-time"),
        HeaderValue::from(u64::try_from(service_time.as_millis()).unwrap_or(u64::MAX)),
    );
    for name in &route.response_headers_to_remove {
        parts.headers.remove(name.as_str());
    }
    for add in &route.response_headers_to_add {
        if add.overwrite {
            parts.headers.insert(add.name.clone(), add.value.clone());
        } else {
            parts.headers.append(add.name.clone(), add.value.clone());
        }
    }
    let body = CountingBody {
        inner: body,
        stats: cluster_stats,
    };
    finish(Response::from_parts(parts, body.boxed()), log, downstream)
}

/// The address an explicit-proxy request names (`host[:port]`, port 80 by
/// default), for the passthrough cluster.
async fn resolve_authority(
    context: &ProxyContext,
    authority: &str,
) -> Result<SocketAddr, UpstreamError> {
    let uri: http::uri::Authority = authority.parse().map_err(|_| {
        UpstreamError::NoHealthyUpstream(format!("invalid authority {authority:?}"))
    })?;
    let host = uri.host().trim_start_matches('[').trim_end_matches(']');
    let ip = match host.parse() {
        Ok(ip) => ip,
        Err(_) => context.upstreams.resolve(host).await?,
    };
    Ok(SocketAddr::new(ip, uri.port_u16().unwrap_or(80)))
}

/// The upstream request's path: the downstream one (shared, not copied),
/// or the route's `prefix_rewrite` applied to the matched prefix.
fn rewrite_path(path: Option<&PathAndQuery>, route: &Route, forward: &Forward) -> PathAndQuery {
    let root = || PathAndQuery::from_static("/");
    let Some(rewrite) = &forward.prefix_rewrite else {
        return path
            .filter(|p| !p.as_str().is_empty())
            .cloned()
            .unwrap_or_else(root);
    };
    let path = path.map_or("", PathAndQuery::as_str);
    let rewritten = match &route.matcher.path {
        PathMatch::Prefix(prefix) if path.starts_with(prefix.as_str()) => {
            format!("{rewrite}{}", &path[prefix.len()..])
        }
        _ => rewrite.clone(),
    };
    PathAndQuery::try_from(rewritten).unwrap_or_else(|_| root())
}

/// Counts response bytes received from the upstream.
struct CountingBody {
    inner: Incoming,
    stats: Arc<ClusterStats>,
}

impl Body for CountingBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            self.stats
                .bytes_received
                .fetch_add(data.len() as u64, std::sync::atomic::Ordering::Relaxed);
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

/// Writes the access log when the response body has been sent.
struct LoggedBody {
    inner: ResponseBody,
    log: Option<AccessLog>,
}

impl Body for LoggedBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(data), Some(log)) = (frame.data_ref(), self.log.as_mut()) {
                    log.bytes_sent += data.len() as u64;
                }
            }
            Poll::Ready(None) | Poll::Ready(Some(Err(_))) => {
                if let Some(log) = self.log.take() {
                    log.emit();
                }
            }
            Poll::Pending => {}
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

impl Drop for LoggedBody {
    fn drop(&mut self) {
        if let Some(log) = self.log.take() {
            log.emit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_uuid_v4() {
        let (a, b) = (0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210);
        let expected = format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            (a >> 32) as u32,
            (a >> 16) as u16,
            a as u16 & 0x0fff,
            ((b >> 48) as u16 & 0x3fff) | 0x8000,
            b & 0xffff_ffff_ffff
        );
        assert_eq!(std::str::from_utf8(&uuid_v4(a, b)).unwrap(), expected);
        assert_eq!(expected, "01234567-89ab-4def-bedc-ba9876543210");
        let id = request_id();
        let id = id.to_str().unwrap();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
    }
}
