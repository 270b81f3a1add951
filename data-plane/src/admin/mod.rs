//! The admin interface (`--admin-addr`, default 127.0.0.1:15000), with
//! Envoy's paths and answers so habits and scripts carry over (the list
//! is `/help`'s, in `endpoints.rs`; a mutating path takes POST only), and
//! the scrape and status ports that serve a few of its paths
//! (`surface.rs`). They run on a thread of their own, apart from xDS and
//! the proxy workers (see `cli/proxy.rs`).

pub mod certs;
pub mod config_dump;
mod drain;
mod endpoints;
mod listeners;
pub mod logging;
pub(crate) mod stats_text;
mod surface;

use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

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
use shared::accept::AcceptFailures;
pub use surface::Surface;

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

/// Applies `EnvFilter` directives (`debug,hyper=warn`), for `/logging`.
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
    /// `/logging`: the levels and the hook that applies them.
    pub logging: logging::Logging,
    /// Notified by `/quitquitquit`: the server drains and exits, as on
    /// SIGTERM.
    pub quit: Arc<tokio::sync::Notify>,
    /// The server's drain (`/drain_listeners`, SIGTERM).
    pub drain: Arc<ServerDrain>,
    /// The config dumps in progress.
    pub dumps: Arc<Dumps>,
    /// What a failed accept does, shared with the proxy's listeners: out
    /// of file descriptors, a new connection is closed at once with the
    /// reserve descriptor rather than retried.
    pub accept_failures: Arc<AcceptFailures>,
}

impl Admin {
    /// Serves `surface`'s paths on `listener` until the process exits.
    pub async fn serve(self: Arc<Self>, listener: TcpListener, surface: Surface) {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(error) => {
                    self.accept_failures
                        .handle(&listener, surface.name(), error)
                        .await;
                    continue;
                }
            };
            let admin = self.clone();
            let closed = self.accept_failures.clone();
            let quit = self.quit.clone();
            tokio::spawn(async move {
                let quit_asked = Arc::new(AtomicBool::new(false));
                let asked = quit_asked.clone();
                let service = service_fn(move |req: Request<Incoming>| {
                    let admin = admin.clone();
                    let asked = asked.clone();
                    async move { Ok::<_, Infallible>(admin.respond(&req, surface, &asked)) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
                closed.connection_closed();
                // `/quitquitquit` answered with `Connection: close`: the
                // server stops once that answer has left, as Envoy's does.
                if quit_asked.load(Ordering::Relaxed) {
                    quit.notify_one();
                }
            });
        }
    }

    /// The answer to `req`; a `/quitquitquit` sets `quit_asked`, for the
    /// connection to stop the server once it has sent the answer.
    fn respond(
        &self,
        req: &Request<Incoming>,
        surface: Surface,
        quit_asked: &AtomicBool,
    ) -> Response<Body> {
        let query = req.uri().query().unwrap_or_default();
        let path = req.uri().path();
        if !surface.serves(path) {
            return text(StatusCode::NOT_FOUND, "404 page not found\n".into());
        }
        let Some(endpoint) = endpoints::find(path) else {
            let help = endpoints::help();
            return text(StatusCode::NOT_FOUND, format!("invalid path. {help}"));
        };
        if let Some((status, body)) = endpoints::refuse(endpoint, req.method()) {
            return text(status, body);
        }
        match path {
            "/ready" => match self.state() {
                "LIVE" => text(StatusCode::OK, "LIVE\n".into()),
                state => text(StatusCode::SERVICE_UNAVAILABLE, format!("{state}\n")),
            },
            "/healthz/ready" => match self.state() {
                "LIVE" => text(StatusCode::OK, String::new()),
                _ => text(StatusCode::SERVICE_UNAVAILABLE, String::new()),
            },
            "/drain_listeners" => {
                let (status, body) = drain::drain_listeners(&self.drain, query);
                text(status, body)
            }
            "/quitquitquit" => {
                tracing::info!("/quitquitquit: draining, then exiting");
                quit_asked.store(true, Ordering::Relaxed);
                let mut response = text(StatusCode::OK, "OK\n".into());
                response.headers_mut().insert(
                    header::CONNECTION,
                    header::HeaderValue::from_static("close"),
                );
                response
            }
            "/config_dump" => {
                let body = config_dump::stream(self.store.clone(), self.dumps.clone());
                with_content_type(BoxBody::new(body), "application/json")
            }
            "/clusters" => text(StatusCode::OK, self.clusters()),
            "/certs" => json_response(&certs::render(&self.store, std::time::SystemTime::now())),
            "/stats/prometheus" => text(StatusCode::OK, self.prometheus()),
            "/stats" => self.stats(query),
            "/listeners" => {
                let config = self.store.load();
                let listeners = listeners::of(&config);
                if param(query, "format") == Some("json") {
                    json_response(&listeners::json(&listeners))
                } else {
                    text(StatusCode::OK, listeners::text(&listeners))
                }
            }
            "/logging" => {
                let (status, body) = self.logging.handle(query);
                text(status, body)
            }
            "/server_info" => json_response(&serde_json::json!({
                "version": env!("CARGO_PKG_VERSION"),
                "state": self.state(),
            })),
            // `/help`, the one path left.
            _ => text(StatusCode::OK, endpoints::help()),
        }
    }

    /// Every series, in Prometheus text.
    fn prometheus(&self) -> String {
        let mut out = String::new();
        self.stats.render(&mut out);
        self.upstreams.render_stats(&mut out);
        self.xds_stats.render_prometheus(&mut out);
        self.access_log_stats.render_prometheus(&mut out);
        self.dumps.render_prometheus(&mut out);
        out
    }

    /// `/stats`: Envoy's text, or `format=json` / `format=prometheus`,
    /// the names matching `filter` (a regular expression) only.
    fn stats(&self, query: &str) -> Response<Body> {
        let filter = match param(query, "filter").map(percent_decoded) {
            Some(filter) => match regex::Regex::new(&filter) {
                Ok(regex) => Some(regex),
                Err(error) => {
                    return text(
                        StatusCode::BAD_REQUEST,
                        format!("Invalid re2 regex: {error}\n"),
                    );
                }
            },
            None => None,
        };
        let format = param(query, "format").unwrap_or("text");
        if format == "prometheus" {
            return text(StatusCode::OK, self.prometheus());
        }
        let stats = stats_text::parse(&self.prometheus(), filter.as_ref());
        match format {
            "json" => json_response(&stats_text::json(&stats)),
            "text" => text(StatusCode::OK, stats_text::text(&stats)),
            other => text(
                StatusCode::BAD_REQUEST,
                format!("usage: /stats?format=(text|json|prometheus): unknown format {other:?}\n"),
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
                let flags = match (host.ejected, host.eds_unhealthy) {
                    (false, false) => "healthy",
                    (true, false) => "/failed_outlier_check",
                    (false, true) => "/failed_eds_health",
                    (true, true) => "/failed_outlier_check/failed_eds_health",
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

/// The value of `name` in `query`.
fn param<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then_some(value)
    })
}

/// `%XX` escapes decoded (`+` kept: a regular expression's own).
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn json_response(value: &serde_json::Value) -> Response<Body> {
    let body = serde_json::to_string_pretty(value).unwrap_or_default();
    with_content_type(whole(body), "application/json")
}
