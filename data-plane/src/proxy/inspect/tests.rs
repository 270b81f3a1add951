//! The TLS inspector under a client that sends part of a ClientHello: one
//! that then half-closes, or resets, is closed at once; one that stalls is
//! closed at the listener filter timeout (or goes on without SNI when the
//! listener says so); waiting never polls the bytes already pending, so
//! the number of peeks is bounded by what the client sent, not by time.

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

use super::{Hello, HelloReader};
use crate::model::listener::FiltersTimeout;
use crate::proxy::sni::tests::client_hello;
use crate::proxy::stats::listener::stat_name;
use crate::proxy::test_fixtures::{capture_once, fall_through_context, fall_through_outbound};

/// A guard against a test hanging; never a measure of speed.
const GUARD: Duration = Duration::from_secs(20);
/// Bytes of a ClientHello: the record header and a little of the hello.
const PARTIAL: usize = 20;

/// A connected pair on loopback: (client, server side).
async fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (server, _) = listener.accept().await.unwrap();
    (client, server)
}

/// Reads `stream` with `timeout`, within the guard; returns the outcome and
/// the number of peeks.
async fn read(stream: &TcpStream, timeout: Option<Duration>) -> (Hello, usize) {
    let mut reader = HelloReader::default();
    let hello = tokio::time::timeout(GUARD, reader.read(stream, timeout))
        .await
        .expect("the inspector decided");
    (hello, reader.peeks)
}

#[tokio::test]
async fn a_partial_hello_then_a_half_close_is_decided_at_once() {
    let (mut client, server) = pair().await;
    client
        .write_all(&client_hello(Some("a.example"))[..PARTIAL])
        .await
        .unwrap();
    client.shutdown().await.unwrap();
    let (hello, peeks) = read(&server, Some(GUARD)).await;
    assert_eq!(hello, Hello::Closed);
    // The bytes (perhaps not yet all there), then the half close.
    assert!(peeks <= 4, "{peeks} peeks");
}

#[tokio::test]
async fn a_client_that_closes_without_a_byte_is_closed() {
    let (client, server) = pair().await;
    drop(client);
    let (hello, peeks) = read(&server, Some(GUARD)).await;
    assert_eq!(hello, Hello::Closed);
    assert!(peeks <= 2, "{peeks} peeks");
}

#[tokio::test]
async fn a_stalled_partial_hello_waits_for_the_timeout_without_polling() {
    let (mut client, server) = pair().await;
    client
        .write_all(&client_hello(Some("a.example"))[..PARTIAL])
        .await
        .unwrap();
    let timeout = Duration::from_millis(500);
    let start = Instant::now();
    let (hello, peeks) = read(&server, Some(timeout)).await;
    assert_eq!(hello, Hello::TimedOut);
    assert!(start.elapsed() >= timeout, "decided before the timeout");
    // Each peek follows new bytes: the partial hello, at most in two
    // wake-ups. A loop polling the pending bytes peeks hundreds of times.
    assert!(peeks <= 4, "{peeks} peeks while waiting {timeout:?}");
    eprintln!(
        "a stalled partial ClientHello: {peeks} peeks, timed out after {:?}",
        start.elapsed()
    );
    drop(client);
}

