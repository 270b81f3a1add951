//! HTTP/1.1 connections in a drain, on loopback sockets: an idle
//! keep-alive connection is closed; a connection accepted while the
//! drain lets listeners accept is served once, with `Connection: close`;
//! without a drain, keep-alive goes on; an update that changes a filter
//! chain drains its connections and leaves those of unchanged chains.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::model::RunningConfig;
use crate::model::listener::{ChainAction, FilterChain, Listener, TcpProxy};
use crate::model::route::{ClusterTarget, PathMatch, RouteAction, RouteConfig};
use crate::proxy::drain::{DrainScope, DrainSettings, DrainStrategy, ServerDrain, StopAccepting};
use crate::proxy::http::{Downstream, RouteSource, serve};
use crate::proxy::stats::Stats;
use crate::proxy::test_fixtures::{empty_context, route, route_config};

/// Routes answering every request 200 `ok` from the proxy itself.
fn direct_ok() -> Arc<RouteConfig> {
    let ok = RouteAction::Direct {
        status: 200,
        body: Some("ok".into()),
    };
    let routes = vec![route("ok", PathMatch::Prefix("/".into()), ok)];
    Arc::new(route_config("all", &["*"], routes))
}

/// A client connected to the connection manager over loopback, its
/// connection counted in `server`'s drain.
async fn connect(server: &Arc<ServerDrain>) -> TcpStream {
    connect_on(server, None).await
}

/// A client connected as [`connect`], its connection on the filter chain
/// `chain` of `listener` when given.
async fn connect_on(
    server: &Arc<ServerDrain>,
    chain: Option<(&Arc<Listener>, &FilterChain)>,
) -> TcpStream {
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
            upgrades: Default::default(),
        },
        targets: Arc::default(),
        peer_identity: None,
        server_name: None,
        tls: false,
        timeouts: crate::model::http_timeouts::HttpTimeouts::default(),
    });
    let connection = server.connection(&Arc::new(DrainScope::default()));
    if let Some((listener, chain)) = chain {
        connection.join_chain(listener, chain, Some(listener));
    }
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

/// A listener with chains `a` and `b`, `b`'s stat prefix `b_prefix`.
fn two_chains(b_prefix: &str) -> Arc<Listener> {
    let chain = |name: &str, port: u16, prefix: &str| FilterChain {
        name: name.into(),
        destination_port: Some(port),
        destination_prefixes: Vec::new(),
        tls: None,
        server_names: Vec::new(),
        action: ChainAction::Tcp(TcpProxy {
            stat_prefix: prefix.into(),
            target: ClusterTarget::Cluster("outbound|80||a.example".into()),
            file_access_logs: Arc::new([]),
            grpc_access_log: None,
            idle_timeout: None,
            max_downstream_connection_duration: None,
            hash_source_ip: false,
        }),
        egress_policy: None,
    };
    Arc::new(Listener {
        name: "0.0.0.0_80".into(),
        address: "0.0.0.0:80".parse().unwrap(),
        bind_to_port: false,
        use_original_dst: false,
        inspect_tls: false,
        filters_timeout: Default::default(),
        filter_chains: vec![chain("a", 80, "a"), chain("b", 81, b_prefix)],
        default_chain: None,
    })
}

/// Applies `listener` as the whole config; starts the drains it asks.
fn apply(server: &ServerDrain, listener: &Arc<Listener>) {
    let mut config = RunningConfig::default();
    config
        .listeners
        .insert(listener.name.clone(), listener.clone());
    for scope in server.chains.update(&config) {
        scope.start();
    }
}

#[tokio::test]
async fn an_update_drains_the_connections_of_a_changed_chain_only() {
    let server = drain();
    let old = two_chains("b");
    apply(&server, &old);
    let mut unchanged = connect_on(&server, Some((&old, &old.filter_chains[0]))).await;
    let mut changed = connect_on(&server, Some((&old, &old.filter_chains[1]))).await;
    let first = get(&mut unchanged).await;
    assert!(!first.contains("connection: close"), "{first}");

    apply(&server, &two_chains("b_changed"));

    // The connection of the changed chain lived until the update; its next
    // request is answered with `Connection: close`, and it closes.
    let last = get(&mut changed).await;
    assert!(last.starts_with("http/1.1 200 ok\r\n"), "{last}");
    assert!(last.contains("connection: close\r\n"), "{last}");
    assert!(closed(&mut changed).await);
    // The connection of the unchanged chain goes on.
    for _ in 0..2 {
        let response = get(&mut unchanged).await;
        assert!(!response.contains("connection: close"), "{response}");
    }
}
