//! Connections to one upstream host: TCP connect bounded by the cluster's
//! connect timeout, then TLS when the cluster originates it, pooled by a
//! hyper-util client per host.
//!
//! Each host has its own client, so a pooled connection always goes to the
//! host the load balancer picked, and the request URI can carry the
//! request's own authority (HTTP/2 `:authority` = the Host header, as Envoy
//! sends it).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Uri, Version, header};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tracing::{debug, warn};

use super::Body;
use super::circuit_breaker::{Breakers, Tracked};
use super::connection_uses;
use super::error::{TlsError, UpstreamError};
use super::keepalive;
use super::lb::{Host, HostStats};
use super::principals::Principals;
use super::tls::{TlsConfigError, TlsOrigination, TlsTarget};
use crate::model::keepalive::TcpKeepalive;

pub(crate) type HttpClient = Client<Connector, Body>;

/// A cluster's TLS origination, or why its configuration could not be built.
pub(crate) type Origination = Result<Arc<TlsOrigination>, Arc<TlsConfigError>>;

/// Runs the pool's background tasks: connections, the idle reaper, and the
/// return of a connection whose response body was still streaming.
#[cfg(not(test))]
pub(super) type PoolExecutor = hyper_util::rt::TokioExecutor;
#[cfg(test)]
pub(super) use super::tests::TrackedExecutor as PoolExecutor;

/// How a cluster connects to its hosts.
#[derive(Debug)]
pub(crate) struct ConnectSettings {
    pub(crate) connect_timeout: Duration,
    /// TLS origination, or why its configuration could not be built.
    pub(crate) tls: Option<Origination>,
    pub(crate) http2: bool,
    /// Speak the downstream request's HTTP version (HTTP/2 connections
    /// then originate TLS with `tls_h2`).
    pub(crate) follow_downstream: bool,
    pub(crate) tls_h2: Option<Origination>,
    pub(crate) idle_timeout: Duration,
    pub(crate) keepalive: Option<TcpKeepalive>,
    pub(crate) executor: PoolExecutor,
    /// The cluster's circuit breakers, which bound its connections.
    pub(crate) breakers: Arc<Breakers>,
}

impl ConnectSettings {
    /// A pooled HTTP client whose connections all go to `host`, speaking
    /// HTTP/2 or HTTP/1.1.
    pub(crate) fn client_for(&self, host: &Host, http2: bool) -> HttpClient {
        let tls = if http2 && self.follow_downstream {
            &self.tls_h2
        } else {
            &self.tls
        };
        let connector = Connector {
            addr: host.addr,
            connect_timeout: self.connect_timeout,
            keepalive: self.keepalive,
            tls: tls.clone(),
            stats: host.stats.clone(),
            breakers: self.breakers.clone(),
            idle_timeout: self.idle_timeout,
        };
        Client::builder(self.executor.clone())
            .pool_idle_timeout(self.idle_timeout)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .http2_only(http2)
            .build(connector)
    }
}

/// What a connection to `addr` for requests to `request_host` needs of a
/// cluster's TLS origination, if it originates TLS.
pub(crate) fn tls_target(
    tls: Option<&Origination>,
    addr: SocketAddr,
    request_host: Option<&str>,
) -> Option<Result<TlsTarget, Arc<TlsConfigError>>> {
    tls.map(|tls| match tls {
        Ok(origination) => Ok(origination.target(addr, request_host)),
        Err(error) => Err(error.clone()),
    })
}

/// The HTTP version of the downstream request, which the upstream one
/// follows on a cluster with `use_downstream_protocol_config`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DownstreamVersion(pub Version);

/// Rewrites `req` for the pooled client: an absolute URI whose authority is
/// the request's Host (else its URI authority, else the host address), the
/// scheme of the connection, and the HTTP version the cluster speaks (the
/// downstream request's, HTTP/1.0 as HTTP/1.1, when it follows it).
/// Returns whether that is HTTP/2.
pub(crate) fn prepare_request(
    req: &mut Request<Body>,
    addr: SocketAddr,
    settings: &ConnectSettings,
) -> bool {
    let authority = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| Authority::from_str(h).ok())
        .or_else(|| req.uri().authority().cloned())
        .unwrap_or_else(|| {
            Authority::from_str(&addr.to_string()).expect("a socket address is an authority")
        });
    let mut parts = http::uri::Parts::default();
    parts.scheme = Some(if settings.tls.is_some() {
        Scheme::HTTPS
    } else {
        Scheme::HTTP
    });
    parts.authority = Some(authority);
    parts.path_and_query = Some(
        req.uri()
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/")),
    );
    *req.uri_mut() = Uri::from_parts(parts).expect("scheme, authority and path make a URI");
    let http2 = if settings.follow_downstream {
        req.extensions()
            .get::<DownstreamVersion>()
            .is_some_and(|v| v.0 == Version::HTTP_2)
    } else {
        settings.http2
    };
    *req.version_mut() = if http2 {
        Version::HTTP_2
    } else {
        Version::HTTP_11
    };
    http2
}

