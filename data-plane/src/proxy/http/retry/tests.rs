//! Retries against local hyper upstreams, as Envoy retries: the attempts
//! and their `x-envoy-attempt-count`, the retry stats, URX when retries run
//! out, per-try timeouts, the previous hosts predicate, request bodies sent
//! again, and the `max_retries` circuit breaker.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use proto::pb::envoy::config::cluster::v3 as pb_cluster;
use proto::pb::envoy::config::core::v3::{Address, SocketAddress, address, socket_address};
use proto::pb::envoy::config::endpoint::v3 as pb_endpoint;
use tokio::net::TcpListener;

use super::*;
use crate::model::RunningConfig;
use crate::model::route::{Backoff, RetryOn};
use crate::model::secret::SecretSources;
use crate::proxy::http::replay::DEFAULT_BUFFER_LIMIT;
use crate::proxy::respond::LocalReply;
use crate::upstream::DnsConfig;

const CLUSTER: &str = "outbound|80||httpbin.test";

/// A local upstream answering with the scripted statuses in turn (then
/// 200), after `delay`, recording each request's `x-envoy-attempt-count`.
struct Upstream {
    addr: SocketAddr,
    attempts: Arc<Mutex<Vec<String>>>,
    bodies: Arc<Mutex<Vec<Bytes>>>,
}

async fn upstream(statuses: &[u16], delay: Duration) -> Upstream {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let script = Arc::new(Mutex::new(
        statuses.iter().copied().collect::<VecDeque<_>>(),
    ));
    let attempts: Arc<Mutex<Vec<String>>> = Arc::default();
    let bodies: Arc<Mutex<Vec<Bytes>>> = Arc::default();
    let (seen, seen_bodies) = (attempts.clone(), bodies.clone());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (script, seen, seen_bodies) = (script.clone(), seen.clone(), seen_bodies.clone());
            let service = service_fn(move |req: Request<Incoming>| {
                let (script, seen, seen_bodies) =
                    (script.clone(), seen.clone(), seen_bodies.clone());
                async move {
                    let count = req
                        .headers()
                        .get("x-envoy-attempt-count")
                        .map(|v| v.to_str().unwrap().to_string())
                        .unwrap_or_default();
                    seen.lock().push(count);
                    let body = req.into_body().collect().await.unwrap().to_bytes();
                    seen_bodies.lock().push(body);
                    tokio::time::sleep(delay).await;
                    let status = script.lock().pop_front().unwrap_or(200);
                    let mut response = Response::new(Full::new(Bytes::from_static(b"ok")));
                    *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
                    Ok::<_, Infallible>(response)
                }
            });
            tokio::spawn(async move {
                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                let _ = builder.serve_connection(TokioIo::new(tcp), service).await;
            });
        }
    });
    Upstream {
        addr,
        attempts,
        bodies,
    }
}

fn socket(addr: SocketAddr) -> Address {
    Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            address: addr.ip().to_string(),
            port_specifier: Some(socket_address::PortSpecifier::PortValue(u32::from(
                addr.port(),
            ))),
            ..Default::default()
        })),
    }
}

/// Upstreams with one static round-robin cluster of `hosts`.
fn upstreams(hosts: &[SocketAddr]) -> Upstreams {
    upstreams_with(hosts, None, None)
}

/// Upstreams with one static round-robin cluster of `hosts`, with the
/// default priority's `max_retries` and the `connect_timeout` when given.
fn upstreams_with(
    hosts: &[SocketAddr],
    max_retries: Option<u32>,
    connect_timeout: Option<proto::wkt::Duration>,
) -> Upstreams {
    let endpoints = hosts
        .iter()
        .map(|&addr| pb_endpoint::LbEndpoint {
            host_identifier: Some(pb_endpoint::lb_endpoint::HostIdentifier::Endpoint(
                pb_endpoint::Endpoint {
                    address: Some(socket(addr)),
                    ..Default::default()
                },
            )),
            ..Default::default()
        })
        .collect();
    let cluster = pb_cluster::Cluster {
        name: CLUSTER.into(),
        cluster_discovery_type: Some(pb_cluster::cluster::ClusterDiscoveryType::Type(
            pb_cluster::cluster::DiscoveryType::Static as i32,
        )),
        load_assignment: Some(pb_endpoint::ClusterLoadAssignment {
            cluster_name: CLUSTER.into(),
            endpoints: vec![pb_endpoint::LocalityLbEndpoints {
                lb_endpoints: endpoints,
                ..Default::default()
            }],
            ..Default::default()
        }),
        circuit_breakers: max_retries.map(|max| pb_cluster::CircuitBreakers {
            thresholds: vec![pb_cluster::circuit_breakers::Thresholds {
                max_retries: Some(proto::wkt::UInt32Value { value: max }),
                ..Default::default()
            }],
            ..Default::default()
        }),
        connect_timeout,
        ..Default::default()
    };
    let cluster = crate::model::cluster_from_proto(&cluster, &SecretSources::default()).unwrap();
    let upstreams = Upstreams::new(DnsConfig {
        server: Some("127.0.0.1:9".parse().unwrap()),
    });
    upstreams.update(&RunningConfig {
        clusters: [(cluster.name.clone(), Arc::new(cluster))].into(),
        ..RunningConfig::default()
    });
    upstreams
}

