//! Upgrades through the connection manager against an upstream on
//! loopback that switches protocols and echoes: the upgrade headers go
//! upstream, the 101 comes back and the bytes flow both ways; a type the
//! configuration does not allow is Envoy's 403 and never reaches the
//! upstream; a refusal from the upstream is passed on and closes the
//! connection; an idle session ends at the stream idle timeout.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::time::{Instant, timeout};

use crate::model::http_timeouts::HttpTimeouts;
use crate::model::route::{
    ClusterTarget, Forward, PathMatch, Route, RouteAction, RouteConfig, RouteMatch, VirtualHost,
};
use crate::model::upgrade::{UpgradeConfigs, UpgradeType};
use crate::proxy::ProxyContext;
use crate::proxy::test_fixtures::fall_through_context;

use super::super::{Downstream, RouteSource, serve};

const PREFIX: &str = "outbound_0.0.0.0_80";
const GUARD: Duration = Duration::from_secs(10);

/// The request heads the upstream received.
type Seen = Arc<Mutex<Vec<String>>>;

/// An upstream that answers `GET /ws` asking for a WebSocket with a 101
/// and then echoes, and anything else with a 200.
async fn upstream() -> (SocketAddr, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Seen::default();
    let heads = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let heads = heads.clone();
            tokio::spawn(async move {
                let head = read_head(&mut socket).await;
                let switch =
                    head.starts_with("get /ws ") && head.contains("\r\nupgrade: websocket\r\n");
                heads.lock().push(head);
                if !switch {
                    let _ = socket
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nno")
                        .await;
                    return;
                }
                let _ = socket
                    .write_all(b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\r\n")
                    .await;
                let (mut read, mut write) = socket.split();
                let _ = tokio::io::copy(&mut read, &mut write).await;
            });
        }
    });
    (addr, seen)
}

/// Reads up to the end of a message head.
async fn read_head(io: &mut (impl AsyncRead + Unpin)) -> String {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0];
        if io.read(&mut byte).await.unwrap_or(0) == 0 {
            break;
        }
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).to_ascii_lowercase()
}

