//! Plain HTTP upstreams: keep-alive reuse, pools kept across updates, load
//! balancing, EDS, no healthy upstream, connect failures, original destination,
//! raw TCP connections and HTTP/2, the agent's end of each connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use shared::workload::EndpointWorkload;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::model::cluster::{Discovery, LbPolicy};

use super::*;

/// A port with nothing listening on it.
async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    addr
}

#[tokio::test]
async fn static_cluster_reuses_a_keep_alive_connection() {
    let server = TestServer::start(None, false).await;
    let upstreams = upstreams(vec![static_cluster(
        "outbound|80||httpbin.test",
        &[server.addr],
    )]);

    let (status, seen, info) = fetch(
        &upstreams,
        "outbound|80||httpbin.test",
        "httpbin.test",
        None,
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    assert_eq!(seen, "host=httpbin.test authority=- version=HTTP/1.1");
    assert_eq!(info.address, server.addr);
    settle(&upstreams).await;
    let (status, _, _) = fetch(
        &upstreams,
        "outbound|80||httpbin.test",
        "httpbin.test",
        None,
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        server.accepted(),
        1,
        "the second request should reuse the pooled connection"
    );

    let status = &upstreams.describe()[0];
    assert_eq!(status.discovery, "STATIC");
    assert_eq!(status.endpoints[0].rq_total, 2);
    assert_eq!(status.endpoints[0].cx_total, 1);
    assert_eq!(status.endpoints[0].rq_active, 0);
}

#[tokio::test]
async fn a_connection_is_reused_once_its_streamed_body_is_read() {
    let server = TestServer::start(None, false).await;
    let upstreams = upstreams(vec![static_cluster("large", &[server.addr])]);
    for _ in 0..2 {
        let (response, _) = upstreams
            .send_http("large", get("large.test", LARGE_PATH), None)
            .await
            .unwrap();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body.len(), LARGE_BODY);
        settle(&upstreams).await;
    }
    assert_eq!(
        server.accepted(),
        1,
        "the connection goes back to the pool once its body is read"
    );
}

#[tokio::test]
async fn an_unchanged_cluster_keeps_its_pool_across_updates() {
    let server = TestServer::start(None, false).await;
    let other = TestServer::start(None, false).await;
    let upstreams = upstreams(vec![static_cluster("a", &[server.addr])]);
    fetch(&upstreams, "a", "a.test", None).await.unwrap();
    settle(&upstreams).await;

    upstreams.update(&config(vec![
        static_cluster("a", &[server.addr]),
        static_cluster("b", &[other.addr]),
    ]));
    fetch(&upstreams, "a", "a.test", None).await.unwrap();
    assert_eq!(
        server.accepted(),
        1,
        "unchanged cluster must keep its pooled connection"
    );

    let mut changed = static_cluster("a", &[server.addr]);
    changed.connect_timeout = Duration::from_secs(7);
    upstreams.update(&config(vec![changed]));
    settle(&upstreams).await;
    fetch(&upstreams, "a", "a.test", None).await.unwrap();
    assert_eq!(server.accepted(), 2, "a changed cluster starts a new pool");
    let err = fetch(&upstreams, "b", "b.test", None).await.unwrap_err();
    assert!(
        matches!(err, UpstreamError::UnknownCluster(ref c) if c == "b"),
        "{err}"
    );
    assert_eq!(err.response_flag(), "NC");
}

#[tokio::test]
async fn round_robin_spreads_requests_over_hosts() {
    let first = TestServer::start(None, false).await;
    let second = TestServer::start(None, false).await;
    let upstreams = upstreams(vec![static_cluster("c", &[first.addr, second.addr])]);
    let mut used = Vec::new();
    for _ in 0..4 {
        used.push(
            fetch(&upstreams, "c", "c.test", None)
                .await
                .unwrap()
                .2
                .address,
        );
        settle(&upstreams).await;
    }
    assert_eq!(used, vec![first.addr, second.addr, first.addr, second.addr]);
    assert_eq!((first.accepted(), second.accepted()), (1, 1));
}

#[tokio::test]
async fn eds_cluster_takes_endpoints_from_the_config() {
    let server = TestServer::start(None, false).await;
    let mut eds = cluster(
        "outbound|80||eds.test",
        Discovery::Eds {
            service_name: "eds.test".into(),
        },
    );
    eds.lb = LbPolicy::LeastRequest;
    let upstreams = upstreams(vec![eds.clone()]);
    let err = fetch(&upstreams, "outbound|80||eds.test", "eds.test", None)
        .await
        .unwrap_err();
    assert!(matches!(err, UpstreamError::NoHealthyUpstream(_)), "{err}");
    assert_eq!(err.response_flag(), "UH");

    let mut with_endpoints = config(vec![eds]);
    let ip = server.addr.ip().to_string();
    with_endpoints.endpoints.insert(
        "eds.test".into(),
        Arc::new(assignment("eds.test", &[(ip.as_str(), server.addr.port())])),
    );
    upstreams.update(&with_endpoints);
    let (status, _, info) = fetch(&upstreams, "outbound|80||eds.test", "eds.test", None)
        .await
        .unwrap();
    assert_eq!((status, info.address), (200, server.addr));
}