fn policy(on: RetryOn, num_retries: u32) -> RetryPolicy {
    RetryPolicy {
        num_retries,
        per_try_timeout: None,
        on,
        retriable_status_codes: vec![503],
        previous_hosts: false,
        host_selection_max_attempts: 1,
        backoff: Backoff {
            base: Duration::from_millis(1),
            max: Duration::from_millis(2),
        },
    }
}

/// `num_retries` retries on `reset`, each try cut at `per_try`.
fn per_try_policy(num_retries: u32, per_try: Duration) -> RetryPolicy {
    let on = RetryOn {
        reset: true,
        ..Default::default()
    };
    RetryPolicy {
        per_try_timeout: Some(per_try),
        ..policy(on, num_retries)
    }
}

fn status_codes() -> RetryOn {
    RetryOn {
        retriable_status_codes: true,
        ..Default::default()
    }
}

async fn send(upstreams: &Upstreams, retry: &RetryPolicy, stats: &Arc<ClusterStats>) -> Sent {
    let (head, ()) = Request::get("/status")
        .header(http::header::HOST, "httpbin.test")
        .body(())
        .unwrap()
        .into_parts();
    attempts(upstreams, retry, stats, DEFAULT_BUFFER_LIMIT)
        .send(head, upstream::empty_body(), &Mutex::new(None))
        .await
}

fn attempts<'a>(
    upstreams: &'a Upstreams,
    retry: &'a RetryPolicy,
    stats: &'a Arc<ClusterStats>,
    buffer_limit: usize,
) -> Attempts<'a> {
    Attempts {
        upstreams,
        cluster: CLUSTER,
        destination: None,
        retry: Some(retry),
        timeout: Some(Duration::from_secs(5)),
        include_attempt_count: true,
        buffer_limit,
        stats,
    }
}

/// `POST /post` with `body`.
async fn post(attempts: &Attempts<'_>, body: &'static [u8]) -> Sent {
    let (head, ()) = Request::post("/post")
        .header(http::header::HOST, "httpbin.test")
        .body(())
        .unwrap()
        .into_parts();
    let body = Full::new(Bytes::from_static(body))
        .map_err(|never| match never {})
        .boxed();
    attempts.send(head, body, &Mutex::new(None)).await
}

