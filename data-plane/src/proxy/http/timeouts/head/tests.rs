//! The request head timeout on a connection's bytes: 408 `request header
//! timeout` for a head left unfinished, never for a complete head, an idle
//! connection or HTTP/2.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::time::timeout;

use super::*;

const TIMEOUT: Duration = Duration::from_secs(60);

fn watched(
    timeouts: &Arc<AtomicUsize>,
) -> (DuplexStream, HeadTimeoutIo<DuplexStream>, Arc<Streams>) {
    let (client, proxy) = tokio::io::duplex(4096);
    let streams = Streams::new();
    let fired = timeouts.clone();
    let io = HeadTimeoutIo::new(
        proxy,
        Some(TIMEOUT),
        streams.clone(),
        Box::new(move || {
            fired.fetch_add(1, Relaxed);
        }),
    );
    (client, io, streams)
}

/// Reads what the proxy side gets until it ends (the head timed out).
async fn read_to_end(io: &mut HeadTimeoutIo<DuplexStream>) -> Vec<u8> {
    let mut read = Vec::new();
    io.read_to_end(&mut read).await.unwrap();
    read
}

#[tokio::test(start_paused = true)]
async fn an_unfinished_head_gets_envoy_s_408_after_the_timeout_and_the_connection_ends() {
    let fired = Arc::new(AtomicUsize::new(0));
    let (mut client, mut io, _streams) = watched(&fired);
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: a\r\n")
        .await
        .unwrap();
    let start = Instant::now();
    let read = read_to_end(&mut io).await;
    assert!(start.elapsed() >= TIMEOUT, "the head had its full minute");
    assert_eq!(read, b"GET / HTTP/1.1\r\nHost: a\r\n");
    assert_eq!(fired.load(Relaxed), 1);
    let mut reply = vec![0; REPLY.len()];
    client.read_exact(&mut reply).await.unwrap();
    let reply = String::from_utf8(reply).unwrap();
    assert!(
        reply.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{reply}"
    );
    assert!(reply.contains("connection: close\r\n"), "{reply}");
    assert!(reply.ends_with("\r\n\r\nrequest header timeout"), "{reply}");
}

#[tokio::test(start_paused = true)]
async fn a_complete_head_stops_the_clock() {
    let fired = Arc::new(AtomicUsize::new(0));
    let (mut client, mut io, streams) = watched(&fired);
    client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    let mut buf = [0; 64];
    assert!(io.read(&mut buf).await.unwrap() > 0);
    // The connection manager got the request, and has answered it.
    drop(streams.open());
    assert!(
        timeout(TIMEOUT * 3, io.read(&mut buf)).await.is_err(),
        "an idle keep-alive connection is not a slow head"
    );
    assert_eq!(fired.load(Relaxed), 0);
}

#[tokio::test(start_paused = true)]
async fn a_connection_that_sends_nothing_is_left_to_the_idle_timeout() {
    let fired = Arc::new(AtomicUsize::new(0));
    let (_client, mut io, _streams) = watched(&fired);
    let mut buf = [0; 64];
    assert!(timeout(TIMEOUT * 3, io.read(&mut buf)).await.is_err());
    assert_eq!(fired.load(Relaxed), 0);
}