#[tokio::test]
async fn empty_cluster_has_no_healthy_upstream() {
    let upstreams = upstreams(vec![cluster(
        "BlackHoleCluster",
        Discovery::Static(LoadAssignment::default()),
    )]);
    let err = fetch(&upstreams, "BlackHoleCluster", "x.test", None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, UpstreamError::NoHealthyUpstream(ref c) if c == "BlackHoleCluster"),
        "{err}"
    );
    assert_eq!(err.response_flag(), "UH");
    assert!(
        upstreams
            .connect_tcp("BlackHoleCluster", None)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_closed_port_is_a_connect_failure() {
    let addr = closed_port().await;
    let upstreams = upstreams(vec![static_cluster("closed", &[addr])]);
    let err = fetch(&upstreams, "closed", "closed.test", None)
        .await
        .unwrap_err();
    let UpstreamError::Connect {
        addr: failed,
        source,
    } = &err
    else {
        panic!("expected a connect error, got {err}");
    };
    assert_eq!(*failed, addr);
    assert_eq!(source.kind(), std::io::ErrorKind::ConnectionRefused);
    assert_eq!(err.response_flag(), "UF");
    assert!(err.is_connect_failure());
    let status = &upstreams.describe()[0].endpoints[0];
    assert_eq!((status.cx_connect_fail, status.rq_error), (1, 1));

    let err = upstreams.connect_tcp("closed", None).await.unwrap_err();
    assert!(matches!(err, UpstreamError::Connect { .. }), "{err}");
}

#[tokio::test]
async fn original_dst_connects_to_the_original_destination() {
    let server = TestServer::start(None, false).await;
    let upstreams = upstreams(vec![cluster("PassthroughCluster", Discovery::OriginalDst)]);
    let (status, _, info) = fetch(
        &upstreams,
        "PassthroughCluster",
        "any.test",
        Some(server.addr),
    )
    .await
    .unwrap();
    assert_eq!((status, info.address), (200, server.addr));
    let err = fetch(&upstreams, "PassthroughCluster", "any.test", None)
        .await
        .unwrap_err();
    assert!(matches!(err, UpstreamError::NoHealthyUpstream(_)), "{err}");
    let status = &upstreams.describe()[0];
    assert_eq!(status.discovery, "ORIGINAL_DST");
    assert_eq!(status.endpoints.len(), 1);
    assert_eq!(status.endpoints[0].address, server.addr);
}

#[tokio::test]
async fn connect_tcp_opens_a_plain_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let echo = tokio::spawn(async move {
        let (mut conn, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 4];
        conn.read_exact(&mut buf).await.unwrap();
        conn.write_all(&buf).await.unwrap();
    });
    let upstreams = upstreams(vec![
        static_cluster("tcp", &[addr]),
        cluster("PassthroughCluster", Discovery::OriginalDst),
    ]);
    let (mut stream, used) = upstreams.connect_tcp("tcp", None).await.unwrap();
    assert_eq!(used, addr);
    stream.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    stream.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ping");
    echo.await.unwrap();

    let closed = closed_port().await;
    let err = upstreams
        .connect_tcp("PassthroughCluster", Some(closed))
        .await
        .unwrap_err();
    assert!(
        matches!(err, UpstreamError::Connect { addr, .. } if addr == closed),
        "{err}"
    );
}

#[tokio::test]
async fn http2_cluster_sends_the_host_as_authority() {
    let server = TestServer::start(None, true).await;
    let mut h2 = static_cluster("h2", &[server.addr]);
    h2.http2 = true;
    let upstreams = upstreams(vec![h2]);
    let (status, seen, _) = fetch(&upstreams, "h2", "grpc.test:8080", None)
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert!(seen.contains("authority=grpc.test:8080"), "{seen}");
    assert!(seen.ends_with("version=HTTP/2.0"), "{seen}");
    fetch(&upstreams, "h2", "grpc.test:8080", None)
        .await
        .unwrap();
    assert_eq!(server.accepted(), 1, "HTTP/2 multiplexes on one connection");
}

/// A server that answers every HTTP/1.1 request, and sends each TCP
/// connection, the address the connection came from.
async fn peer_echo() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut tcp, peer)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = [0u8; 1024];
                let _ = tcp.read(&mut head).await;
                let peer = peer.to_string();
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{peer}",
                    peer.len()
                );
                let _ = tcp.write_all(reply.as_bytes()).await;
                let _ = tcp.shutdown().await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn the_agents_end_of_the_connection_is_told_for_requests_and_tcp() {
    let server = peer_echo().await;
    let upstreams = upstreams(vec![static_cluster("echo", &[server])]);
    let (_, seen_by_server, info) = fetch(&upstreams, "echo", "echo.test", None).await.unwrap();
    assert_eq!(info.local.map(|a| a.to_string()), Some(seen_by_server));

    let (mut tcp, _) = upstreams.connect_tcp("echo", None).await.unwrap();
    let local = tcp.get_ref().local_addr();
    tcp.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    let mut reply = String::new();
    tcp.read_to_string(&mut reply).await.unwrap();
    let seen_by_server = reply.rsplit("\r\n").next().unwrap().to_string();
    assert_eq!(local.map(|a| a.to_string()), Some(seen_by_server));
}

#[tokio::test]
async fn the_picked_hosts_workload_comes_with_the_request_and_the_connection() {
    let server = TestServer::start(None, false).await;
    let gateway = Arc::new(
        EndpointWorkload::parse("istio-egressgateway;istio-system;istio-egressgateway;;Kubernetes")
            .unwrap(),
    );
    let ip = server.addr.ip().to_string();
    let mut hosts = assignment("gateway", &[(&ip, server.addr.port())]);
    hosts.endpoints[0].peer = Some(gateway.clone());
    let upstreams = upstreams(vec![cluster("gateway", Discovery::Static(hosts))]);
    let (status, _, info) = fetch(&upstreams, "gateway", "httpbin.test", None)
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(info.peer, Some(gateway.clone()));
    let (_, info) = upstreams
        .connect_tcp_hashed("gateway", None, None)
        .await
        .unwrap();
    assert_eq!((info.address, info.peer), (server.addr, Some(gateway)));
    assert_eq!(
        info.principals, None,
        "a plain connection has no identities"
    );
}
