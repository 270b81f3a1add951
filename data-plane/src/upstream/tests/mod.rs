//! End-to-end tests of [`Upstreams`] against local servers on 127.0.0.1:
//! HTTP (plain, TLS, HTTP/2) and a fake DNS server.

mod auto_sni;
mod connection_policy;
mod dns;
mod executor;
mod hashing;
mod http;
mod max_requests;
mod resilience;
mod tcp_tls;
mod tls;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UdpSocket};
use tokio_rustls::TlsAcceptor;

use crate::model::RunningConfig;
use crate::model::cluster::{Cluster, Discovery, Endpoint, LbPolicy, LoadAssignment, UpstreamTls};

pub(super) use executor::TrackedExecutor;

use super::{Body, DnsConfig, TlsError, UpstreamError, UpstreamInfo, Upstreams, empty_body};

// === test HTTP server ===

/// A local HTTP server that answers every request with what it saw:
/// `host=<Host header> authority=<URI authority> version=<version>`, or,
/// for path [`LARGE_PATH`], with [`LARGE_BODY`] bytes.
pub(super) struct TestServer {
    pub(super) addr: SocketAddr,
    /// TCP connections accepted.
    pub(super) accepted: Arc<AtomicUsize>,
    /// TCP connections the client closed.
    pub(super) closed: Arc<AtomicUsize>,
    /// SNI of each TLS connection.
    pub(super) snis: Arc<Mutex<Vec<Option<String>>>>,
}

impl TestServer {
    pub(super) async fn start(tls: Option<Arc<rustls::ServerConfig>>, http2: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = Self {
            addr: listener.local_addr().unwrap(),
            accepted: Arc::default(),
            closed: Arc::default(),
            snis: Arc::default(),
        };
        let (accepted, snis) = (server.accepted.clone(), server.snis.clone());
        let closed = server.closed.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                accepted.fetch_add(1, Ordering::SeqCst);
                let (tls, snis, closed) = (tls.clone(), snis.clone(), closed.clone());
                tokio::spawn(async move {
                    let _closed = CountOnDrop(closed);
                    match tls {
                        None => serve(tcp, http2).await,
                        Some(config) => {
                            let Ok(stream) = TlsAcceptor::from(config).accept(tcp).await else {
                                return;
                            };
                            snis.lock()
                                .push(stream.get_ref().1.server_name().map(str::to_string));
                            serve(stream, http2).await;
                        }
                    }
                });
            }
        });
        server
    }

    pub(super) fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    pub(super) fn closed(&self) -> usize {
        self.closed.load(Ordering::SeqCst)
    }
}

/// Counts one in its counter when dropped.
struct CountOnDrop(Arc<AtomicUsize>);

impl Drop for CountOnDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// The path [`TestServer`] answers with [`LARGE_BODY`] bytes.
pub(super) const LARGE_PATH: &str = "/large";
/// More than a client reads at once: its response arrives before its body
/// ends.
pub(super) const LARGE_BODY: usize = 1 << 20;

async fn serve(io: impl AsyncRead + AsyncWrite + Unpin + Send + 'static, http2: bool) {
    let service = service_fn(|req: Request<Incoming>| async move {
        if req.uri().path() == LARGE_PATH {
            let body = Bytes::from(vec![b'x'; LARGE_BODY]);
            return Ok::<_, Infallible>(Response::new(Full::new(body)));
        }
        let host = req
            .headers()
            .get(::http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("-");
        let authority = req.uri().authority().map_or("-", |a| a.as_str());
        let seen = format!(
            "host={host} authority={authority} version={:?}",
            req.version()
        );
        Ok(Response::new(Full::new(Bytes::from(seen))))
    });
    let io = TokioIo::new(io);
    // Connection errors (a client going away) do not matter here.
    let _ = if http2 {
        hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .serve_connection(io, service)
            .await
    } else {
        hyper::server::conn::http1::Builder::new()
            .serve_connection(io, service)
            .await
    };
}

// === fake DNS server ===

/// Names a fake DNS server answers, changeable while it runs.
pub(super) type Records = Arc<Mutex<HashMap<&'static str, Ipv4Addr>>>;

pub(super) fn records(entries: &[(&'static str, Ipv4Addr)]) -> Records {
    Arc::new(Mutex::new(entries.iter().copied().collect()))
}

/// A UDP DNS server on 127.0.0.1 answering A queries from `records` with a
/// zero TTL (NXDOMAIN for other names); with `None` it never answers.
pub(super) async fn fake_dns(records: Option<Records>) -> SocketAddr {
    use hickory_proto::op::{Message, ResponseCode};
    use hickory_proto::rr::rdata::A;
    use hickory_proto::rr::{RData, Record, RecordType};

    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
                return;
            };
            let Some(records) = &records else {
                continue;
            };
            let Ok(query) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let mut response = Message::response(query.metadata.id, query.metadata.op_code);
            response.metadata.recursion_desired = query.metadata.recursion_desired;
            response.metadata.recursion_available = true;
            for q in &query.queries {
                response.add_query(q.clone());
                let name = q
                    .name()
                    .to_ascii()
                    .trim_end_matches('.')
                    .to_ascii_lowercase();
                let found = records.lock().get(name.as_str()).copied();
                match found {
                    Some(ip) if q.query_type() == RecordType::A => {
                        response.add_answer(Record::from_rdata(
                            q.name().clone(),
                            0,
                            RData::A(A(ip)),
                        ));
                    }
                    Some(_) => {}
                    None => response.metadata.response_code = ResponseCode::NXDomain,
                }
            }
            let _ = socket.send_to(&response.to_vec().unwrap(), peer).await;
        }
    });
    addr
}

