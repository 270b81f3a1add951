//! The cluster's HTTP connection policy as Envoy applies it:
//! `max_connection_duration` drains connections by age, and
//! `use_downstream_protocol_config` speaks the downstream request's HTTP
//! version upstream.

use std::time::Duration;

use http_body_util::BodyExt;

use super::{TestServer, fetch, get, serve, settle, static_cluster, upstreams};
use crate::upstream::{DownstreamVersion, Upstreams};

const CLUSTER: &str = "outbound|80||httpbin.test";

fn drained(upstreams: &Upstreams) -> u64 {
    let mut out = String::new();
    upstreams.render_stats(&mut out);
    let series = format!(
        "envoy_cluster_upstream_cx_max_duration_reached{{envoy_cluster_name=\"{CLUSTER}\"}} "
    );
    out.lines()
        .find_map(|line| line.strip_prefix(&series))
        .unwrap_or_else(|| panic!("no {series} in\n{out}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_connection_past_max_connection_duration_takes_no_new_request() {
    let server = TestServer::start(None, false).await;
    let mut cluster = static_cluster(CLUSTER, &[server.addr]);
    let max = Duration::from_millis(300);
    cluster.max_connection_duration = Some(max);
    let upstreams = upstreams(vec![cluster]);
    let started = tokio::time::Instant::now();
    for _ in 0..2 {
        fetch(&upstreams, CLUSTER, "httpbin.test", None)
            .await
            .unwrap();
        settle(&upstreams).await;
    }
    assert_eq!(server.accepted(), 1, "a young connection is reused");
    tokio::time::sleep(max * 2).await;
    let (status, _, _) = fetch(&upstreams, CLUSTER, "httpbin.test", None)
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert!(started.elapsed() >= max);
    assert_eq!(server.accepted(), 2, "the old connection was drained");
    assert_eq!(drained(&upstreams), 1);
}

#[tokio::test]
async fn an_idle_connection_closes_at_max_connection_duration_on_its_own() {
    let server = TestServer::start(None, false).await;
    let mut cluster = static_cluster(CLUSTER, &[server.addr]);
    let max = Duration::from_millis(300);
    cluster.max_connection_duration = Some(max);
    let upstreams = upstreams(vec![cluster]);
    let started = tokio::time::Instant::now();
    fetch(&upstreams, CLUSTER, "httpbin.test", None)
        .await
        .unwrap();
    settle(&upstreams).await;
    // No request comes to make the pool look at the connection again.
    let deadline = started + Duration::from_secs(10);
    while server.closed() == 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(server.closed(), 1, "the idle connection was closed");
    assert!(started.elapsed() >= max, "not before its age limit");
    assert_eq!(server.accepted(), 1);
    assert_eq!(drained(&upstreams), 1);
}

#[tokio::test]
async fn without_max_connection_duration_a_connection_lives_on() {
    let server = TestServer::start(None, false).await;
    let upstreams = upstreams(vec![static_cluster(CLUSTER, &[server.addr])]);
    for _ in 0..2 {
        fetch(&upstreams, CLUSTER, "httpbin.test", None)
            .await
            .unwrap();
        settle(&upstreams).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(server.accepted(), 1);
    assert_eq!(drained(&upstreams), 0);
}

/// A plain server speaking HTTP/2 to a client that opens with the HTTP/2
/// preface, HTTP/1.1 to others.
async fn either_protocol_server() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut preface = [0u8; 4];
                let Ok(n) = tcp.peek(&mut preface).await else {
                    return;
                };
                serve(tcp, &preface[..n] == b"PRI ").await;
            });
        }
    });
    addr
}

async fn version_seen(upstreams: &Upstreams, downstream: Option<http::Version>) -> String {
    let mut request = get("httpbin.test", "/get");
    if let Some(version) = downstream {
        request.extensions_mut().insert(DownstreamVersion(version));
    }
    let (response, _) = upstreams.send_http(CLUSTER, request, None).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let seen = String::from_utf8(body.to_vec()).unwrap();
    seen.rsplit("version=").next().unwrap().to_string()
}

#[tokio::test]
async fn use_downstream_protocol_config_speaks_the_requests_version() {
    let addr = either_protocol_server().await;
    let mut cluster = static_cluster(CLUSTER, &[addr]);
    cluster.follow_downstream_protocol = true;
    let upstreams = upstreams(vec![cluster]);
    assert_eq!(
        version_seen(&upstreams, Some(http::Version::HTTP_2)).await,
        "HTTP/2.0"
    );
    assert_eq!(
        version_seen(&upstreams, Some(http::Version::HTTP_11)).await,
        "HTTP/1.1"
    );
    assert_eq!(
        version_seen(&upstreams, Some(http::Version::HTTP_10)).await,
        "HTTP/1.1",
        "Envoy sends HTTP/1.0 requests upstream as HTTP/1.1"
    );
}

#[tokio::test]
async fn an_explicit_protocol_ignores_the_downstream_version() {
    let addr = either_protocol_server().await;
    let upstreams = upstreams(vec![static_cluster(CLUSTER, &[addr])]);
    assert_eq!(
        version_seen(&upstreams, Some(http::Version::HTTP_2)).await,
        "HTTP/1.1"
    );
}
