//! Accept failures: file descriptor exhaustion told apart from other
//! errors, a pending connection shed with the reserve descriptor, a lost
//! reserve taken back, and a log line at most once per interval.

use std::io;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;

use super::*;

#[test]
fn accept_errors_by_kind() {
    let os = io::Error::from_raw_os_error;
    assert_eq!(
        AcceptError::of(&os(nix::libc::EMFILE)),
        AcceptError::FdExhausted
    );
    assert_eq!(
        AcceptError::of(&os(nix::libc::ENFILE)),
        AcceptError::FdExhausted
    );
    assert_eq!(
        AcceptError::of(&os(nix::libc::ECONNABORTED)),
        AcceptError::ConnectionGone
    );
    assert_eq!(AcceptError::of(&os(nix::libc::ENOMEM)), AcceptError::Other);
}

#[test]
fn a_log_line_at_most_once_per_interval_with_what_happened_meanwhile() {
    let mut throttle = Throttle::default();
    let start = Instant::now();
    assert_eq!(throttle.note(start), Some(1));
    for i in 1..=500 {
        assert_eq!(throttle.note(start + Duration::from_millis(i * 10)), None);
    }
    assert_eq!(throttle.note(start + LOG_EVERY), Some(501));
    assert_eq!(throttle.note(start + LOG_EVERY), None);
}

#[tokio::test]
async fn out_of_descriptors_the_pending_connection_is_closed_with_the_reserve_at_once() {
    let failures = AcceptFailures::default();
    let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    // An accept that worked: the listener is known readable, as it is
    // when accept fails for want of a descriptor.
    let _first = tokio::net::TcpStream::connect(addr).await.unwrap();
    let _accepted = socket.accept().await.unwrap();
    let mut pending = tokio::net::TcpStream::connect(addr).await.unwrap();
    let emfile = io::Error::from_raw_os_error(nix::libc::EMFILE);
    assert_eq!(
        failures.handle(&socket, "test", emfile).await,
        Outcome::Shed
    );
    let mut read = [0; 1];
    assert_eq!(
        pending.read(&mut read).await.unwrap(),
        0,
        "the pending connection is closed"
    );
    assert!(
        failures.reserve.lock().is_some(),
        "the reserve is taken back"
    );
    // Nothing else pending: nothing counts as shed.
    let emfile = io::Error::from_raw_os_error(nix::libc::EMFILE);
    assert_eq!(
        failures.handle(&socket, "test", emfile).await,
        Outcome::Left
    );
    assert!(failures.reserve.lock().is_some());
}

#[test]
fn a_reserve_another_accept_took_is_taken_back_when_a_connection_closes() {
    let failures = AcceptFailures::default();
    // As when another thread's accept took the free descriptor.
    drop(failures.reserve.lock().take());
    failures.reserve_missing.store(true, Relaxed);
    failures.connection_closed();
    assert!(failures.reserve.lock().is_some(), "the reserve is back");
    assert!(!failures.reserve_missing.load(Relaxed));
}
