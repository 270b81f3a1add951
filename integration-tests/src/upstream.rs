//! An httpbin-like "external" service on loopback, over HTTP/1.1 or HTTPS
//! (certificate from a [`TestCa`], ALPN `http/1.1`). It records every
//! request, and every TLS ClientHello's SNI, so tests can assert what the
//! upstream saw.
//!
//! Routes: `GET /headers` echoes the request headers as
//! `{"headers": {...}}` with httpbin's capitalization
//! (`X-Envoy-Decorator-Operation`); `/delay/N` answers 200 after N seconds
//! (at most 10); `/status/N` answers status N; `/politics` and anything else
//! answer 200 with a small body. A WebSocket handshake on any path is
//! answered as [`crate::websocket`] says.
//!
//! A named upstream ([`Upstream::named_on`]) stands for one endpoint of a
//! service with several: every response carries its name in
//! [`UPSTREAM_NAME_HEADER`], and it can be told to fail ([`Failing`]).
//! Every request's body is read whole before it is answered, and recorded
//! by length and hash.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context, Result};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rustls::ServerConfig;
use rustls::server::Acceptor;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::LazyConfigAcceptor;

use crate::background::ServerThread;
use crate::tls::TestCa;
use crate::websocket;

/// The longest `/delay/N` sleeps, as httpbin.
const MAX_DELAY_SECS: u64 = 10;
/// The response header a named upstream says its name in.
pub const UPSTREAM_NAME_HEADER: &str = "x-upstream";

/// Whether a named upstream answers its requests or fails them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Failing {
    /// Every request is answered as its path says.
    #[default]
    Never,
    /// Every request is answered with this status.
    Always(u16),
    /// The next `count` requests are answered with `status`, the ones
    /// after as their path says.
    Next { count: u32, status: u16 },
    /// The next `count` requests are refused: an HTTP/2 stream is reset
    /// with `REFUSED_STREAM`, an HTTP/1.1 connection closed.
    RefuseNext(u32),
    /// The next `count` requests are reset: an HTTP/2 stream with
    /// `INTERNAL_ERROR`, an HTTP/1.1 connection closed.
    ResetNext(u32),
}

/// How one request fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    Status(u16),
    Reset(h2::Reason),
}

impl Failing {
    /// How to fail the next request, if at all; counts it down.
    fn take(&mut self) -> Option<Failure> {
        let (count, failure) = match *self {
            Failing::Never => return None,
            Failing::Always(status) => return Some(Failure::Status(status)),
            Failing::Next { count, status } => (count, Failure::Status(status)),
            Failing::RefuseNext(count) => (count, Failure::Reset(h2::Reason::REFUSED_STREAM)),
            Failing::ResetNext(count) => (count, Failure::Reset(h2::Reason::INTERNAL_ERROR)),
        };
        let left = count.saturating_sub(1);
        *self = match *self {
            _ if left == 0 => Failing::Never,
            Failing::Next { status, .. } => Failing::Next {
                count: left,
                status,
            },
            Failing::RefuseNext(_) => Failing::RefuseNext(left),
            _ => Failing::ResetNext(left),
        };
        (count > 0).then_some(failure)
    }
}

/// One request as the upstream received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Header names as received on the wire, lowercased.
    pub headers: Vec<(String, String)>,
    /// The connection's client address.
    pub peer: SocketAddr,
    /// The SNI of the TLS connection that carried the request.
    pub sni: Option<String>,
    /// The HTTP version it came in (`HTTP/1.1`, `HTTP/2`).
    pub version: String,
    /// Whether that connection's client presented a certificate (verified
    /// by the test CA; see [`Upstream::https_asking_client_certs_on`]).
    pub client_cert: bool,
    /// The length of the request body, and a hash of its bytes.
    pub body_len: usize,
    pub body_hash: u64,
}

impl RecordedRequest {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// One TLS connection's ClientHello, recorded even when the handshake
/// then fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsHello {
    pub peer: SocketAddr,
    pub sni: Option<String>,
}

