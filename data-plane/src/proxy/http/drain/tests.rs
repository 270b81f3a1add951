//! HTTP/1.1 connections in a drain, on loopback sockets: an idle
//! keep-alive connection is closed; a connection accepted while the
//! drain lets listeners accept is served once, with `Connection: close`;
//! without a drain, keep-alive goes on.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::model::route::{PathMatch, Route, RouteAction, RouteConfig, RouteMatch, VirtualHost};
use crate::proxy::drain::{DrainScope, DrainSettings, DrainStrategy, ServerDrain, StopAccepting};
use crate::proxy::http::{Downstream, RouteSource, serve};
use crate::proxy::stats::Stats;
use crate::proxy::test_fixtures::empty_context;

/// Routes answering every request 200 `ok` from the proxy itself.
fn direct_ok() -> Arc<RouteConfig> {
    Arc::new(RouteConfig {
        name: "80".into(),
        virtual_hosts: vec![VirtualHost {
            name: "all".into(),
            domains: vec!["*".into()],
            routes: vec![Route {
                name: "ok".into(),
                matcher: RouteMatch {
                    path: PathMatch::Prefix("/".into()),
                    case_sensitive: true,
                    headers: Vec::new(),
                    query: Vec::new(),
                },
                action: RouteAction::Direct {
                    status: 200,
                    body: Some("ok".into()),
                },
                decorator: None,
                request_headers_to_add: Vec::new(),
                request_headers_to_remove: Vec::new(),
                response_headers_to_add: Vec::new(),
                response_headers_to_remove: Vec::new(),
                egress_policy: None,
                filter_configs: Default::default(),
            }],
            include_attempt_count: false,
            require_tls: false,
        }],
    })
}

/// A client connected to the connection manager over loopback, its
/// connection counted in `server`'s drain.
async fn connect(server: &Arc<ServerDrain>) -> TcpStream {
    let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (client, accepted) = tokio::join!(
        TcpStream::connect(socket.local_addr().unwrap()),
        socket.accept()
    );
    let (stream, remote) = accepted.unwrap();
    let downstream = Arc::new(Downstream {
        local: stream.local_addr().ok(),
        remote: Some(remote),
        original_dst: None,
        source: RouteSource::Chain {
            route_config_name: "80".into(),
            inline: Some(direct_ok()),
            stat_prefix: "outbound_0.0.0.0_80".into(),
            http_filters: Arc::default(),
            use_remote_address: false,
            path_normalization: Default::default(),
            server_header: Default::default(),
            suppress_envoy_headers: false,
        },
        targets: Arc::default(),
        peer_identity: None,
        server_name: None,
        tls: false,
        timeouts: crate::model::http_timeouts::HttpTimeouts::default(),
    });
    let connection = server.connection(&Arc::new(DrainScope::default()));
    tokio::spawn(connection.run(serve(stream, empty_context(None), downstream)));
    client.unwrap()
}

fn drain() -> Arc<ServerDrain> {
    Arc::new(ServerDrain::new(
        DrainSettings {
            time: Duration::from_secs(45),
            strategy: DrainStrategy::Immediate,
        },
        Arc::new(Stats::default()),
    ))
}

/// Sends one keep-alive GET and reads its response head (lower-cased)
/// and its 2-byte body.
async fn get(client: &mut TcpStream) -> String {
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: a.example\r\n\r\n")
        .await
        .unwrap();
    let mut response = Vec::new();
    let mut byte = [0; 1];
    while !response.ends_with(b"\r\n\r\nok") {
        let n = tokio::time::timeout(Duration::from_secs(5), client.read(&mut byte))
            .await
            .expect("a response")
            .unwrap();
        assert_eq!(n, 1, "closed before the whole response: {response:?}");
        response.push(byte[0]);
    }
    String::from_utf8(response).unwrap().to_ascii_lowercase()
}

/// Whether the proxy closes `client` (EOF) within a few seconds.
async fn closed(client: &mut TcpStream) -> bool {
    let mut buf = [0; 1];
    matches!(
        tokio::time::timeout(Duration::from_secs(5), client.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

#[tokio::test]
async fn without_a_drain_a_keep_alive_connection_serves_request_after_request() {
    let server = drain();
    let mut client = connect(&server).await;
    for _ in 0..2 {
        let response = get(&mut client).await;
        assert!(response.starts_with("http/1.1 200 ok\r\n"), "{response}");
        assert!(!response.contains("connection: close"), "{response}");
    }
}

#[tokio::test]
async fn a_drain_closes_an_idle_keep_alive_connection() {
    let server = drain();
    let mut client = connect(&server).await;
    let response = get(&mut client).await;
    assert!(!response.contains("connection: close"), "{response}");
    server.start(StopAccepting::Now);
    assert!(closed(&mut client).await);
    tokio::time::timeout(Duration::from_secs(5), server.scope.idle())
        .await
        .expect("the connection is no longer counted");
}

#[tokio::test]
async fn a_connection_accepted_in_a_graceful_drain_is_served_once_with_connection_close() {
    let server = drain();
    server.start(StopAccepting::AfterDrainTime);
    let mut client = connect(&server).await;
    let response = get(&mut client).await;
    assert!(response.starts_with("http/1.1 200 ok\r\n"), "{response}");
    assert!(response.contains("connection: close\r\n"), "{response}");
    assert!(closed(&mut client).await);
}
