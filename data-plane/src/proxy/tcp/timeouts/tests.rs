//! The TCP proxy's timeouts on loopback sockets, as Envoy's: idle means no
//! byte either way; the maximum duration counts from the start whatever
//! flows. Timings are asserted as lower bounds only.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

use super::{Ending, Limits, copy};

/// Both ends of a loopback TCP connection.
async fn socket_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap());
    let (client, accepted) = tokio::join!(client, listener.accept());
    (client.unwrap(), accepted.unwrap().0)
}

/// A client, an upstream server, and the proxy's copy between them with
/// `limits`, running.
async fn proxied(limits: Limits) -> (TcpStream, TcpStream, tokio::task::JoinHandle<super::Copied>) {
    let (client, mut downstream) = socket_pair().await;
    let (mut upstream, server) = socket_pair().await;
    let copying = tokio::spawn(async move { copy(&mut downstream, &mut upstream, limits).await });
    (client, server, copying)
}

fn limits(idle: Option<Duration>, max_duration: Option<Duration>) -> Limits {
    Limits {
        idle,
        max_duration,
        started: Instant::now(),
        downstream_end_closes: false,
    }
}

#[tokio::test]
async fn an_idle_connection_is_closed_on_both_sides_after_the_idle_timeout() {
    let idle = Duration::from_millis(200);
    let (mut client, mut server, copying) = proxied(limits(Some(idle), None)).await;
    client.write_all(b"ping").await.unwrap();
    let mut buf = [0; 4];
    server.read_exact(&mut buf).await.unwrap();
    server.write_all(b"pong!").await.unwrap();
    let mut reply = [0; 5];
    client.read_exact(&mut reply).await.unwrap();
    let last_byte = Instant::now();

    let copied = copying.await.unwrap();
    assert!(last_byte.elapsed() >= idle - Duration::from_millis(5));
    assert_eq!(copied.ending, Ending::IdleTimeout);
    assert_eq!((copied.received, copied.sent), (4, 5));
    assert_eq!(
        copied.ending.termination_details(),
        Some("tcp_session_idle_timeout")
    );
    assert_eq!(copied.ending.response_flag(), None, "Envoy sets no flag");
    assert_eq!(client.read(&mut buf).await.unwrap(), 0, "client sees EOF");
    assert_eq!(server.read(&mut buf).await.unwrap(), 0, "upstream sees EOF");
}

#[tokio::test]
async fn bytes_either_way_restart_the_idle_timer() {
    let idle = Duration::from_millis(300);
    let started = Instant::now();
    let (mut client, mut server, copying) = proxied(limits(Some(idle), None)).await;
    let mut buf = [0; 1];
    for round in 0..6 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if round % 2 == 0 {
            client.write_all(b"a").await.unwrap();
            server.read_exact(&mut buf).await.unwrap();
        } else {
            server.write_all(b"b").await.unwrap();
            client.read_exact(&mut buf).await.unwrap();
        }
        assert!(!copying.is_finished(), "closed while bytes kept moving");
    }
    let copied = copying.await.unwrap();
    assert_eq!(copied.ending, Ending::IdleTimeout);
    assert!(started.elapsed() >= Duration::from_millis(600) + idle - Duration::from_millis(5));
    assert_eq!((copied.received, copied.sent), (3, 3));
}

#[tokio::test]
async fn the_maximum_duration_closes_a_busy_connection_with_flag_dt() {
    let max = Duration::from_millis(300);
    let limits = limits(Some(Duration::from_secs(60)), Some(max));
    let (mut client, mut server, copying) = proxied(limits).await;
    let echo = tokio::spawn(async move {
        let mut buf = [0; 64];
        while let Ok(n) = server.read(&mut buf).await {
            if n == 0 || server.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    });
    let mut buf = [0; 4];
    loop {
        if client.write_all(b"busy").await.is_err() {
            break;
        }
        match client.read_exact(&mut buf).await {
            Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(_) => break,
        }
    }
    let copied = copying.await.unwrap();
    assert!(limits.started.elapsed() >= max);
    assert_eq!(copied.ending, Ending::MaxDuration);
    assert_eq!(copied.ending.response_flag(), Some("DT"));
    assert_eq!(
        copied.ending.termination_details(),
        Some("max_connection_duration_reached")
    );
    echo.await.unwrap();
}

#[tokio::test]
async fn without_limits_the_copy_ends_when_both_sides_have_closed() {
    let (mut client, mut server, copying) = proxied(limits(None, None)).await;
    client.write_all(b"request").await.unwrap();
    client.shutdown().await.unwrap();
    let mut request = Vec::new();
    server.read_to_end(&mut request).await.unwrap();
    assert_eq!(request, b"request", "a half close is passed on");
    server.write_all(b"response").await.unwrap();
    drop(server);
    let mut response = Vec::new();
    client.read_to_end(&mut response).await.unwrap();
    assert_eq!(response, b"response");
    let copied = copying.await.unwrap();
    assert_eq!(copied.ending, Ending::Closed);
    assert_eq!((copied.received, copied.sent), (7, 8));
    assert_eq!(copied.ending.termination_details(), None);
    assert!(copied.downstream_ended_first);
}

#[tokio::test]
async fn an_upstream_that_ends_first_is_told_apart() {
    let (mut client, mut server, copying) = proxied(limits(None, None)).await;
    server.write_all(b"bye").await.unwrap();
    server.shutdown().await.unwrap();
    let mut response = Vec::new();
    client.read_to_end(&mut response).await.unwrap();
    assert_eq!(response, b"bye");
    drop(client);
    drop(server);
    let copied = copying.await.unwrap();
    assert_eq!(copied.ending, Ending::Closed);
    assert!(!copied.downstream_ended_first);
}

#[tokio::test]
async fn an_upgraded_stream_ends_with_its_client_on_both_sides() {
    let (mut client, mut server, copying) = proxied(Limits {
        downstream_end_closes: true,
        ..limits(None, None)
    })
    .await;
    client.write_all(b"last frame").await.unwrap();
    client.shutdown().await.unwrap();
    let mut request = Vec::new();
    server.read_to_end(&mut request).await.unwrap();
    assert_eq!(
        request, b"last frame",
        "what came before the end is passed on"
    );
    // A guard against a copy that waits for the server, not a bound on
    // its time.
    let copied = tokio::time::timeout(Duration::from_secs(30), copying)
        .await
        .expect("the copy waits for the server to close")
        .unwrap();
    assert_eq!(copied.ending, Ending::Closed);
    assert!(copied.downstream_ended_first);
    // The copy ended without waiting for the server: both sides are
    // closed, so the client reads its end and the server cannot answer.
    let mut response = Vec::new();
    client.read_to_end(&mut response).await.unwrap();
    assert!(response.is_empty());
}
