//! Explicit proxy mode on loopback, through the outbound listener's accept
//! loop: REGISTRY_ONLY with only `*.wild.test` allowed, attacked with
//! authorities whose port hides another host; heads split or late; every
//! method Envoy knows; h2c with prior knowledge.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http_body_util::Empty;
use hyper::body::Bytes;
use serde_json::{Value, json};
use shared::type_url;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::proxy::ProxyContext;
use crate::proxy::drain::{DrainScope, DrainSettings, ServerDrain};
use crate::proxy::outbound::accept_loop;
use crate::proxy::stats::Stats;
use crate::store::ConfigStore;
use crate::testing::resources::pack;
use crate::upstream::{DnsConfig, Upstreams};

/// An address of our own on loopback, port 80, that the attacks aim at.
const HIDDEN: &str = "127.0.0.77";

const HCM: &str = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";

/// Istio's sidecar with one ServiceEntry, the wildcard `*.wild.test`
/// (resolution NONE) on port 80: its clusters, `virtualOutbound` (its
/// fall-through to `fall_through`, BlackHoleCluster for REGISTRY_ONLY,
/// else PassthroughCluster) and the `0.0.0.0_80` listener whose routes
/// `80` allow only it (else `block_all`, or `allow_any`), its connection
/// manager's fields `extra_hcm` added.
pub(super) fn wild_mesh(fall_through: &str, extra_hcm: Value) -> Arc<ProxyContext> {
    let port = 80;
    let upstreams = Arc::new(Upstreams::new(DnsConfig {
        server: Some("127.0.0.1:9".parse().unwrap()),
    }));
    let hook_upstreams = upstreams.clone();
    let context = Arc::new(ProxyContext {
        store: Arc::new(ConfigStore::new(Box::new(move |config| {
            hook_upstreams.update(config);
            Ok(())
        }))),
        upstreams,
        stats: Arc::new(Stats::default()),
        activity: None,
        access_log_service: None,
    });
    let store = &context.store;
    let wild = format!("outbound|{port}||*.wild.test");
    let clusters = [
        json!({"name": "BlackHoleCluster", "type": "STATIC", "connectTimeout": "1s"}),
        json!({"name": "PassthroughCluster", "type": "ORIGINAL_DST", "lbPolicy": "CLUSTER_PROVIDED", "connectTimeout": "1s"}),
        json!({"name": wild, "type": "ORIGINAL_DST", "lbPolicy": "CLUSTER_PROVIDED", "connectTimeout": "1s"}),
    ];
    let clusters: Vec<_> = clusters
        .iter()
        .map(|c| pack(type_url::CLUSTER, c).unwrap())
        .collect();
    store.update(type_url::CLUSTER, &clusters).unwrap();
    let mut hcm = json!({
        "@type": HCM,
        "statPrefix": format!("outbound_0.0.0.0_{port}"),
        "rds": {"routeConfigName": port.to_string(), "configSource": {"ads": {}}},
    });
    if let (Value::Object(hcm), Value::Object(extra)) = (&mut hcm, extra_hcm) {
        hcm.extend(extra);
    }
    let listeners = [
        json!({
            "name": "virtualOutbound",
            "address": {"socketAddress": {"address": "0.0.0.0", "portValue": 15001}},
            "useOriginalDst": true,
            "defaultFilterChain": {
                "name": "PassthroughFilterChain",
                "filters": [{"name": "envoy.filters.network.tcp_proxy", "typedConfig": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
                    "statPrefix": fall_through, "cluster": fall_through}}],
            },
        }),
        json!({
            "name": format!("0.0.0.0_{port}"),
            "address": {"socketAddress": {"address": "0.0.0.0", "portValue": port}},
            "bindToPort": false,
            "filterChains": [{"filters": [{
                "name": "envoy.filters.network.http_connection_manager",
                "typedConfig": hcm,
            }]}],
        }),
    ];
    let listeners: Vec<_> = listeners
        .iter()
        .map(|l| pack(type_url::LISTENER, l).unwrap())
        .collect();
    store.update(type_url::LISTENER, &listeners).unwrap();
    let routes = json!({
        "name": port.to_string(),
        "virtualHosts": [
            {"name": format!("*.wild.test:{port}"), "domains": ["*.wild.test"],
             "routes": [{"match": {"prefix": "/"}, "route": {"cluster": wild}}]},
            fall_through_host(fall_through),
        ],
    });
    store
        .update(type_url::ROUTE, &[pack(type_url::ROUTE, &routes).unwrap()])
        .unwrap();
    context
}

