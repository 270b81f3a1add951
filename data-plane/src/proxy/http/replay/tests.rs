//! The retry buffer as Envoy's router keeps it: every attempt gets the
//! whole body, a body past the limit is sent on once and counted as
//! `retry_or_shadow_abandoned`, and one passing it during a backoff ends
//! the wait.

use std::time::Duration;

use futures::channel::mpsc;
use http_body_util::StreamBody;

use super::*;

type Sender = mpsc::UnboundedSender<Result<Frame<Bytes>, hyper::Error>>;

/// A downstream body fed chunk by chunk.
fn live() -> (Sender, Body) {
    let (sender, receiver) = mpsc::unbounded();
    (sender, StreamBody::new(receiver).boxed())
}

fn send(sender: &Sender, data: &'static [u8]) {
    sender
        .unbounded_send(Ok(Frame::data(Bytes::from_static(data))))
        .unwrap();
}

async fn read_all(body: Body) -> (Vec<u8>, Option<HeaderMap>) {
    let collected = body.collect().await.unwrap();
    let trailers = collected.trailers().cloned();
    (collected.to_bytes().to_vec(), trailers)
}

fn abandoned(stats: &ClusterStats) -> u64 {
    stats.retry_or_shadow_abandoned.load(Ordering::Relaxed)
}

#[tokio::test]
async fn every_attempt_is_sent_the_whole_body_and_its_trailers() {
    let (sender, source) = live();
    let stats = Arc::new(ClusterStats::default());
    let replay = Replay::new(source, 1024, stats.clone());
    send(&sender, b"hello ");
    send(&sender, b"world");
    let mut trailers = HeaderMap::new();
    trailers.insert("x-checksum", "1".parse().unwrap());
    sender
        .unbounded_send(Ok(Frame::trailers(trailers.clone())))
        .unwrap();
    drop(sender);
    let first = read_all(replay.attempt()).await;
    assert_eq!(first, (b"hello world".to_vec(), Some(trailers.clone())));
    assert!(replay.replayable());
    let second = replay.attempt();
    assert_eq!(second.size_hint().exact(), Some(11));
    assert_eq!(read_all(second).await, first);
    assert_eq!(abandoned(&stats), 0);
}

#[tokio::test]
async fn a_retry_sent_before_the_body_ends_gets_what_was_read_then_the_rest() {
    let (sender, source) = live();
    let replay = Replay::new(source, 1024, Arc::new(ClusterStats::default()));
    send(&sender, b"early ");
    let mut first = replay.attempt();
    let frame = first.frame().await.unwrap().unwrap();
    assert_eq!(frame.into_data().unwrap(), "early ");
    let second = replay.attempt();
    send(&sender, b"late");
    drop(sender);
    assert_eq!(read_all(second).await.0, b"early late");
}

#[tokio::test]
async fn a_body_past_the_limit_goes_on_once_and_is_no_longer_replayable() {
    let (sender, source) = live();
    let stats = Arc::new(ClusterStats::default());
    let replay = Replay::new(source, 8, stats.clone());
    send(&sender, b"12345");
    send(&sender, b"6789");
    drop(sender);
    // Envoy gives up when what it keeps plus the new data passes the
    // limit: 5 + 4 > 8.
    assert_eq!(read_all(replay.attempt()).await.0, b"123456789");
    assert!(!replay.replayable());
    assert_eq!(abandoned(&stats), 1);
}

#[tokio::test]
async fn a_body_at_the_limit_is_kept() {
    let (sender, source) = live();
    let stats = Arc::new(ClusterStats::default());
    let replay = Replay::new(source, 8, stats.clone());
    send(&sender, b"1234");
    send(&sender, b"5678");
    drop(sender);
    read_all(replay.attempt()).await;
    assert!(replay.replayable());
    assert_eq!(read_all(replay.attempt()).await.0, b"12345678");
    assert_eq!(abandoned(&stats), 0);
}

#[tokio::test]
async fn an_earlier_attempt_stops_once_a_retry_starts() {
    let (sender, source) = live();
    let replay = Replay::new(source, 1024, Arc::new(ClusterStats::default()));
    let mut first = replay.attempt();
    let _second = replay.attempt();
    send(&sender, b"data");
    let polled = tokio::time::timeout(Duration::from_millis(50), first.frame()).await;
    assert!(polled.is_err(), "the superseded attempt yielded a frame");
}

#[tokio::test]
async fn a_backoff_reads_on_and_ends_when_the_body_passes_the_limit() {
    let (sender, source) = live();
    let stats = Arc::new(ClusterStats::default());
    let replay = Replay::new(source, 8, stats.clone());
    send(&sender, b"12345");
    let waiting = tokio::time::timeout(Duration::from_millis(50), replay.passes_limit()).await;
    assert!(waiting.is_err(), "under the limit the backoff runs on");
    send(&sender, b"6789");
    tokio::time::timeout(Duration::from_secs(5), replay.passes_limit())
        .await
        .expect("past the limit the wait ends");
    assert_eq!(abandoned(&stats), 1);
}

#[tokio::test]
async fn a_backoff_keeps_what_it_read_for_the_next_attempt() {
    let (sender, source) = live();
    let replay = Replay::new(source, 1024, Arc::new(ClusterStats::default()));
    send(&sender, b"read during ");
    send(&sender, b"the backoff");
    drop(sender);
    let waiting = tokio::time::timeout(Duration::from_millis(50), replay.passes_limit()).await;
    assert!(
        waiting.is_err(),
        "a body that ends under the limit never ends the wait"
    );
    assert_eq!(
        read_all(replay.attempt()).await.0,
        b"read during the backoff"
    );
}