#[derive(Default)]
struct Recorder {
    requests: Mutex<Vec<RecordedRequest>>,
    hellos: Mutex<Vec<TlsHello>>,
    /// A named upstream's name, sent in [`UPSTREAM_NAME_HEADER`].
    name: Option<String>,
    failing: Mutex<Failing>,
}

/// An HTTPS upstream's configurations: its own, and the one it answers
/// a ClientHello for one of `client_auth_names` with.
#[derive(Clone)]
struct TlsConfigs {
    default: Arc<ServerConfig>,
    client_auth_names: Vec<String>,
    client_auth: Arc<ServerConfig>,
}

impl TlsConfigs {
    fn for_sni(&self, sni: Option<&str>) -> Arc<ServerConfig> {
        match sni {
            Some(name) if self.client_auth_names.iter().any(|wanted| wanted == name) => {
                Arc::clone(&self.client_auth)
            }
            _ => Arc::clone(&self.default),
        }
    }
}

/// A running upstream; stops (and closes its port) on drop.
pub struct Upstream {
    addr: SocketAddr,
    scheme: &'static str,
    recorder: Arc<Recorder>,
    _server: ServerThread,
}

impl Upstream {
    /// Plain HTTP on `127.0.0.1:<free port>`.
    pub fn http() -> Result<Self> {
        Self::http_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
    }

    /// Plain HTTP on `addr`.
    pub fn http_on(addr: SocketAddr) -> Result<Self> {
        Self::start(addr, None, None)
    }

    /// Plain HTTP on `addr`, each response saying `name` in
    /// [`UPSTREAM_NAME_HEADER`].
    pub fn named_on(addr: SocketAddr, name: &str) -> Result<Self> {
        Self::start(addr, None, Some(name))
    }

    /// HTTPS on `addr` with a certificate for `names` signed by `ca`, each
    /// response saying `name` in [`UPSTREAM_NAME_HEADER`].
    pub fn named_https_on(
        addr: SocketAddr,
        name: &str,
        ca: &TestCa,
        names: &[&str],
    ) -> Result<Self> {
        Self::start(addr, Some(Self::tls(ca, names, &[])?), Some(name))
    }

