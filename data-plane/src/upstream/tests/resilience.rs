//! Circuit breakers and outlier detection against local servers: overflow
//! of pending requests and TCP connections, ejection of a failing host,
//! panic mode and no healthy upstream once every host is ejected; hosts
//! the control plane marks unhealthy, balanced around as Envoy does.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::model::cluster::{CircuitBreakers, OutlierDetection, PanicThreshold};

use super::*;

const CLUSTER: &str = "outbound|80||api.test";

/// An HTTP/1.1 server answering `status`, each response waiting for a
/// permit of `gate` (none: at once).
async fn server(status: u16, gate: Option<Arc<Semaphore>>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let gate = gate.clone();
            tokio::spawn(async move {
                let service = service_fn(move |_: Request<Incoming>| {
                    let gate = gate.clone();
                    async move {
                        if let Some(gate) = gate {
                            gate.acquire().await.unwrap().forget();
                        }
                        let mut response = Response::new(Full::new(Bytes::from_static(b"ok")));
                        *response.status_mut() = ::http::StatusCode::from_u16(status).unwrap();
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    addr
}

fn metric(upstreams: &Upstreams, name: &str) -> u64 {
    let mut out = String::new();
    upstreams.render_stats(&mut out);
    let series = format!("{name}{{envoy_cluster_name=\"{CLUSTER}\"}} ");
    out.lines()
        .find_map(|line| line.strip_prefix(&series))
        .unwrap_or_else(|| panic!("no {series} in\n{out}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_request_past_max_pending_requests_overflows() {
    let gate = Arc::new(Semaphore::new(0));
    let addr = server(200, Some(gate.clone())).await;
    let mut cluster = static_cluster(CLUSTER, &[addr]);
    cluster.circuit_breakers = CircuitBreakers {
        max_connections: 1,
        max_pending_requests: 1,
        ..CircuitBreakers::default()
    };
    let upstreams = upstreams(vec![cluster]);
    let send = |upstreams: &Upstreams| {
        let upstreams = upstreams.clone();
        tokio::spawn(async move { fetch(&upstreams, CLUSTER, "api.test", None).await })
    };
    let first = send(&upstreams);
    while upstreams.describe()[0].endpoints[0].rq_active == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let second = send(&upstreams);
    while !upstreams.describe()[0].breakers.rq_pending_open {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let third = fetch(&upstreams, CLUSTER, "api.test", None).await;
    assert!(
        matches!(third, Err(UpstreamError::Overflow(_))),
        "{third:?}"
    );
    assert_eq!(
        metric(&upstreams, "envoy_cluster_upstream_rq_pending_overflow"),
        1
    );
    assert_eq!(metric(&upstreams, "envoy_cluster_upstream_cx_overflow"), 1);
    assert_eq!(
        metric(
            &upstreams,
            "envoy_cluster_circuit_breakers_default_rq_pending_open"
        ),
        1
    );

    gate.add_permits(2);
    assert_eq!(first.await.unwrap().unwrap().0, 200);
    assert_eq!(
        second.await.unwrap().unwrap().0,
        200,
        "the pending request is served"
    );
    assert_eq!(
        metric(
            &upstreams,
            "envoy_cluster_circuit_breakers_default_rq_pending_open"
        ),
        0
    );
}

#[tokio::test]
async fn a_tcp_connection_past_max_connections_overflows() {
    let addr = server(200, None).await;
    let mut cluster = static_cluster(CLUSTER, &[addr]);
    cluster.circuit_breakers.max_connections = 1;
    let upstreams = upstreams(vec![cluster]);
    let first = upstreams.connect_tcp(CLUSTER, None).await.unwrap();
    let second = upstreams.connect_tcp(CLUSTER, None).await;
    assert!(
        matches!(second, Err(UpstreamError::Overflow(_))),
        "{second:?}"
    );
    assert_eq!(metric(&upstreams, "envoy_cluster_upstream_cx_overflow"), 1);
    assert_eq!(
        metric(&upstreams, "envoy_cluster_circuit_breakers_default_cx_open"),
        1
    );
    drop(first);
    assert!(upstreams.connect_tcp(CLUSTER, None).await.is_ok());
}

fn outlier_cluster(addrs: &[SocketAddr], panic: PanicThreshold) -> crate::model::Cluster {
    let mut cluster = static_cluster(CLUSTER, addrs);
    cluster.outlier_detection = Some(OutlierDetection {
        consecutive_5xx: 2,
        max_ejection_percent: 100,
        ..OutlierDetection::default()
    });
    cluster.healthy_panic_threshold = panic;
    cluster
}

#[tokio::test]
async fn a_host_answering_5xx_is_ejected_and_shown_as_such() {
    let good = server(200, None).await;
    let bad = server(503, None).await;
    let upstreams = upstreams(vec![outlier_cluster(&[good, bad], PanicThreshold(0))]);
    let mut to_bad = 0;
    for _ in 0..4 {
        let (_, _, info) = fetch(&upstreams, CLUSTER, "api.test", None).await.unwrap();
        to_bad += usize::from(info.address == bad);
    }
    assert_eq!(to_bad, 2, "round robin until the second 503");
    for _ in 0..6 {
        let (status, _, info) = fetch(&upstreams, CLUSTER, "api.test", None).await.unwrap();
        assert_eq!(
            (status, info.address),
            (200, good),
            "the ejected host gets nothing"
        );
    }
    let status = &upstreams.describe()[0];
    let ejected: Vec<SocketAddr> = status
        .endpoints
        .iter()
        .filter(|e| e.ejected)
        .map(|e| e.address)
        .collect();
    assert_eq!(ejected, vec![bad]);
    assert_eq!(
        metric(
            &upstreams,
            "envoy_cluster_outlier_detection_ejections_active"
        ),
        1
    );
    assert_eq!(
        metric(
            &upstreams,
            "envoy_cluster_outlier_detection_ejections_enforced_consecutive_5xx"
        ),
        1
    );
    assert_eq!(
        metric(
            &upstreams,
            "envoy_cluster_outlier_detection_ejections_enforced_total"
        ),
        1
    );
}

#[tokio::test]
async fn with_every_host_ejected_panic_mode_or_no_healthy_upstream() {
    let bad = server(503, None).await;
    let upstreams = upstreams(vec![outlier_cluster(&[bad], PanicThreshold::DEFAULT)]);
    for _ in 0..3 {
        let (status, _, _) = fetch(&upstreams, CLUSTER, "api.test", None).await.unwrap();
        assert_eq!(
            status, 503,
            "below 50% healthy, Envoy balances over all hosts"
        );
    }
    assert!(upstreams.describe()[0].endpoints[0].ejected);
    assert_eq!(metric(&upstreams, "envoy_cluster_lb_healthy_panic"), 1);

    let upstreams = super::upstreams(vec![outlier_cluster(&[bad], PanicThreshold(0))]);
    for _ in 0..2 {
        fetch(&upstreams, CLUSTER, "api.test", None).await.unwrap();
    }
    let refused = fetch(&upstreams, CLUSTER, "api.test", None).await;
    assert!(
        matches!(refused, Err(UpstreamError::NoHealthyUpstream(_))),
        "{refused:?}"
    );
}

/// A cluster of `hosts`, the control plane marking those of `unhealthy`
/// UNHEALTHY.
fn cluster_with_health(
    hosts: &[SocketAddr],
    unhealthy: &[SocketAddr],
    panic: PanicThreshold,
) -> crate::model::Cluster {
    let mut cluster = static_cluster(CLUSTER, hosts);
    if let crate::model::cluster::Discovery::Static(assignment) = &mut cluster.discovery {
        for endpoint in &mut assignment.endpoints {
            let addr: SocketAddr = format!("{}:{}", endpoint.host, endpoint.port)
                .parse()
                .unwrap();
            endpoint.healthy = !unhealthy.contains(&addr);
        }
    }
    cluster.healthy_panic_threshold = panic;
    cluster
}

#[tokio::test]
async fn a_host_the_control_plane_marks_unhealthy_gets_no_requests() {
    let good = server(200, None).await;
    let marked = server(200, None).await;
    let third = server(200, None).await;
    let upstreams = upstreams(vec![cluster_with_health(
        &[good, marked, third],
        &[marked],
        PanicThreshold::DEFAULT,
    )]);
    for _ in 0..6 {
        let (_, _, info) = fetch(&upstreams, CLUSTER, "api.test", None).await.unwrap();
        assert_ne!(info.address, marked, "two of three healthy: no panic");
    }
    assert_eq!(metric(&upstreams, "envoy_cluster_lb_healthy_panic"), 0);
    let flags: Vec<(SocketAddr, bool)> = upstreams.describe()[0]
        .endpoints
        .iter()
        .map(|e| (e.address, e.eds_unhealthy))
        .collect();
    assert!(flags.contains(&(marked, true)) && flags.contains(&(good, false)));
}

#[tokio::test]
async fn too_few_hosts_marked_healthy_is_panic_mode_or_no_healthy_upstream() {
    let good = server(200, None).await;
    let marked = server(200, None).await;
    let other = server(200, None).await;
    let upstreams = upstreams(vec![cluster_with_health(
        &[good, marked, other],
        &[marked, other],
        PanicThreshold::DEFAULT,
    )]);
    let mut to_marked = 0;
    for _ in 0..6 {
        let (_, _, info) = fetch(&upstreams, CLUSTER, "api.test", None).await.unwrap();
        to_marked += usize::from(info.address != good);
    }
    assert_eq!(to_marked, 4, "one of three healthy: balanced over all");
    assert_eq!(metric(&upstreams, "envoy_cluster_lb_healthy_panic"), 6);

    let upstreams = super::upstreams(vec![cluster_with_health(
        &[marked],
        &[marked],
        PanicThreshold(0),
    )]);
    let refused = fetch(&upstreams, CLUSTER, "api.test", None).await;
    assert!(
        matches!(refused, Err(UpstreamError::NoHealthyUpstream(_))),
        "{refused:?}"
    );
}