/// The virtual host that takes what no service does: `block_all`, or
/// `allow_any` to PassthroughCluster.
fn fall_through_host(cluster: &str) -> Value {
    if cluster == "BlackHoleCluster" {
        json!({"name": "block_all", "domains": ["*"],
               "routes": [{"name": "block_all", "match": {"prefix": "/"}, "directResponse": {"status": 502}}]})
    } else {
        json!({"name": "allow_any", "domains": ["*"],
               "routes": [{"name": "allow_any", "match": {"prefix": "/"}, "route": {"cluster": cluster}}]})
    }
}

/// Runs `virtualOutbound`'s accept loop on a free loopback port.
pub(super) async fn start_proxy(context: Arc<ProxyContext>) -> std::net::SocketAddr {
    let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let server = Arc::new(ServerDrain::new(
        DrainSettings::default(),
        Arc::new(Stats::default()),
    ));
    tokio::spawn(accept_loop(
        socket,
        "virtualOutbound".into(),
        context,
        (server, Arc::new(DrainScope::default())),
        Arc::default(),
    ));
    addr
}

/// Sends `request` to the proxy at `proxy` and reads its whole answer.
pub(super) async fn exchange(proxy: std::net::SocketAddr, request: &[u8]) -> String {
    let mut client = TcpStream::connect(proxy).await.unwrap();
    client.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let _ = client.read_to_end(&mut answer).await;
    String::from_utf8_lossy(&answer).into_owned()
}

/// A server on `addr` that counts the connections it accepts and answers
/// each with one `200` naming the request line.
async fn counting_server(addr: &str) -> (u16, Arc<AtomicUsize>) {
    let socket = TcpListener::bind(addr).await.unwrap();
    let port = socket.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = socket.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = vec![0; 4096];
                let n = stream.read(&mut buf).await.unwrap_or(0);
                let line = String::from_utf8_lossy(&buf[..n])
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_string();
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{line}",
                    line.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
            });
        }
    });
    (port, accepted)
}

/// The first line of a request or answer, for the test's output.
fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

fn assert_400(answer: &str, request: &str) {
    assert!(
        answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
        "{request:?} was answered {answer:?}"
    );
}