// === config builders ===

pub(super) fn cluster(name: &str, discovery: Discovery) -> Cluster {
    Cluster {
        name: name.into(),
        discovery,
        lb: LbPolicy::RoundRobin,
        connect_timeout: Duration::from_secs(5),
        tls: None,
        http2: false,
        follow_downstream_protocol: false,
        idle_timeout: None,
        max_requests_per_connection: None,
        max_connection_duration: None,
        tcp_keepalive: None,
        circuit_breakers: Default::default(),
        outlier_detection: None,
        healthy_panic_threshold: Default::default(),
        secret_names: Vec::new(),
    }
}

pub(super) fn assignment(name: &str, endpoints: &[(&str, u16)]) -> LoadAssignment {
    LoadAssignment {
        cluster_name: name.into(),
        endpoints: endpoints
            .iter()
            .map(|&(host, port)| Endpoint {
                host: host.to_string(),
                port,
                weight: 1,
                healthy: true,
                peer: None,
            })
            .collect(),
    }
}

pub(super) fn static_cluster(name: &str, addrs: &[SocketAddr]) -> Cluster {
    let hosts: Vec<(String, u16)> = addrs
        .iter()
        .map(|a| (a.ip().to_string(), a.port()))
        .collect();
    let hosts: Vec<(&str, u16)> = hosts.iter().map(|(h, p)| (h.as_str(), *p)).collect();
    cluster(name, Discovery::Static(assignment(name, &hosts)))
}

pub(super) fn with_tls(mut cluster: Cluster, tls: UpstreamTls) -> Cluster {
    cluster.tls = Some(Arc::new(tls));
    cluster
}

pub(super) fn config(clusters: Vec<Cluster>) -> RunningConfig {
    RunningConfig {
        clusters: clusters
            .into_iter()
            .map(|c| (c.name.clone(), Arc::new(c)))
            .collect(),
        ..RunningConfig::default()
    }
}

pub(super) fn upstreams(clusters: Vec<Cluster>) -> Upstreams {
    let upstreams = Upstreams::new(DnsConfig {
        server: Some("127.0.0.1:9".parse().unwrap()),
    });
    upstreams.update(&config(clusters));
    upstreams
}

// === requests ===

pub(super) fn get(host: &str, path: &str) -> Request<Body> {
    Request::get(path)
        .header(::http::header::HOST, host)
        .body(empty_body())
        .unwrap()
}

/// Sends a GET and returns the status, what the server saw, and the host used.
pub(super) async fn fetch(
    upstreams: &Upstreams,
    cluster: &str,
    host: &str,
    original_dst: Option<SocketAddr>,
) -> Result<(u16, String, UpstreamInfo), UpstreamError> {
    let (response, info) = upstreams
        .send_http(cluster, get(host, "/get"), original_dst)
        .await?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Ok((status, String::from_utf8(body.to_vec()).unwrap(), info))
}

/// Waits until the pools of `upstreams` have taken back the connections of
/// the responses read so far.
pub(super) async fn settle(upstreams: &Upstreams) {
    upstreams.inner.executor.settled().await;
}