fn count(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

fn status(sent: &Sent) -> u16 {
    match &sent.outcome {
        Ok((response, _)) => response.status().as_u16(),
        Err(error) => panic!("expected a response, got {error}"),
    }
}

#[tokio::test]
async fn a_retriable_status_is_retried_until_a_response_is_not() {
    let server = upstream(&[503], Duration::ZERO).await;
    let upstreams = upstreams(&[server.addr]);
    let stats = Arc::new(ClusterStats::default());
    let sent = send(&upstreams, &policy(status_codes(), 2), &stats).await;
    assert_eq!(status(&sent), 200);
    assert!(!sent.retry_limit_exceeded);
    assert_eq!(*server.attempts.lock(), ["1", "2"]);
    assert_eq!(count(&stats.rq_retry), 1);
    assert_eq!(count(&stats.rq_retry_success), 1);
    assert_eq!(count(&stats.rq_retry_limit_exceeded), 0);
    // The retried 503 is charged as Envoy charges it: a request of the
    // cluster, under `retry.upstream_rq_503`, not with the responses that
    // went downstream.
    assert_eq!(count(&stats.rq_total), 1);
    assert_eq!(count(&stats.rq_class[4]), 0);
    assert_eq!(stats.retried.by_code(), [(503, 1)].into());
}

#[tokio::test]
async fn retries_running_out_on_a_retriable_status_give_its_response_with_urx() {
    let server = upstream(&[503, 503, 503], Duration::ZERO).await;
    let upstreams = upstreams(&[server.addr]);
    let stats = Arc::new(ClusterStats::default());
    let sent = send(&upstreams, &policy(status_codes(), 2), &stats).await;
    assert_eq!(status(&sent), 503);
    assert!(sent.retry_limit_exceeded);
    assert_eq!(*server.attempts.lock(), ["1", "2", "3"]);
    assert_eq!(count(&stats.rq_retry), 2);
    assert_eq!(count(&stats.rq_retry_success), 0);
    assert_eq!(count(&stats.rq_retry_limit_exceeded), 1);
}

#[tokio::test]
async fn a_status_outside_the_conditions_is_not_retried() {
    let server = upstream(&[500], Duration::ZERO).await;
    let upstreams = upstreams(&[server.addr]);
    let stats = Arc::new(ClusterStats::default());
    let sent = send(&upstreams, &policy(status_codes(), 2), &stats).await;
    assert_eq!(status(&sent), 500);
    assert!(!sent.retry_limit_exceeded);
    assert_eq!(server.attempts.lock().len(), 1);
    assert_eq!(count(&stats.rq_retry), 0);
}

#[tokio::test]
async fn connect_failures_are_retried_then_flagged_uf_urx() {
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let upstreams = upstreams(&[addr]);
    let stats = Arc::new(ClusterStats::default());
    let connect = RetryOn {
        connect_failure: true,
        ..Default::default()
    };
    let sent = send(&upstreams, &policy(connect, 2), &stats).await;
    let Err(ForwardError::Upstream(error)) = &sent.outcome else {
        panic!("expected a connect failure");
    };
    assert!(sent.retry_limit_exceeded);
    assert_eq!(count(&stats.cx_connect_fail), 3);
    assert_eq!(count(&stats.rq_retry), 2);
    assert_eq!(
        count(&stats.rq_total),
        0,
        "no connection took the retried tries (Envoy counts requests a connection took)"
    );
    let reply = LocalReply::upstream_failure(error).retry_limit_exceeded();
    assert_eq!(reply.flags, "URX,UF");
}

/// A listener on loopback that never accepts, its queue of one
/// connection full: the kernel drops further SYNs to it, so a connection
/// attempt lasts until its timeout. Returns its address and what keeps it.
fn syn_dropper() -> (SocketAddr, (std::os::fd::OwnedFd, std::net::TcpStream)) {
    use nix::sys::socket::{
        AddressFamily, Backlog, SockFlag, SockType, SockaddrIn, bind, getsockname, listen, socket,
    };
    use std::os::fd::AsRawFd;
    let listener = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap();
    let loopback = SockaddrIn::from(std::net::SocketAddrV4::new([127, 0, 0, 1].into(), 0));
    bind(listener.as_raw_fd(), &loopback).unwrap();
    listen(&listener, Backlog::new(0).unwrap()).unwrap();
    let bound: SockaddrIn = getsockname(listener.as_raw_fd()).unwrap();
    let addr = SocketAddr::from(std::net::SocketAddrV4::from(bound));
    let queued = std::net::TcpStream::connect(addr).unwrap();
    (addr, (listener, queued))
}

#[tokio::test]
async fn connect_timeouts_count_as_timeouts_and_connect_failures() {
    let (addr, _dropper) = syn_dropper();
    let timeout = proto::wkt::Duration {
        seconds: 0,
        nanos: 100_000_000,
    };
    let upstreams = upstreams_with(&[addr], None, Some(timeout));
    let stats = Arc::new(ClusterStats::default());
    let connect = RetryOn {
        connect_failure: true,
        ..Default::default()
    };
    let sent = send(&upstreams, &policy(connect, 1), &stats).await;
    let Err(ForwardError::Upstream(error)) = &sent.outcome else {
        panic!("expected a connect timeout");
    };
    assert!(error.is_connect_timeout());
    assert_eq!(count(&stats.cx_connect_timeout), 2);
    assert_eq!(count(&stats.cx_connect_fail), 2);
}

#[tokio::test]
async fn per_try_timeouts_are_retried_on_reset_then_answer_504_ut_urx() {
    let server = upstream(&[], Duration::from_millis(300)).await;
    let upstreams = upstreams(&[server.addr]);
    let stats = Arc::new(ClusterStats::default());
    let retry = per_try_policy(1, Duration::from_millis(50));
    let sent = send(&upstreams, &retry, &stats).await;
    assert!(matches!(sent.outcome, Err(ForwardError::PerTryTimeout)));
    assert!(sent.retry_limit_exceeded);
    assert_eq!(count(&stats.rq_per_try_timeout), 2);
    assert_eq!(
        count(&stats.rq_total),
        1,
        "the retried try was sent; the last one is counted with the reply"
    );
    let reply = LocalReply::per_try_timeout().retry_limit_exceeded();
    assert_eq!(
        (reply.status.as_u16(), reply.flags, reply.details),
        (504, "URX,UT", "upstream_per_try_timeout")
    );
}

#[tokio::test]
async fn a_request_body_is_sent_again_with_each_retry() {
    let server = upstream(&[503], Duration::ZERO).await;
    let upstreams = upstreams(&[server.addr]);
    let stats = Arc::new(ClusterStats::default());
    let retry = policy(status_codes(), 2);
    let sent = post(&attempts(&upstreams, &retry, &stats, 1024), b"payload").await;
    assert_eq!(status(&sent), 200);
    assert_eq!(*server.attempts.lock(), ["1", "2"]);
    assert_eq!(*server.bodies.lock(), ["payload", "payload"]);
    assert_eq!(count(&stats.rq_retry), 1);
    assert_eq!(count(&stats.rq_retry_backoff_exponential), 1);
    assert_eq!(count(&stats.retry_or_shadow_abandoned), 0);
}

#[tokio::test]
async fn a_request_body_past_the_buffer_limit_is_sent_once_and_not_retried() {
    let server = upstream(&[503], Duration::ZERO).await;
    let upstreams = upstreams(&[server.addr]);
    let stats = Arc::new(ClusterStats::default());
    let retry = policy(status_codes(), 2);
    let sent = post(&attempts(&upstreams, &retry, &stats, 4), b"payload").await;
    // Envoy drops the retry state: the 503 goes back as it is, no URX.
    assert_eq!(status(&sent), 503);
    assert!(!sent.retry_limit_exceeded);
    assert_eq!(*server.bodies.lock(), ["payload"]);
    assert_eq!(count(&stats.retry_or_shadow_abandoned), 1);
    assert_eq!(count(&stats.rq_retry), 0);
    assert_eq!(count(&stats.rq_retry_limit_exceeded), 0);
}

#[tokio::test]
async fn an_open_max_retries_breaker_stops_the_retry_with_uo() {
    let server = upstream(&[503], Duration::ZERO).await;
    let upstreams = upstreams_with(&[server.addr], Some(0), None);
    let stats = Arc::new(ClusterStats::default());
    let sent = send(&upstreams, &policy(status_codes(), 2), &stats).await;
    assert_eq!(status(&sent), 503);
    assert!(sent.retry_overflow);
    assert!(!sent.retry_limit_exceeded);
    assert_eq!(server.attempts.lock().len(), 1);
    assert_eq!(count(&stats.rq_retry), 0);
    let reply = LocalReply::upstream_failure(&UpstreamError::Http(reset_error().await));
    assert_eq!(reply.retry_overflow().flags, "UO,UR");
}

#[tokio::test]
async fn a_request_gives_back_its_retry_slot_before_its_next_retry() {
    let server = upstream(&[503, 503], Duration::ZERO).await;
    let upstreams = upstreams_with(&[server.addr], Some(1), None);
    let stats = Arc::new(ClusterStats::default());
    let sent = send(&upstreams, &policy(status_codes(), 2), &stats).await;
    // One retry at a time: the second retry takes the slot the first one
    // held, as Envoy's retry state releases it at each decision.
    assert_eq!(status(&sent), 200);
    assert!(!sent.retry_overflow);
    assert_eq!(*server.attempts.lock(), ["1", "2", "3"]);
    assert_eq!(count(&stats.rq_retry), 2);
}

/// A client error of a connection the upstream closed mid-request.
async fn reset_error() -> hyper_util::client::legacy::Error {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            drop(tcp);
        }
    });
    let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .retry_canceled_requests(false)
        .build_http::<Full<Bytes>>();
    client
        .get(format!("http://{addr}/").parse().unwrap())
        .await
        .unwrap_err()
}