/// Opens a TCP connection with TCP_NODELAY and the cluster's keepalive,
/// bounded by `limit`.
pub(crate) async fn connect_tcp(
    addr: SocketAddr,
    limit: Duration,
    keepalive: Option<TcpKeepalive>,
) -> Result<TcpStream, UpstreamError> {
    let stream = with_connect_timeout(addr, limit, TcpStream::connect(addr)).await?;
    if let Err(error) = stream.set_nodelay(true) {
        debug!(%addr, %error, "cannot set TCP_NODELAY");
    }
    if let Some(keepalive) = keepalive
        && let Err(error) = keepalive::apply(&stream, &keepalive)
    {
        warn!(%addr, %error, "cannot set TCP keepalive");
    }
    Ok(stream)
}

/// Runs a connection attempt, mapping its failure and a timeout to
/// [`UpstreamError`].
pub(crate) async fn with_connect_timeout<T>(
    addr: SocketAddr,
    limit: Duration,
    connecting: impl Future<Output = io::Result<T>>,
) -> Result<T, UpstreamError> {
    match tokio::time::timeout(limit, connecting).await {
        Ok(Ok(connected)) => Ok(connected),
        Ok(Err(source)) => Err(UpstreamError::Connect { addr, source }),
        Err(_) => Err(UpstreamError::ConnectTimeout { addr }),
    }
}

// === impl Connector ===

/// Connects to one host (of the URI the client passes, only the host is
/// read: the SNI under `auto_sni`).
#[derive(Clone)]
pub(crate) struct Connector {
    addr: SocketAddr,
    connect_timeout: Duration,
    keepalive: Option<TcpKeepalive>,
    tls: Option<Origination>,
    stats: Arc<HostStats>,
    breakers: Arc<Breakers>,
    /// The pool's idle timeout, which its connections are watched for.
    idle_timeout: Duration,
}

impl Connector {
    /// Connects within the cluster's `max_connections` (waiting, at most
    /// the connect timeout, for a connection to close when it is reached),
    /// counted until the connection closes. `request_host` is the host of
    /// the pool's key (the requests' authority), the SNI under `auto_sni`.
    async fn connect(
        self,
        request_host: Option<String>,
    ) -> Result<Tracked<UpstreamStream>, UpstreamError> {
        let guard = self
            .breakers
            .open_connection(&self.stats.pool_connections, self.connect_timeout)
            .await
            .ok_or(UpstreamError::ConnectTimeout { addr: self.addr })?;
        let tls = tls_target(self.tls.as_ref(), self.addr, request_host.as_deref());
        let stream = connect_host(self.addr, self.connect_timeout, tls, self.keepalive).await?;
        Ok(Tracked::pooled(stream, guard, self.idle_timeout))
    }
}

/// Connects to `addr` and, when `tls` is given, completes the TLS handshake,
/// each step bounded by `limit`. A handshake that fails is a TLS error of
/// the connection (Envoy's UF), carrying rustls's reason.
pub(crate) async fn connect_host(
    addr: SocketAddr,
    limit: Duration,
    tls: Option<Result<TlsTarget, Arc<TlsConfigError>>>,
    keepalive: Option<TcpKeepalive>,
) -> Result<UpstreamStream, UpstreamError> {
    let tcp = connect_tcp(addr, limit, keepalive).await?;
    let Some(tls) = tls else {
        return Ok(UpstreamStream::Plain(tcp));
    };
    let tls_failed = |reason| UpstreamError::Tls { addr, reason };
    let target = tls.map_err(|error| tls_failed(TlsError::Config(error)))?;
    let handshake = TlsConnector::from(target.config).connect(target.name, tcp);
    match tokio::time::timeout(limit, handshake).await {
        Ok(Ok(stream)) => {
            let principals = Principals::of(stream.get_ref().1, target.local_principal.as_ref());
            Ok(UpstreamStream::Tls(Box::new(stream), principals))
        }
        Ok(Err(error)) => Err(tls_failed(error.into())),
        Err(_) => Err(tls_failed(TlsError::TimedOut)),
    }
}

impl tower_service::Service<Uri> for Connector {
    type Response = TokioIo<Tracked<UpstreamStream>>;
    type Error = UpstreamError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connector = self.clone();
        let request_host = uri.host().map(str::to_string);
        Box::pin(async move {
            let stats = connector.stats.clone();
            stats.cx_total.fetch_add(1, Ordering::Relaxed);
            let result = connector.connect(request_host).await;
            if let Err(error) = &result {
                stats.cx_connect_fail.fetch_add(1, Ordering::Relaxed);
                debug!(%error, "upstream connection failed");
            }
            result.map(TokioIo::new)
        })
    }
}