fn routes(upgrades: Vec<UpgradeType>) -> Arc<RouteConfig> {
    Arc::new(RouteConfig {
        name: "80".into(),
        virtual_hosts: vec![VirtualHost {
            name: "all".into(),
            domains: vec!["*".into()],
            routes: vec![Route {
                name: "default".into(),
                matcher: RouteMatch {
                    path: PathMatch::Prefix("/".into()),
                    case_sensitive: true,
                    headers: Vec::new(),
                    query: Vec::new(),
                },
                action: RouteAction::Forward(Forward {
                    target: ClusterTarget::Cluster("PassthroughCluster".into()),
                    timeout: None,
                    retry: None,
                    prefix_rewrite: None,
                    host_rewrite: None,
                    mirrors: Vec::new(),
                    hash_policy: Vec::new(),
                    upgrades,
                    cluster_not_found: 503,
                }),
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

/// A connection to the connection manager, captured on its way to
/// `upstream`, with the manager's and the route's upgrade settings.
fn connect(
    context: &Arc<ProxyContext>,
    upstream: SocketAddr,
    hcm: UpgradeConfigs,
    route: Vec<UpgradeType>,
    timeouts: HttpTimeouts,
) -> tokio::io::DuplexStream {
    let downstream = Arc::new(Downstream {
        local: Some(upstream),
        remote: Some("10.0.0.2:40000".parse().unwrap()),
        original_dst: Some(upstream),
        source: RouteSource::Chain {
            route_config_name: "80".into(),
            inline: Some(routes(route)),
            stat_prefix: PREFIX.into(),
            http_filters: Arc::default(),
            use_remote_address: false,
            path_normalization: Default::default(),
            server_header: Default::default(),
            suppress_envoy_headers: false,
            upgrades: hcm,
        },
        targets: Arc::default(),
        peer_identity: None,
        server_name: None,
        tls: false,
        timeouts,
    });
    let (client, proxy) = tokio::io::duplex(16 * 1024);
    tokio::spawn(serve(proxy, context.clone(), downstream));
    client
}

fn istio_websocket() -> UpgradeConfigs {
    UpgradeConfigs::new(vec![UpgradeType::new("websocket", true)])
}

fn upgrade_request(path: &str, protocol: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: echo.example\r\nConnection: Upgrade\r\nUpgrade: {protocol}\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

#[tokio::test]
async fn an_allowed_websocket_upgrade_is_switched_and_spliced_both_ways() {
    let (addr, seen) = upstream().await;
    let context = fall_through_context();
    let mut client = connect(
        &context,
        addr,
        istio_websocket(),
        Vec::new(),
        HttpTimeouts::default(),
    );
    client
        .write_all(upgrade_request("/ws", "websocket").as_bytes())
        .await
        .unwrap();
    let head = timeout(GUARD, read_head(&mut client)).await.unwrap();
    assert!(
        head.starts_with("http/1.1 101 switching protocols\r\n"),
        "{head}"
    );
    assert!(head.contains("upgrade: websocket\r\n"), "{head}");
    assert!(head.contains("connection: upgrade\r\n"), "{head}");
    // The upstream got the upgrade headers and the end-to-end ones.
    let upstream_head = seen.lock()[0].clone();
    assert!(
        upstream_head.contains("upgrade: websocket\r\n"),
        "{upstream_head}"
    );
    assert!(
        upstream_head.contains("connection: upgrade\r\n"),
        "{upstream_head}"
    );
    assert!(
        upstream_head.contains("sec-websocket-key: "),
        "{upstream_head}"
    );
    // After the 101, bytes (here, any bytes) go both ways untouched.
    client.write_all(b"\x81\x04ping").await.unwrap();
    let mut echoed = [0; 6];
    timeout(GUARD, client.read_exact(&mut echoed))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&echoed, b"\x81\x04ping");
    let stats = context.stats.downstream(&PREFIX.into());
    assert_eq!(stats.upgrades.cx_upgrades_total.load(Relaxed), 1);
    assert_eq!(stats.upgrades.cx_upgrades_active.load(Relaxed), 1);
    drop(client);
    timeout(GUARD, async {
        while stats.upgrades.cx_upgrades_active.load(Relaxed) != 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the session ends when the client closes");
}

#[tokio::test]
async fn an_upgrade_not_allowed_is_envoy_s_403_and_never_reaches_the_upstream() {
    let (addr, seen) = upstream().await;
    let context = fall_through_context();
    let cases = [
        // No upgrade_configs on the connection manager.
        (UpgradeConfigs::default(), Vec::new(), "websocket"),
        // A type the connection manager does not name.
        (istio_websocket(), Vec::new(), "spdy/3"),
        // The route disables what the connection manager enables.
        (
            istio_websocket(),
            vec![UpgradeType::new("WebSocket", false)],
            "websocket",
        ),
    ];
    for (hcm, route, protocol) in cases {
        let mut client = connect(&context, addr, hcm, route, HttpTimeouts::default());
        client
            .write_all(upgrade_request("/ws", protocol).as_bytes())
            .await
            .unwrap();
        let mut response = String::new();
        timeout(GUARD, client.read_to_string(&mut response))
            .await
            .expect("the connection closes after the 403")
            .unwrap();
        let response = response.to_ascii_lowercase();
        assert!(
            response.starts_with("http/1.1 403 forbidden\r\n"),
            "{response}"
        );
        assert!(response.contains("connection: close\r\n"), "{response}");
    }
    assert!(seen.lock().is_empty());
    let stats = context.stats.downstream(&PREFIX.into());
    assert_eq!(stats.upgrades.rq_ws_on_non_ws_route.load(Relaxed), 3);
    assert_eq!(stats.upgrades.cx_upgrades_total.load(Relaxed), 0);
}

#[tokio::test]
async fn a_route_may_enable_what_its_connection_manager_does_not() {
    let (addr, _seen) = upstream().await;
    let context = fall_through_context();
    let mut client = connect(
        &context,
        addr,
        UpgradeConfigs::new(vec![UpgradeType::new("websocket", false)]),
        vec![UpgradeType::new("websocket", true)],
        HttpTimeouts::default(),
    );
    client
        .write_all(upgrade_request("/ws", "WebSocket").as_bytes())
        .await
        .unwrap();
    let head = timeout(GUARD, read_head(&mut client)).await.unwrap();
    assert!(head.starts_with("http/1.1 101 "), "{head}");
}

#[tokio::test]
async fn an_upstream_that_does_not_switch_is_answered_as_it_is_and_the_connection_closes() {
    let (addr, seen) = upstream().await;
    let context = fall_through_context();
    let mut client = connect(
        &context,
        addr,
        istio_websocket(),
        Vec::new(),
        HttpTimeouts::default(),
    );
    client
        .write_all(upgrade_request("/plain", "websocket").as_bytes())
        .await
        .unwrap();
    let mut response = String::new();
    timeout(GUARD, client.read_to_string(&mut response))
        .await
        .expect("the connection closes after the response")
        .unwrap();
    let response = response.to_ascii_lowercase();
    assert!(response.starts_with("http/1.1 200 ok\r\n"), "{response}");
    assert!(response.ends_with("\r\n\r\nno"), "{response}");
    assert!(seen.lock()[0].contains("upgrade: websocket\r\n"));
}

#[tokio::test]
async fn an_h2c_upgrade_is_dropped_and_the_request_served_plainly() {
    let (addr, seen) = upstream().await;
    let context = fall_through_context();
    let mut client = connect(
        &context,
        addr,
        UpgradeConfigs::default(),
        Vec::new(),
        HttpTimeouts::default(),
    );
    let request = "GET /plain HTTP/1.1\r\nHost: echo.example\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n";
    client.write_all(request.as_bytes()).await.unwrap();
    let head = timeout(GUARD, read_head(&mut client)).await.unwrap();
    assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}");
    let upstream_head = seen.lock()[0].clone();
    assert!(!upstream_head.contains("upgrade"), "{upstream_head}");
    assert!(!upstream_head.contains("http2-settings"), "{upstream_head}");
}

#[tokio::test]
async fn an_idle_upgraded_stream_ends_at_the_stream_idle_timeout() {
    let (addr, _seen) = upstream().await;
    let context = fall_through_context();
    let idle = Duration::from_millis(300);
    let timeouts = HttpTimeouts {
        stream_idle: Some(idle),
        ..HttpTimeouts::default()
    };
    let mut client = connect(&context, addr, istio_websocket(), Vec::new(), timeouts);
    client
        .write_all(upgrade_request("/ws", "websocket").as_bytes())
        .await
        .unwrap();
    let head = timeout(GUARD, read_head(&mut client)).await.unwrap();
    assert!(head.starts_with("http/1.1 101 "), "{head}");
    let upgraded = Instant::now();
    let mut rest = Vec::new();
    timeout(GUARD, client.read_to_end(&mut rest))
        .await
        .expect("the idle session is closed")
        .unwrap();
    assert!(upgraded.elapsed() >= idle);
    assert!(rest.is_empty());
    let stats = context.stats.downstream(&PREFIX.into());
    assert_eq!(stats.timeouts.rq_idle_timeout.load(Relaxed), 1);
}