#[tokio::test]
async fn a_hello_sent_in_pieces_is_read_with_one_peek_per_piece() {
    let (mut client, server) = pair().await;
    let hello = client_hello(Some("Pieces.Example"));
    let pieces: Vec<Vec<u8>> = hello
        .chunks(hello.len() / 4 + 1)
        .map(<[u8]>::to_vec)
        .collect();
    let count = pieces.len();
    let sender = tokio::spawn(async move {
        for piece in pieces {
            client.write_all(&piece).await.unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        client
    });
    let (decided, peeks) = read(&server, Some(GUARD)).await;
    assert_eq!(decided, Hello::Tls(Some("pieces.example".into())));
    assert!(peeks <= 2 * count, "{peeks} peeks for {count} pieces");
    drop(sender.await.unwrap());
}

#[tokio::test]
async fn without_a_timeout_a_stalled_hello_still_ends_when_the_client_resets() {
    let (mut client, server) = pair().await;
    client
        .write_all(&client_hello(None)[..PARTIAL])
        .await
        .unwrap();
    let reader = tokio::spawn(async move { read(&server, None).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    client.set_zero_linger().unwrap();
    drop(client);
    let (hello, peeks) = reader.await.unwrap();
    assert_eq!(hello, Hello::Closed);
    assert!(peeks <= 4, "{peeks} peeks");
}

#[tokio::test]
async fn not_tls_is_decided_from_the_first_byte() {
    let (mut client, server) = pair().await;
    client.write_all(b"G").await.unwrap();
    let (hello, _) = read(&server, Some(GUARD)).await;
    assert_eq!(hello, Hello::NotTls);
}

/// An upstream that records what it receives, for the passthrough.
async fn recording_upstream() -> (SocketAddr, tokio::task::JoinHandle<Vec<u8>>) {
    let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = upstream.local_addr().unwrap();
    let received = tokio::spawn(async move {
        let (mut stream, _) = upstream.accept().await.unwrap();
        let mut got = Vec::new();
        let _ = stream.read_to_end(&mut got).await;
        got
    });
    (addr, received)
}

/// A captured connection on a TLS-inspecting `virtualOutbound` whose only
/// chain is the passthrough, with the filter timeout `filters_timeout`.
async fn inspecting_listener(
    filters_timeout: FiltersTimeout,
    upstream: SocketAddr,
) -> (TcpStream, std::sync::Arc<crate::proxy::ProxyContext>) {
    let context = fall_through_context();
    let mut listener = fall_through_outbound("PassthroughCluster", None, false);
    listener.inspect_tls = true;
    listener.filters_timeout = filters_timeout;
    let addr = capture_once(listener, upstream, context.clone()).await;
    (TcpStream::connect(addr).await.unwrap(), context)
}

/// The client's read until the proxy closes: the end of the stream,
/// within the guard.
async fn assert_closed(client: &mut TcpStream) {
    let mut rest = Vec::new();
    let read = tokio::time::timeout(GUARD, client.read_to_end(&mut rest))
        .await
        .expect("the proxy closed the connection");
    assert_eq!(read.unwrap(), 0, "a clean end of stream");
}

#[tokio::test]
async fn a_captured_partial_hello_then_half_close_is_closed_and_counted() {
    let (upstream, _received) = recording_upstream().await;
    let (mut client, context) = inspecting_listener(FiltersTimeout::default(), upstream).await;
    client
        .write_all(&client_hello(Some("a.example"))[..PARTIAL])
        .await
        .unwrap();
    client.shutdown().await.unwrap();
    assert_closed(&mut client).await;
    let stats = &context.stats.listeners.tls_inspector;
    assert_eq!(stats.connection_closed.load(Relaxed), 1);
}

#[tokio::test]
async fn a_captured_stalled_hello_is_closed_at_the_listener_filter_timeout() {
    let (upstream, _received) = recording_upstream().await;
    let timeout = Duration::from_millis(300);
    let filters_timeout = FiltersTimeout {
        timeout: Some(timeout),
        continue_on_timeout: false,
    };
    let (mut client, context) = inspecting_listener(filters_timeout, upstream).await;
    client
        .write_all(&client_hello(Some("a.example"))[..PARTIAL])
        .await
        .unwrap();
    let start = Instant::now();
    assert_closed(&mut client).await;
    assert!(start.elapsed() >= timeout, "closed before the timeout");
    let listener = context
        .stats
        .listeners
        .listener("0.0.0.0:15001".parse().unwrap());
    assert_eq!(listener.pre_cx_timeout.load(Relaxed), 1);
    let mut rendered = String::new();
    context.stats.render(&mut rendered);
    let line = format!(
        "envoy_listener_downstream_pre_cx_timeout{{envoy_listener_address=\"{}\"}} 1",
        stat_name("0.0.0.0:15001".parse().unwrap())
    );
    assert!(rendered.lines().any(|l| l == line), "{rendered}");
}

/// istiod's outbound listeners continue on the timeout: the chain is
/// chosen without SNI and the bytes flow on untouched.
#[tokio::test]
async fn continuing_on_the_timeout_passes_the_bytes_on_without_sni() {
    let (upstream, received) = recording_upstream().await;
    let filters_timeout = FiltersTimeout {
        timeout: Some(Duration::from_millis(200)),
        continue_on_timeout: true,
    };
    let (mut client, _context) = inspecting_listener(filters_timeout, upstream).await;
    let partial = client_hello(Some("a.example"))[..PARTIAL].to_vec();
    client.write_all(&partial).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    client.shutdown().await.unwrap();
    let got = tokio::time::timeout(GUARD, received)
        .await
        .expect("the upstream got the connection")
        .unwrap();
    assert_eq!(got, partial);
}