// === impl UpstreamStream ===

/// A connection to an upstream host, plain or TLS originated.
#[derive(Debug)]
pub enum UpstreamStream {
    Plain(TcpStream),
    /// With the identities on the connection, if either side has one.
    Tls(Box<TlsStream<TcpStream>>, Option<Arc<Principals>>),
}

/// The agent's end of a pooled connection, in its responses' extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LocalAddress(pub(crate) SocketAddr);

impl UpstreamStream {
    /// The agent's end of the connection.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match self {
            Self::Plain(tcp) => tcp.local_addr().ok(),
            Self::Tls(tls, _) => tls.get_ref().0.local_addr().ok(),
        }
    }

    /// The identities on a TLS connection.
    pub fn principals(&self) -> Option<&Arc<Principals>> {
        match self {
            Self::Plain(_) => None,
            Self::Tls(_, principals) => principals.as_ref(),
        }
    }
}

impl Connection for UpstreamStream {
    fn connected(&self) -> Connected {
        let connected = match self {
            Self::Tls(tls, _) if tls.get_ref().1.alpn_protocol() == Some(b"h2") => {
                Connected::new().negotiated_h2()
            }
            _ => Connected::new(),
        };
        let connected = match self.local_addr() {
            Some(local) => connected.extra(LocalAddress(local)),
            None => connected,
        };
        // hyper-util copies it into each response of the connection.
        let connected = match self.principals() {
            Some(principals) => connected.extra(principals.clone()),
            None => connected,
        };
        connection_uses::counted(connected)
    }
}

impl AsyncRead for UpstreamStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s, _) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for UpstreamStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s, _) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Self::Tls(s, _) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Plain(s) => s.is_write_vectored(),
            Self::Tls(s, _) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s, _) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s, _) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr() -> SocketAddr {
        "10.1.2.3:8080".parse().unwrap()
    }

    fn settings(tls: bool, http2: bool) -> ConnectSettings {
        ConnectSettings {
            connect_timeout: Duration::from_secs(1),
            tls: tls.then(|| Err(Arc::new(TlsConfigError::ClientKey("no key")))),
            http2,
            follow_downstream: false,
            tls_h2: None,
            idle_timeout: Duration::from_secs(60),
            keepalive: None,
            executor: PoolExecutor::default(),
            breakers: Arc::new(Breakers::new(Default::default(), Default::default())),
        }
    }

    fn request(uri: &str, host: Option<&str>) -> Request<Body> {
        let mut builder = Request::builder().uri(uri).version(Version::HTTP_10);
        if let Some(host) = host {
            builder = builder.header(header::HOST, host);
        }
        builder.body(super::super::empty_body()).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_connect_that_never_completes_times_out() {
        let limit = Duration::from_secs(3);
        let started = tokio::time::Instant::now();
        let result =
            with_connect_timeout(addr(), limit, std::future::pending::<io::Result<()>>()).await;
        assert!(
            matches!(result, Err(UpstreamError::ConnectTimeout { addr: a }) if a == addr()),
            "{result:?}"
        );
        assert_eq!(started.elapsed(), limit);
    }

    #[tokio::test]
    async fn connect_errors_keep_their_cause() {
        let refused = async { Err::<(), _>(io::Error::from(io::ErrorKind::ConnectionRefused)) };
        let result = with_connect_timeout(addr(), Duration::from_secs(1), refused).await;
        let Err(UpstreamError::Connect { source, .. }) = result else {
            panic!("expected a connect error, got {result:?}");
        };
        assert_eq!(source.kind(), io::ErrorKind::ConnectionRefused);
    }

    #[test]
    fn requests_carry_their_host_as_authority() {
        let mut req = request("/get?x=1", Some("httpbin.test:8000"));
        prepare_request(&mut req, addr(), &settings(false, false));
        assert_eq!(req.uri(), "http://httpbin.test:8000/get?x=1");
        assert_eq!(req.version(), Version::HTTP_11);
        assert_eq!(req.headers()[header::HOST], "httpbin.test:8000");

        let mut req = request("http://example.test/a", None);
        prepare_request(&mut req, addr(), &settings(true, true));
        assert_eq!(req.uri(), "https://example.test/a");
        assert_eq!(req.version(), Version::HTTP_2);

        let mut req = request("/", None);
        prepare_request(&mut req, addr(), &settings(false, false));
        assert_eq!(req.uri(), "http://10.1.2.3:8080/");
    }
}