#[tokio::test]
async fn a_retry_under_previous_hosts_picks_again_past_a_tried_host() {
    let (a, b) = (
        upstream(&[], Duration::ZERO).await,
        upstream(&[], Duration::ZERO).await,
    );
    let upstreams = upstreams(&[a.addr, b.addr]);
    let chosen = Mutex::new(None);
    let get = || {
        Request::get("/")
            .header(http::header::HOST, "httpbin.test")
            .body(upstream::empty_body())
            .unwrap()
    };
    upstreams
        .send_http_avoiding(CLUSTER, get(), None, &chosen, &[], 1)
        .await
        .unwrap();
    let first = chosen.lock().as_ref().unwrap().address;
    let next = if first == a.addr { b.addr } else { a.addr };
    // Round robin gives the other host next; it was tried, so the first
    // one is picked again.
    let (_, info) = upstreams
        .send_http_avoiding(CLUSTER, get(), None, &chosen, &[next], 2)
        .await
        .unwrap();
    assert_eq!(info.address, first);
    // With one selection the tried host stands.
    let (_, info) = upstreams
        .send_http_avoiding(CLUSTER, get(), None, &chosen, &[next], 1)
        .await
        .unwrap();
    assert_eq!(info.address, next);
}

#[test]
fn no_healthy_upstream_and_unknown_clusters_are_never_retried() {
    let all = policy(
        RetryOn {
            five_xx: true,
            reset: true,
            connect_failure: true,
            ..Default::default()
        },
        2,
    );
    let no_host = ForwardError::Upstream(UpstreamError::NoHealthyUpstream(CLUSTER.into()));
    assert!(!all.retries_failure(failure(&no_host)));
    let unknown = ForwardError::Upstream(UpstreamError::UnknownCluster(CLUSTER.into()));
    assert!(!all.retries_failure(failure(&unknown)));
}

