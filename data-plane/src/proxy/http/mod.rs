//! The HTTP connection manager: serves HTTP/1.1 and h2c downstream, plans
//! each request by the route configuration, forwards it upstream with the
//! route's timeout and retries, and logs it.

pub(crate) mod authority;
mod body;
mod cors;
mod drain;
mod exchange;
mod fault;
mod filters;
mod forward;
mod hashing;
mod headers;
mod mirror;
mod plan;
mod replay;
mod request_end;
mod request_id;
mod retry;
mod router_headers;
mod routes;
mod timeouts;
mod upgrade;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http::{Request, Response, header};
use http_body::Body as _;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::model::http_filters::HttpFilter;
use crate::model::http_timeouts::HttpTimeouts;
use crate::model::path_normalization::{InvalidPath, PathNormalization};
use crate::model::route::{RouteAction, RouteConfig};
use crate::model::server_header::SharedServerHeader;
use crate::model::upgrade::UpgradeConfigs;
use crate::upstream;

use super::respond::LocalReply;
use super::stats::DownstreamStats;
use super::{ProxyContext, fast_random};
use crate::access_log_service::LogTargets;
use drain::HttpDrain;
use exchange::Exchange;
use filters::Stop;
use plan::{Action, Draws};
use timeouts::{HeadTimeoutIo, RequestBody, Streams, TimedResponse};

pub type ResponseBody = upstream::Body;
pub use timeouts::explicit_proxy_timeouts;

