//! The admin interface (`--admin-addr`, default 127.0.0.1:15000), with
//! Envoy's paths so habits carry over: `/ready`, `/config_dump`,
//! `/clusters`, `/certs`, `/stats/prometheus`, `/logging?level=`,
//! `/server_info`, `/drain_listeners` (POST). It runs on a thread of its
//! own, apart from xDS and the proxy workers (see `cli/proxy.rs`).

pub mod certs;
pub mod config_dump;
mod drain;

use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::access_log_service::AccessLogStats;
use crate::proxy::drain::ServerDrain;
use crate::proxy::stats::Stats;
use crate::store::ConfigStore;
use crate::upstream::Upstreams;
use crate::xds::XdsStats;
use config_dump::{DumpError, Dumps};

/// How long the admin listener waits after a failed accept.
const ACCEPT_RETRY: std::time::Duration = std::time::Duration::from_millis(100);

/// An admin response's body: whole, or a config dump streaming.
pub type Body = BoxBody<Bytes, DumpError>;

/// Why the log level could not be changed.
#[derive(Debug, thiserror::Error)]
pub enum LogLevelError {
    #[error("invalid level {level:?}: {source}")]
    Invalid {
        level: String,
        source: tracing_subscriber::filter::ParseError,
    },
    #[error("cannot change the log level: {0}")]
    Reload(#[from] tracing_subscriber::reload::Error),
}

/// Changes the log level (`/logging?level=debug`).
pub type SetLogLevel = Box<dyn Fn(&str) -> Result<(), LogLevelError> + Send + Sync>;

pub struct Admin {
    pub store: Arc<ConfigStore>,
    pub stats: Arc<Stats>,
    pub xds_stats: Arc<XdsStats>,
    /// The access log service client's counters.
    pub access_log_stats: Arc<AccessLogStats>,
    pub upstreams: Arc<Upstreams>,
    /// Config received and listeners bound.
    pub ready: watch::Receiver<bool>,
    pub set_log_level: SetLogLevel,
    /// The server's drain (`/drain_listeners`, SIGTERM).
    pub drain: Arc<ServerDrain>,
    /// The config dumps in progress.
    pub dumps: Arc<Dumps>,
}

impl Admin {
    /// Serves the admin interface on `listener` until the process exits.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors, most likely: wait rather
                    // than spin.
                    tracing::warn!(%error, "admin: accept failed");
                    tokio::time::sleep(ACCEPT_RETRY).await;
                    continue;
                }
            };
            let admin = self.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<Incoming>| {
                    let admin = admin.clone();
                    async move { Ok::<_, Infallible>(admin.respond(&req)) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    }

    fn respond(&self, req: &Request<Incoming>) -> Response<Body> {
        let query = req.uri().query().unwrap_or_default();
        match req.uri().path() {
            "/ready" => match self.state() {
                "LIVE" => text(StatusCode::OK, "LIVE\n".into()),
                state => text(StatusCode::SERVICE_UNAVAILABLE, format!("{state}\n")),
            },
            "/drain_listeners" => {
                let (status, body) = drain::drain_listeners(&self.drain, req.method(), query);
                text(status, body)
            }
            "/config_dump" => {
                let body = config_dump::stream(self.store.clone(), self.dumps.clone());
                with_content_type(BoxBody::new(body), "application/json")
            }
            "/clusters" => text(StatusCode::OK, self.clusters()),
            "/certs" => json_response(&certs::render(&self.store, std::time::SystemTime::now())),
            "/stats/prometheus" | "/stats" => {
                let mut out = String::new();
                self.stats.render(&mut out);
                self.upstreams.render_stats(&mut out);
                self.xds_stats.render_prometheus(&mut out);
                self.access_log_stats.render_prometheus(&mut out);
                self.dumps.render_prometheus(&mut out);
                text(StatusCode::OK, out)
            }
            "/logging" => {
                let level = query.split('&').find_map(|kv| kv.strip_prefix("level="));
                match level {
                    Some(level) => match (self.set_log_level)(level) {
                        Ok(()) => text(StatusCode::OK, format!("log level set to {level}\n")),
                        Err(error) => text(StatusCode::BAD_REQUEST, format!("{error}\n")),
                    },
                    None => text(StatusCode::BAD_REQUEST, "usage: /logging?level=<trace|debug|info|warn|error>\n".into()),
                }
            }
            "/server_info" => {
                json_response(&serde_json::json!({
                    "version": env!("CARGO_PKG_VERSION"),
                    "state": self.state(),
                }))
            }
            _ => text(
                StatusCode::NOT_FOUND,
                "admin paths: /ready /config_dump /clusters /certs /stats/prometheus /logging?level= /server_info /drain_listeners\n".into(),
            ),
        }
    }

    /// Envoy's server state: DRAINING once a drain started, else LIVE
    /// once ready.
    fn state(&self) -> &'static str {
        if self.drain.scope.is_draining() {
            "DRAINING"
        } else if *self.ready.borrow() {
            "LIVE"
        } else {
            "PRE_INITIALIZING"
        }
    }

    /// Envoy's `/clusters` text: `cluster::setting::value` lines (the
    /// default priority's circuit breakers, outlier detection's success
    /// rates, which this agent does not compute: -1), then
    /// `cluster::host::stat::value` lines.
    fn clusters(&self) -> String {
        let mut out = String::new();
        for cluster in self.upstreams.describe() {
            let name = &cluster.name;
            if cluster.outlier_detection {
                for stat in [
                    "success_rate_average",
                    "success_rate_ejection_threshold",
                    "local_origin_success_rate_average",
                    "local_origin_success_rate_ejection_threshold",
                ] {
                    let _ = writeln!(out, "{name}::outlier::{stat}::-1");
                }
            }
            let limits = cluster.breakers.limits;
            for (setting, value) in [
                ("max_connections", limits.max_connections),
                ("max_pending_requests", limits.max_pending_requests),
                ("max_requests", limits.max_requests),
                ("max_retries", limits.max_retries),
            ] {
                let _ = writeln!(out, "{name}::default_priority::{setting}::{value}");
            }
            for host in &cluster.endpoints {
                let address = host.address;
                let _ = writeln!(
                    out,
                    "{name}::{address}::hostname::{}",
                    host.hostname.as_deref().unwrap_or("")
                );
                let _ = writeln!(out, "{name}::{address}::weight::{}", host.weight);
                let _ = writeln!(out, "{name}::{address}::cx_active::{}", host.cx_active);
                let _ = writeln!(out, "{name}::{address}::cx_total::{}", host.cx_total);
                let _ = writeln!(
                    out,
                    "{name}::{address}::cx_connect_fail::{}",
                    host.cx_connect_fail
                );
                let _ = writeln!(out, "{name}::{address}::rq_active::{}", host.rq_active);
                let _ = writeln!(out, "{name}::{address}::rq_error::{}", host.rq_error);
                let _ = writeln!(out, "{name}::{address}::rq_total::{}", host.rq_total);
                let flags = if host.ejected {
                    "/failed_outlier_check"
                } else {
                    "healthy"
                };
                let _ = writeln!(out, "{name}::{address}::health_flags::{flags}");
            }
            if cluster.endpoints.is_empty() {
                let _ = writeln!(out, "{}::no hosts", cluster.name);
            }
        }
        out
    }
}

fn whole(body: String) -> Body {
    Full::new(Bytes::from(body))
        .map_err(|never| match never {})
        .boxed()
}

fn with_content_type(body: Body, content_type: &'static str) -> Response<Body> {
    let mut response = Response::new(body);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    response
}

fn text(status: StatusCode, body: String) -> Response<Body> {
    let mut response = with_content_type(whole(body), "text/plain; charset=UTF-8");
    *response.status_mut() = status;
    response
}

fn json_response(value: &serde_json::Value) -> Response<Body> {
    let body = serde_json::to_string_pretty(value).unwrap_or_default();
    with_content_type(whole(body), "application/json")
}