    /// HTTPS on `127.0.0.1:<free port>` with a certificate for `names`
    /// signed by `ca`.
    pub fn https(ca: &TestCa, names: &[&str]) -> Result<Self> {
        Self::https_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), ca, names)
    }

    /// HTTPS on `addr` with a certificate for `names` signed by `ca`.
    pub fn https_on(addr: SocketAddr, ca: &TestCa, names: &[&str]) -> Result<Self> {
        Self::https_asking_client_certs_on(addr, ca, names, &[])
    }

    /// Like [`Upstream::https_on`]; a ClientHello for one of
    /// `client_auth_names` is also asked for a client certificate signed by
    /// `ca` ([`TestCa::client_auth_server_config`]), and each request
    /// records whether one came ([`RecordedRequest::client_cert`]).
    pub fn https_asking_client_certs_on(
        addr: SocketAddr,
        ca: &TestCa,
        names: &[&str],
        client_auth_names: &[&str],
    ) -> Result<Self> {
        Self::start(addr, Some(Self::tls(ca, names, client_auth_names)?), None)
    }

    fn tls(ca: &TestCa, names: &[&str], client_auth_names: &[&str]) -> Result<TlsConfigs> {
        let alpn: &[&[u8]] = &[b"http/1.1"];
        Ok(TlsConfigs {
            default: ca.server_config(names, alpn)?,
            client_auth_names: client_auth_names.iter().map(ToString::to_string).collect(),
            client_auth: ca.client_auth_server_config(names, alpn)?,
        })
    }

    fn start(addr: SocketAddr, tls: Option<TlsConfigs>, name: Option<&str>) -> Result<Self> {
        let listener =
            std::net::TcpListener::bind(addr).with_context(|| format!("binding {addr}"))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let recorder = Arc::new(Recorder {
            name: name.map(str::to_string),
            ..Recorder::default()
        });
        let server_recorder = Arc::clone(&recorder);
        let server = ServerThread::spawn(&format!("upstream-{addr}"), move || async move {
            match TcpListener::from_std(listener) {
                Ok(listener) => accept_loop(listener, tls, server_recorder).await,
                Err(err) => eprintln!("upstream {addr}: {err}"),
            }
        })?;
        Ok(Self {
            addr,
            scheme,
            recorder,
            _server: server,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `<scheme>://<host>:<port><path>`, for a client that resolves `host`
    /// to this upstream (`curl --resolve`, a proxy, the test DNS).
    pub fn url(&self, host: &str, path: &str) -> String {
        format!("{}://{host}:{}{path}", self.scheme, self.port())
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.recorder.requests).clone()
    }

    /// Every TLS ClientHello received so far, oldest first (empty for HTTP).
    pub fn tls_hellos(&self) -> Vec<TlsHello> {
        lock(&self.recorder.hellos).clone()
    }

    /// Answers from now on as `failing` says.
    pub fn fail(&self, failing: Failing) {
        *lock(&self.recorder.failing) = failing;
    }
}

async fn accept_loop(listener: TcpListener, tls: Option<TlsConfigs>, recorder: Arc<Recorder>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                eprintln!("upstream accept: {err}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let recorder = Arc::clone(&recorder);
        let tls = tls.clone();
        tokio::spawn(async move {
            let Some(configs) = tls else {
                serve_connection(stream, peer, None, false, recorder).await;
                return;
            };
            let Ok(start) = LazyConfigAcceptor::new(Acceptor::default(), stream).await else {
                return;
            };
            let sni = start.client_hello().server_name().map(str::to_string);
            lock(&recorder.hellos).push(TlsHello {
                peer,
                sni: sni.clone(),
            });
            let config = configs.for_sni(sni.as_deref());
            if let Ok(stream) = start.into_stream(config).await {
                let client_cert = stream.get_ref().1.peer_certificates().is_some();
                serve_connection(stream, peer, sni, client_cert, recorder).await;
            }
        });
    }
}

async fn serve_connection<S>(
    stream: S,
    peer: SocketAddr,
    sni: Option<String>,
    client_cert: bool,
    recorder: Arc<Recorder>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |mut request: Request<Incoming>| {
        let recorder = Arc::clone(&recorder);
        let sni = sni.clone();
        async move {
            let upgrade = hyper::upgrade::on(&mut request);
            let (parts, body) = request.into_parts();
            // A body cut short is recorded as far as it came.
            let body = body.collect().await.map(|body| body.to_bytes());
            let body = body.unwrap_or_default();
            let recorded = record(&parts, &body, peer, sni, client_cert);
            lock(&recorder.requests).push(recorded.clone());
            let failure = lock(&recorder.failing).take();
            let mut response = match failure {
                Some(Failure::Reset(reason)) => return Err(h2::Error::from(reason)),
                Some(Failure::Status(status)) => with_status(text("failing\n"), status),
                None => match websocket::answer(&parts.headers, upgrade) {
                    Some(response) => response,
                    None => respond(&recorded).await,
                },
            };
            if let Some(name) = &recorder.name
                && let Ok(value) = HeaderValue::from_str(name)
            {
                response.headers_mut().insert(UPSTREAM_NAME_HEADER, value);
            }
            Ok(response)
        }
    });
    // A client that goes away mid-request is not the upstream's problem.
    let _ = auto::Builder::new(TokioExecutor::new())
        .serve_connection_with_upgrades(TokioIo::new(stream), service)
        .await;
}