/// A POST whose body takes `slow` to arrive, in two parts.
fn slow_body(slow: Duration) -> Body {
    let (send, receive) =
        tokio::sync::mpsc::channel::<Result<http_body::Frame<Bytes>, hyper::Error>>(2);
    tokio::spawn(async move {
        let _ = send
            .send(Ok(http_body::Frame::data(Bytes::from_static(b"pay"))))
            .await;
        tokio::time::sleep(slow).await;
        let _ = send
            .send(Ok(http_body::Frame::data(Bytes::from_static(b"load"))))
            .await;
    });
    http_body_util::StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(receive)).boxed()
}

#[tokio::test]
async fn the_route_and_per_try_timeouts_start_once_the_request_body_is_complete() {
    // Envoy starts both when the downstream request is complete: a body
    // slower than either timeout is not cut by them.
    let server = upstream(&[], Duration::ZERO).await;
    let upstreams = upstreams(&[server.addr]);
    let stats = Arc::new(ClusterStats::default());
    let mut retry = policy(status_codes(), 1);
    retry.per_try_timeout = Some(Duration::from_millis(200));
    let attempts = Attempts {
        timeout: Some(Duration::from_millis(300)),
        ..attempts(&upstreams, &retry, &stats, 1024)
    };
    let (head, ()) = Request::post("/post").body(()).unwrap().into_parts();
    let sent = attempts
        .send(
            head,
            slow_body(Duration::from_millis(600)),
            &Mutex::new(None),
        )
        .await;
    assert_eq!(status(&sent), 200);
    assert_eq!(*server.bodies.lock(), ["payload"]);
    assert_eq!(count(&stats.rq_per_try_timeout), 0);
}

#[tokio::test]
async fn the_route_timeout_runs_from_the_request_s_end_over_every_try() {
    // A complete request whose tries each outlast the per-try timeout: the
    // route timeout ends it, retries and all.
    let server = upstream(&[], Duration::from_millis(500)).await;
    let upstreams = upstreams(&[server.addr]);
    let stats = Arc::new(ClusterStats::default());
    let retry = per_try_policy(5, Duration::from_millis(100));
    let attempts = Attempts {
        timeout: Some(Duration::from_millis(250)),
        ..attempts(&upstreams, &retry, &stats, 1024)
    };
    let (head, ()) = Request::get("/status").body(()).unwrap().into_parts();
    let sent = attempts
        .send(head, upstream::empty_body(), &Mutex::new(None))
        .await;
    assert!(matches!(sent.outcome, Err(ForwardError::Timeout)));
    assert!(count(&stats.rq_per_try_timeout) >= 1);
}