#[tokio::test]
async fn a_port_that_hides_a_blocked_host_is_refused_and_never_connected() {
    let (_, hidden) = counting_server(&format!("{HIDDEN}:80")).await;
    let proxy = start_proxy(wild_mesh("BlackHoleCluster", json!({}))).await;
    let attacks = [
        format!(
            "GET http://{HIDDEN}:.wild.test/ HTTP/1.1\r\nHost: {HIDDEN}:.wild.test\r\nConnection: close\r\n\r\n"
        ),
        format!("GET / HTTP/1.1\r\nHost: {HIDDEN}:.wild.test\r\nConnection: close\r\n\r\n"),
        format!("GET / HTTP/1.1\r\nHost: ok.wild.test@{HIDDEN}\r\nConnection: close\r\n\r\n"),
        format!("GET / HTTP/1.1\r\nHost: {HIDDEN}:70000.wild.test\r\nConnection: close\r\n\r\n"),
        format!("CONNECT {HIDDEN}:.wild.test HTTP/1.1\r\nHost: {HIDDEN}:.wild.test\r\n\r\n"),
    ];
    for attack in &attacks {
        let answer = exchange(proxy, attack.as_bytes()).await;
        assert_400(&answer, attack);
        eprintln!("{attack:?} -> {}", first_line(&answer));
    }
    assert_eq!(
        hidden.load(Ordering::SeqCst),
        0,
        "the hidden host was reached"
    );
    let blocked = exchange(
        proxy,
        format!("GET http://{HIDDEN}/ HTTP/1.1\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await;
    assert!(blocked.starts_with("HTTP/1.1 502 "), "{blocked}");
    assert_eq!(
        hidden.load(Ordering::SeqCst),
        0,
        "the hidden host was reached"
    );
}

#[tokio::test]
async fn heads_split_short_late_or_of_any_envoy_method_are_served() {
    let (port, _) = counting_server("127.0.0.1:0").await;
    let proxy = start_proxy(wild_mesh("PassthroughCluster", json!({}))).await;
    for method in ["PROPFIND", "MKCOL", "PURGE", "GET"] {
        let request =
            format!("{method} http://127.0.0.1:{port}/dav HTTP/1.1\r\nConnection: close\r\n\r\n");
        let answer = exchange(proxy, request.as_bytes()).await;
        assert!(
            answer.starts_with("HTTP/1.1 200 OK\r\n"),
            "{method}: {answer}"
        );
        assert!(
            answer.ends_with(&format!("{method} /dav HTTP/1.1")),
            "{method}: {answer}"
        );
        eprintln!("{method} -> {}", first_line(&answer));
    }
    let lower = exchange(proxy, b"get http://a.wild.test/ HTTP/1.1\r\n\r\n").await;
    assert_400(&lower, "get");
    assert!(lower.contains("content-length: 0\r\n"), "{lower}");
    eprintln!("lowercase get -> {}", first_line(&lower));

    // A CONNECT head in two segments, the first shorter than `CONNECT `.
    let mut client = TcpStream::connect(proxy).await.unwrap();
    client.write_all(b"CON").await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rest = format!("NECT 127.0.0.1:{port} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n");
    client.write_all(rest.as_bytes()).await.unwrap();
    let mut answer = vec![0; 39];
    client.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer[..], b"HTTP/1.1 200 Connection established\r\n\r\n");
    eprintln!(
        "CONNECT split after \"CON\" -> {}",
        first_line(&String::from_utf8_lossy(&answer))
    );
    client
        .write_all(b"GET /tunnel HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    client.read_to_string(&mut answer).await.unwrap();
    assert!(answer.ends_with("GET /tunnel HTTP/1.1"), "{answer}");
}

#[tokio::test]
async fn a_first_byte_after_five_seconds_is_still_served() {
    let context = wild_mesh("BlackHoleCluster", json!({}));
    let proxy = start_proxy(context).await;
    let mut client = TcpStream::connect(proxy).await.unwrap();
    let started = tokio::time::Instant::now();
    tokio::time::sleep(Duration::from_millis(5500)).await;
    client
        .write_all(b"GET http://no.such.host/ HTTP/1.1\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    client.read_to_string(&mut answer).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(5500));
    // REGISTRY_ONLY's answer: the request was read and routed.
    assert!(
        answer.starts_with("HTTP/1.1 502 Bad Gateway\r\n"),
        "{answer}"
    );
    eprintln!(
        "first byte after {:?} -> {}",
        Duration::from_millis(5500),
        first_line(&answer)
    );
}

#[tokio::test]
async fn h2c_with_prior_knowledge_is_served_as_http2() {
    let context = wild_mesh("BlackHoleCluster", json!({}));
    let proxy = start_proxy(context).await;
    let stream = TcpStream::connect(proxy).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let request = http::Request::get("http://blocked.test/")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.version(), http::Version::HTTP_2);
    assert_eq!(response.status(), 502);
    eprintln!(
        "h2c prior knowledge -> {:?} {}",
        response.version(),
        response.status()
    );
}

#[tokio::test]
async fn an_open_connection_counts_in_its_listeners_active_gauge_until_it_closes() {
    use std::sync::atomic::Ordering::Relaxed;
    let context = wild_mesh("BlackHoleCluster", json!({}));
    let proxy = start_proxy(context.clone()).await;
    let active = || {
        context
            .stats
            .listeners
            .listener(proxy)
            .cx_active
            .load(Relaxed)
    };
    let client = TcpStream::connect(proxy).await.unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while active() != 1 {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the open connection is counted");
    drop(client);
    tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while active() != 0 {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the closed connection is no longer counted");
}