/// Where a connection's requests find their routes.
#[derive(Debug, Clone)]
pub enum RouteSource {
    /// The route configuration of the filter chain that took the connection.
    Chain {
        route_config_name: Arc<str>,
        inline: Option<Arc<RouteConfig>>,
        stat_prefix: Arc<str>,
        /// The HTTP filters of the chain's connection manager.
        http_filters: Arc<[HttpFilter]>,
        /// The connection manager's `use_remote_address`.
        use_remote_address: bool,
        /// What the connection manager does to request paths first.
        path_normalization: PathNormalization,
        /// The `server` header of the connection manager's responses.
        server_header: SharedServerHeader,
        /// Its router's `suppress_envoy_headers`.
        suppress_envoy_headers: bool,
        /// The upgrade types the connection manager allows.
        upgrades: UpgradeConfigs,
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
    /// Where its requests are logged: the chain's HTTP connection
    /// manager's loggers (in explicit proxy mode, a request whose route
    /// table has a gRPC logger of its own is logged there).
    pub targets: Arc<LogTargets>,
    /// The client's SPIFFE id, when it authenticated with a mesh certificate.
    pub peer_identity: Option<Arc<str>>,
    /// The SNI the client sent (TLS-terminated connections).
    pub server_name: Option<Arc<str>>,
    /// The proxy terminated TLS on the connection.
    pub tls: bool,
    /// The connection manager's request head, stream and connection
    /// timeouts.
    pub timeouts: HttpTimeouts,
}

/// Serves HTTP on an accepted connection until it closes, or until one of
/// the connection manager's timeouts ends it.
pub async fn serve<IO>(io: IO, context: Arc<ProxyContext>, downstream: Arc<Downstream>)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let timeouts = downstream.timeouts;
    let stats = match &downstream.source {
        RouteSource::Chain { stat_prefix, .. } => Some(context.stats.downstream(stat_prefix)),
        RouteSource::ExplicitProxy { .. } => None,
    };
    let streams = Streams::new();
    let io = HeadTimeoutIo::new(
        io,
        timeouts.request_headers,
        streams.clone(),
        timeouts::on_head_timeout(&downstream, stats.clone()),
    );
    let http_drain = Arc::new(HttpDrain::current());
    let requests = http_drain.clone();
    let service_streams = streams.clone();
    let service_stats = stats.clone();
    let service = service_fn(move |mut req: Request<Incoming>| {
        let stream = service_streams.open();
        upgrade::hold_stream(&mut req, || service_streams.open());
        let close = requests.on_request(req.version());
        let context = context.clone();
        let downstream = downstream.clone();
        let stats = service_stats.clone();
        async move {
            let (mut response, activity) =
                handle_timed(req, &context, &downstream, stats.as_ref()).await;
            if close && response.status() != http::StatusCode::SWITCHING_PROTOCOLS {
                drain::close_after(&mut response);
            }
            let timers = activity.map(|activity| (downstream.timeouts, activity));
            Ok::<_, Infallible>(
                response.map(|body| TimedResponse::new(body, stream, timers, stats)),
            )
        }
    });
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    let mut connection =
        std::pin::pin!(builder.serve_connection_with_upgrades(TokioIo::new(io), service));
    let served = tokio::select! {
        served = connection.as_mut() => served,
        () = http_drain.shutdown_due() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
        shutdown = timeouts::due(&streams, &timeouts) => {
            timeouts::count_shutdown(shutdown, stats.as_deref());
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = served {
        tracing::debug!(%error, "downstream HTTP connection ended with an error");
    }
}

/// Answers one request under the connection manager's stream timeouts: a
/// timeout that runs out before the response starts is answered as Envoy
/// answers it. Also gives the stream's timers, for its response body.
async fn handle_timed(
    req: Request<Incoming>,
    context: &ProxyContext,
    downstream: &Downstream,
    stats: Option<&Arc<DownstreamStats>>,
) -> (Response<ResponseBody>, Option<Arc<timeouts::Activity>>) {
    let Some(activity) = timeouts::activity(&downstream.timeouts, req.body().is_end_stream())
    else {
        let req = req.map(|body| RequestBody::new(body, None));
        return (handle(req, context, downstream).await, None);
    };
    let logged = logged_head(&req);
    let req = req.map(|body| RequestBody::new(body, Some(activity.clone())));
    let response = tokio::select! {
        response = handle(req, context, downstream) => response,
        expired = timeouts::expiry(&downstream.timeouts, &activity) => {
            tracing::debug!(%expired, "answering the request");
            let mut exchange = Exchange::start(context, downstream, &logged, 0);
            if let Some(stats) = stats {
                expired.count(&stats.timeouts);
                exchange.stats = Some(stats.clone());
            }
            exchange.reply(expired.reply(activity.request_complete()))
        }
    };
    (response, Some(activity))
}

/// What the access log needs of a request's head, kept for a request a
/// stream timeout may answer.
fn logged_head<B>(req: &Request<B>) -> http::request::Parts {
    let mut logged = Request::new(());
    *logged.method_mut() = req.method().clone();
    *logged.uri_mut() = req.uri().clone();
    *logged.version_mut() = req.version();
    for name in [
        header::HOST,
        header::USER_AGENT,
        http::HeaderName::from_static("x-forwarded-for"),
    ] {
        if let Some(value) = req.headers().get(&name) {
            logged.headers_mut().insert(name, value.clone());
        }
    }
    logged.into_parts().0
}

/// Answers one request, on one load of the running config.
async fn handle(
    req: Request<RequestBody<Incoming>>,
    context: &ProxyContext,
    downstream: &Downstream,
) -> Response<ResponseBody> {
    context.record_activity();
    let config = context.store.load();
    let (mut head, body) = req.into_parts();
    let upgrade = upgrade::UpgradeRequest::take(&mut head);
    let bytes_received = body.size_hint().exact().unwrap_or(0);
    let mut exchange = Exchange::start(context, downstream, &head, bytes_received);
    if let RouteSource::Chain { server_header, .. } = &downstream.source {
        exchange.server_header = server_header.clone();
    }
    let port = match authority::check(&downstream.source, exchange.log.authority.as_ref()) {
        Ok(port) => port,
        Err(invalid) => return exchange.reply(invalid.reply()),
    };
    let Some(table) = routes::route_table(&config, downstream, port) else {
        return exchange.reply(LocalReply::no_route());
    };
    exchange.server_header = table.server_header.clone();
    exchange.suppress_envoy_headers = table.suppress_envoy_headers;
    if normalize_path(&mut head, table.path_normalization).is_err() {
        return exchange.reply(LocalReply::path_normalization_failed());
    }
    exchange.log.path = head.uri.path_and_query().cloned();
    exchange.stats = Some(context.stats.downstream(&table.stat_prefix));
    if let Some(logger) = &table.grpc_access_log {
        exchange.targets = Arc::new(
            downstream
                .targets
                .with_grpc(logger, context.access_log_service.as_ref()),
        );
    }
    let filter_request = filters::FilterRequest::read(&table.http_filters, &head);
    let request = plan::Request {
        head,
        authority: exchange.log.authority.clone(),
        original_dst: table.original_dst,
        tls: downstream.tls,
        use_remote_address: table.use_remote_address,
        suppress_envoy_headers: table.suppress_envoy_headers,
    };
    let draws = Draws {
        cluster_roll: fast_random(),
        request_id: request_id::new,
    };
    let plan = plan::plan(&table.routes, &config, request, draws);
    exchange.log.route_name = plan.route.map(|route| route.name.clone());
    exchange.log.egress_policy = plan.route.and_then(|route| route.egress_policy);
    exchange.log.upstream_cluster = plan.cluster;
    let upgrade = match upgrade {
        Some(request) if !request.allowed(&table.upgrades, plan.route) => {
            let stats = exchange.stats.clone();
            return upgrade::refuse(exchange, stats.as_deref());
        }
        Some(request) => {
            Some(request.start(exchange.stats.clone(), downstream.timeouts.stream_idle))
        }
        None => None,
    };
    if let Some(filter_request) = &filter_request
        && let Some(stop) = filters::decode(
            &table.http_filters,
            plan.route,
            filter_request,
            &mut exchange,
        )
        .await
    {
        exchange.log.request_id = plan.head.headers.get("x-request-id").cloned();
        return match stop {
            Stop::Reply(reply) => exchange.reply(reply),
            Stop::Respond(response) => exchange.respond(response),
        };
    }
    match plan.action {
        Action::Forward(forwarding) => {
            let body = match &forwarding.route.action {
                RouteAction::Forward(route) => mirror::start(
                    context,
                    &route.mirrors,
                    &plan.head,
                    body.boxed(),
                    forwarding.timeout,
                ),
                _ => body.boxed(),
            };
            forward::forward(exchange, forwarding, plan.head, body, upgrade).await
        }
        Action::Redirect { status, location } => {
            let mut response = Response::new(upstream::empty_body());
            *response.status_mut() = status;
            if let Some(location) = location {
                response.headers_mut().insert(header::LOCATION, location);
            }
            exchange.log.response_code_details = "direct_response";
            exchange.respond(response)
        }
        Action::Reply(reply) => {
            exchange.log.request_id = plan.head.headers.get("x-request-id").cloned();
            exchange.reply(reply)
        }
    }
}

/// The request's path as its connection manager passes it on, before its
/// filters and routes see it.
fn normalize_path(
    head: &mut http::request::Parts,
    settings: PathNormalization,
) -> Result<(), InvalidPath> {
    if !settings.is_active() {
        return Ok(());
    }
    let Some(path) = head.uri.path_and_query() else {
        return Ok(());
    };
    let Some(normalized) = settings.apply(path.as_str())? else {
        return Ok(());
    };
    let mut parts = head.uri.clone().into_parts();
    parts.path_and_query = Some(normalized.parse().map_err(|_| InvalidPath)?);
    head.uri = http::Uri::from_parts(parts).map_err(|_| InvalidPath)?;
    Ok(())
}

#[cfg(test)]
mod tests;
