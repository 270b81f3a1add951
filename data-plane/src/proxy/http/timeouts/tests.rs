//! The connection manager's timeouts on a served connection: a head left
//! unfinished gets Envoy's 408 and the connection closes; an idle
//! keep-alive connection is closed by the idle timeout, never answered
//! 408; a connection past `max_connection_duration` is closed; each is
//! counted under Envoy's name.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::time::Instant;

use crate::model::http_timeouts::HttpTimeouts;
use crate::model::route::{RouteConfig, VirtualHost};
use crate::proxy::ProxyContext;
use crate::proxy::test_fixtures::empty_context;

use super::super::{Downstream, RouteSource, serve};

const PREFIX: &str = "outbound_0.0.0.0_80";

/// Serves a connection with `timeouts`, routes that answer 404 to
/// everything.
fn served(timeouts: HttpTimeouts) -> (DuplexStream, Arc<ProxyContext>) {
    let context = empty_context(None);
    let downstream = Arc::new(Downstream {
        local: Some("10.0.0.1:80".parse().unwrap()),
        remote: Some("10.0.0.2:40000".parse().unwrap()),
        original_dst: None,
        source: RouteSource::Chain {
            route_config_name: "80".into(),
            inline: Some(Arc::new(RouteConfig {
                name: "80".into(),
                virtual_hosts: Vec::<VirtualHost>::new(),
            })),
            stat_prefix: PREFIX.into(),
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
        timeouts,
    });
    let (client, proxy) = tokio::io::duplex(16 * 1024);
    tokio::spawn(serve(proxy, context.clone(), downstream));
    (client, context)
}

fn short(head: u64, idle: u64) -> HttpTimeouts {
    HttpTimeouts {
        request_headers: Some(Duration::from_millis(head)),
        idle: Some(Duration::from_millis(idle)),
        ..HttpTimeouts::default()
    }
}

async fn read_to_end(client: &mut DuplexStream) -> String {
    let mut read = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), client.read_to_end(&mut read))
        .await
        .expect("the connection ends")
        .unwrap();
    String::from_utf8(read).unwrap()
}

#[tokio::test]
async fn an_unfinished_head_is_answered_408_and_the_connection_closed() {
    let (mut client, context) = served(short(300, 60_000));
    let start = Instant::now();
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: a\r\n")
        .await
        .unwrap();
    let reply = read_to_end(&mut client).await;
    assert!(start.elapsed() >= Duration::from_millis(300));
    assert!(
        reply.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{reply}"
    );
    assert!(reply.ends_with("\r\n\r\nrequest header timeout"), "{reply}");
    let stats = context.stats.downstream(&PREFIX.into());
    assert_eq!(stats.timeouts.rq_header_timeout.load(Relaxed), 1);
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_by_the_idle_timeout_without_a_408() {
    let (mut client, context) = served(short(100, 600));
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0; 12];
    client.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 404");
    let start = Instant::now();
    let rest = read_to_end(&mut client).await;
    assert!(start.elapsed() >= Duration::from_millis(500));
    assert!(!rest.contains("408"), "{rest}");
    let stats = context.stats.downstream(&PREFIX.into());
    assert_eq!(stats.timeouts.cx_idle_timeout.load(Relaxed), 1);
    assert_eq!(stats.timeouts.rq_header_timeout.load(Relaxed), 0);
}

#[tokio::test]
async fn a_connection_past_its_maximum_duration_is_closed() {
    let (mut client, context) = served(HttpTimeouts {
        max_connection_duration: Some(Duration::from_millis(300)),
        ..HttpTimeouts::default()
    });
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    let start = Instant::now();
    let read = read_to_end(&mut client).await;
    assert!(read.starts_with("HTTP/1.1 404"), "{read}");
    assert!(start.elapsed() >= Duration::from_millis(250));
    let stats = context.stats.downstream(&PREFIX.into());
    assert_eq!(stats.timeouts.cx_max_duration_reached.load(Relaxed), 1);
}
