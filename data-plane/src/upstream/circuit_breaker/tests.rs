//! The counting of Envoy's circuit breakers, without connections.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use super::*;

fn breakers(connections: u32, pending: u32, requests: u32, retries: u32) -> Arc<Breakers> {
    let config = CircuitBreakers {
        max_connections: connections,
        max_pending_requests: pending,
        max_requests: requests,
        max_retries: retries,
        track_remaining: true,
    };
    Arc::new(Breakers::new(config, Arc::default()))
}

#[test]
fn a_resource_allows_up_to_its_limit() {
    let r = Resource::new(2);
    assert!(r.try_acquire() && r.try_acquire());
    assert!(!r.try_acquire());
    assert!(r.open());
    assert_eq!(r.remaining(), 0);
    r.release();
    assert_eq!((r.open(), r.remaining()), (false, 1));
}

#[tokio::test]
async fn http1_requests_past_busy_connections_pend_then_overflow() {
    let b = breakers(1, 1, 1024, 3);
    let first = b.admit_request(false, "c").await.unwrap();
    let waiting = tokio::spawn({
        let b = b.clone();
        async move { b.admit_request(false, "c").await }
    });
    while b.pending.current() == 0 {
        tokio::task::yield_now().await;
    }
    assert!(b.pending.open(), "the second request waits as pending");
    assert_eq!(b.counters.cx_overflow.load(Relaxed), 1);
    let third = b.admit_request(false, "c").await;
    assert!(
        matches!(third, Err(UpstreamError::Overflow(_))),
        "{third:?}"
    );
    assert_eq!(b.counters.rq_pending_overflow.load(Relaxed), 1);
    drop(first);
    let second = waiting.await.unwrap().unwrap();
    assert_eq!(b.pending.current(), 0);
    assert_eq!(b.requests.current(), 1);
    drop(second);
    assert_eq!((b.requests.current(), b.busy.current()), (0, 0));
}

#[tokio::test]
async fn max_requests_overflows_at_once_and_is_the_only_http2_limit() {
    let b = breakers(1, 1, 1, 3);
    let first = b.admit_request(true, "c").await.unwrap();
    let second = b.admit_request(true, "c").await;
    assert!(matches!(second, Err(UpstreamError::Overflow(_))));
    // Envoy counts a request past max_requests apart from pending ones.
    assert_eq!(b.counters.rq_active_overflow.load(Relaxed), 1);
    assert_eq!(b.counters.rq_pending_overflow.load(Relaxed), 0);
    assert_eq!(b.counters.cx_overflow.load(Relaxed), 0);
    drop(first);
    assert!(b.admit_request(true, "c").await.is_ok());

    // HTTP/1.1 with connections to spare: the request limit still applies,
    // and the refused request gives its connection back.
    let b = breakers(2, 1, 1, 3);
    let _first = b.admit_request(false, "c").await.unwrap();
    assert!(b.admit_request(false, "c").await.is_err());
    assert_eq!(b.busy.current(), 1);
}

#[test]
fn retries_past_max_retries_overflow() {
    let b = breakers(1, 1, 1, 1);
    let retry = b.try_retry().expect("one retry at a time");
    assert!(b.try_retry().is_none());
    assert_eq!(b.counters.rq_retry_overflow.load(Relaxed), 1);
    drop(retry);
    assert!(b.try_retry().is_some());
}

#[test]
fn tcp_connections_past_max_connections_overflow() {
    let b = breakers(1, 1, 1, 1);
    let first = b.open_tcp_connection("c").unwrap();
    assert!(matches!(
        b.open_tcp_connection("c"),
        Err(UpstreamError::Overflow(_))
    ));
    assert_eq!(b.counters.cx_overflow.load(Relaxed), 1);
    assert!(b.connections.open());
    drop(first);
    assert!(b.open_tcp_connection("c").is_ok());
}

#[tokio::test(start_paused = true)]
async fn a_hosts_first_pooled_connection_is_always_allowed() {
    let b = breakers(1, 1, 1, 1);
    let (host_a, host_b) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let limit = Duration::from_secs(1);
    let a = b.open_connection(&host_a, limit).await.unwrap();
    assert_eq!(host_a.load(Relaxed), 1);
    let b_first = b.open_connection(&host_b, limit).await.unwrap();
    assert_eq!(
        b.connections.current(),
        2,
        "past the limit, as Envoy allows"
    );
    assert!(
        b.open_connection(&host_a, limit).await.is_none(),
        "a second connection to a host waits for one to close"
    );
    drop(b_first);
    drop(a);
    assert_eq!(b.connections.current(), 0);
    assert_eq!(host_a.load(Relaxed), 0);
}