#[tokio::test(start_paused = true)]
async fn bytes_of_a_request_in_flight_do_not_start_the_clock() {
    let fired = Arc::new(AtomicUsize::new(0));
    let (mut client, mut io, streams) = watched(&fired);
    client
        .write_all(b"POST / HTTP/1.1\r\ncontent-length: 10\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0; 64];
    assert!(io.read(&mut buf).await.unwrap() > 0);
    let _request = streams.open();
    client.write_all(b"12345").await.unwrap();
    assert_eq!(io.read(&mut buf).await.unwrap(), 5);
    assert!(timeout(TIMEOUT * 3, io.read(&mut buf)).await.is_err());
    assert_eq!(fired.load(Relaxed), 0);
}

#[tokio::test(start_paused = true)]
async fn http2_frames_are_not_heads() {
    let fired = Arc::new(AtomicUsize::new(0));
    let (mut client, mut io, _streams) = watched(&fired);
    client.write_all(&PREFACE[..10]).await.unwrap();
    client.write_all(&PREFACE[10..]).await.unwrap();
    client
        .write_all(b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    let mut buf = [0; 64];
    let mut read = 0;
    while read < PREFACE.len() + 9 {
        read += io.read(&mut buf).await.unwrap();
    }
    assert!(timeout(TIMEOUT * 3, io.read(&mut buf)).await.is_err());
    assert_eq!(fired.load(Relaxed), 0);
}

/// Reads what the proxy side gets until the head times out, failing the
/// test if it never does.
async fn read_until_timed_out(io: &mut HeadTimeoutIo<DuplexStream>) -> Vec<u8> {
    timeout(TIMEOUT * 10, read_to_end(io))
        .await
        .expect("the head never timed out")
}

#[tokio::test(start_paused = true)]
async fn a_slow_second_head_on_a_keep_alive_connection_times_out_as_the_first() {
    let fired = Arc::new(AtomicUsize::new(0));
    let (mut client, mut io, streams) = watched(&fired);
    client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    let mut buf = [0; 64];
    assert!(io.read(&mut buf).await.unwrap() > 0);
    drop(streams.open());
    // A while later, the next request starts and stalls.
    tokio::time::sleep(TIMEOUT * 2).await;
    client
        .write_all(b"GET /2 HTTP/1.1\r\nHost: a")
        .await
        .unwrap();
    let start = Instant::now();
    read_until_timed_out(&mut io).await;
    assert!(start.elapsed() >= TIMEOUT);
    assert_eq!(fired.load(Relaxed), 1);
}

#[tokio::test(start_paused = true)]
async fn a_pipelined_head_sent_with_the_first_has_its_full_time_once_the_first_is_answered() {
    let fired = Arc::new(AtomicUsize::new(0));
    let (mut client, mut io, streams) = watched(&fired);
    client
        .write_all(b"GET / HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\nHost: a")
        .await
        .unwrap();
    let mut buf = [0; 64];
    assert!(io.read(&mut buf).await.unwrap() > 0);
    // The first request takes longer than the head timeout to answer:
    // the second head's clock has not started.
    let first = streams.open();
    assert!(timeout(TIMEOUT * 3, io.read(&mut buf)).await.is_err());
    assert_eq!(fired.load(Relaxed), 0);
    let answered = Instant::now();
    drop(first);
    read_until_timed_out(&mut io).await;
    assert!(answered.elapsed() >= TIMEOUT);
    assert_eq!(fired.load(Relaxed), 1);
}

#[tokio::test(start_paused = true)]
async fn a_head_begun_while_the_request_before_is_in_flight_times_out_once_it_is_answered() {
    let fired = Arc::new(AtomicUsize::new(0));
    let (mut client, mut io, streams) = watched(&fired);
    client
        .write_all(b"POST / HTTP/1.1\r\ncontent-length: 5\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0; 64];
    assert!(io.read(&mut buf).await.unwrap() > 0);
    let first = streams.open();
    client.write_all(b"12345GET /2 HTTP/1.1\r\n").await.unwrap();
    assert!(io.read(&mut buf).await.unwrap() > 0);
    let reader = tokio::spawn(async move { read_until_timed_out(&mut io).await });
    tokio::time::sleep(TIMEOUT / 2).await;
    let answered = Instant::now();
    drop(first);
    reader.await.unwrap();
    assert!(answered.elapsed() >= TIMEOUT);
    assert_eq!(fired.load(Relaxed), 1);
}

#[tokio::test(start_paused = true)]
async fn after_a_request_body_an_idle_connection_is_not_a_slow_head() {
    let fired = Arc::new(AtomicUsize::new(0));
    let (mut client, mut io, streams) = watched(&fired);
    client
        .write_all(b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0; 128];
    assert!(io.read(&mut buf).await.unwrap() > 0);
    drop(streams.open());
    assert!(timeout(TIMEOUT * 3, io.read(&mut buf)).await.is_err());
    assert_eq!(fired.load(Relaxed), 0);
}