fn record(
    request: &hyper::http::request::Parts,
    body: &Bytes,
    peer: SocketAddr,
    sni: Option<String>,
    client_cert: bool,
) -> RecordedRequest {
    RecordedRequest {
        method: request.method.to_string(),
        path: request
            .uri
            .path_and_query()
            .map_or_else(|| "/".to_string(), ToString::to_string),
        headers: request
            .headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_string(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
        peer,
        sni,
        version: format!("{:?}", request.version),
        client_cert,
        body_len: body.len(),
        body_hash: body_hash(body),
    }
}

async fn respond(recorded: &RecordedRequest) -> Response<Full<Bytes>> {
    let path = recorded.path.split('?').next().unwrap_or_default();
    if path == "/headers" {
        json(&headers_body(recorded))
    } else if let Some(secs) = path.strip_prefix("/delay/") {
        let secs = secs.parse::<u64>().unwrap_or(0).min(MAX_DELAY_SECS);
        tokio::time::sleep(Duration::from_secs(secs)).await;
        json(&headers_body(recorded))
    } else if let Some(code) = path.strip_prefix("/status/") {
        with_status(text(""), code.parse().unwrap_or(400))
    } else if path == "/politics" {
        text("<html><body>politics</body></html>\n")
    } else {
        text("ok\n")
    }
}

/// The hash a request body is recorded by ([`RecordedRequest::body_hash`]).
pub fn body_hash(body: &[u8]) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    body.hash(&mut hasher);
    hasher.finish()
}

/// `{"headers": {...}}` with httpbin's names; repeated headers are joined
/// with commas.
fn headers_body(request: &RecordedRequest) -> serde_json::Value {
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in &request.headers {
        headers
            .entry(canonical_header_name(name))
            .and_modify(|joined| {
                joined.push(',');
                joined.push_str(value);
            })
            .or_insert_with(|| value.clone());
    }
    serde_json::json!({ "headers": headers })
}

/// `x-envoy-decorator-operation` → `X-Envoy-Decorator-Operation`.
fn canonical_header_name(name: &str) -> String {
    name.split('-')
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + &chars.as_str().to_ascii_lowercase()
            })
        })
        .collect::<Vec<_>>()
        .join("-")
}

fn json(value: &serde_json::Value) -> Response<Full<Bytes>> {
    let mut body = serde_json::to_string_pretty(value).unwrap_or_default();
    body.push('\n');
    with_type(body, "application/json")
}

fn text(body: &str) -> Response<Full<Bytes>> {
    with_type(body.to_string(), "text/html; charset=utf-8")
}

fn with_type(body: String, content_type: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// `response` with `status` (400 for a number that is no status).
fn with_status(mut response: Response<Full<Bytes>>, status: u16) -> Response<Full<Bytes>> {
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    response
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::{Failing, Failure, canonical_header_name};

    #[test]
    fn failing_next_counts_down_then_answers() {
        let mut failing = Failing::Next {
            count: 2,
            status: 503,
        };
        assert_eq!(failing.take(), Some(Failure::Status(503)));
        assert_eq!(failing.take(), Some(Failure::Status(503)));
        assert_eq!(failing.take(), None);
        assert_eq!(failing, Failing::Never);
        let mut always = Failing::Always(500);
        assert_eq!(
            (always.take(), always.take()),
            (Some(Failure::Status(500)), Some(Failure::Status(500)))
        );
        let mut refusing = Failing::RefuseNext(1);
        assert_eq!(
            refusing.take(),
            Some(Failure::Reset(h2::Reason::REFUSED_STREAM))
        );
        assert_eq!(refusing.take(), None);
        let mut resetting = Failing::ResetNext(2);
        resetting.take();
        assert_eq!(
            resetting.take(),
            Some(Failure::Reset(h2::Reason::INTERNAL_ERROR))
        );
        assert_eq!(resetting, Failing::Never);
    }

    #[test]
    fn header_names_are_capitalized_like_httpbin() {
        assert_eq!(
            canonical_header_name("x-envoy-decorator-operation"),
            "X-Envoy-Decorator-Operation"
        );
        assert_eq!(canonical_header_name("host"), "Host");
        assert_eq!(canonical_header_name("user-agent"), "User-Agent");
    }
}
