//! Forwarding against a fake upstream on loopback.

use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use tokio::net::UdpSocket;

use super::super::answer::{Decision, Forward, Transport, decide};
use super::super::fake_upstream::{FakeUpstream, UPSTREAM_IP, query};
use super::super::table::LookupTable;
use super::Forwarder;

/// Short, so the tests of silent upstreams end soon.
const TIMEOUT: Duration = Duration::from_millis(300);

fn forward_of(id: u16, name: &str) -> Forward {
    let table = LookupTable::default();
    match decide(
        &query(id, name, RecordType::A),
        Some(&table),
        Transport::Udp,
    ) {
        Decision::Forward(forward) => forward,
        other => panic!("expected a forward, got {other:?}"),
    }
}

fn upstream_answer(bytes: &[u8], id: u16) -> Message {
    let answer = Message::from_vec(bytes).expect("a DNS message");
    assert_eq!(answer.metadata.id, id);
    answer
}

#[tokio::test]
async fn a_udp_query_is_relayed_over_udp_and_its_answer_returned() {
    let upstream = FakeUpstream::start().await;
    let forwarder = Forwarder::with_limits(vec![upstream.addr], 8, TIMEOUT);
    let bytes = forwarder
        .answer(forward_of(21, "httpbin.org."), Transport::Udp)
        .await;
    let answer = upstream_answer(&bytes, 21);
    assert!(
        matches!(&answer.answers[0].data, RData::A(a) if a.0 == UPSTREAM_IP),
        "{answer:?}"
    );
    assert_eq!(
        upstream.asked(),
        vec![("httpbin.org.".to_string(), Transport::Udp)]
    );
}

#[tokio::test]
async fn a_tcp_query_is_relayed_over_tcp() {
    let upstream = FakeUpstream::start().await;
    let forwarder = Forwarder::with_limits(vec![upstream.addr], 8, TIMEOUT);
    let bytes = forwarder
        .answer(forward_of(22, "example.org."), Transport::Tcp)
        .await;
    upstream_answer(&bytes, 22);
    assert_eq!(
        upstream.asked(),
        vec![("example.org.".to_string(), Transport::Tcp)]
    );
}

#[tokio::test]
async fn a_silent_upstream_is_passed_over_for_the_next() {
    let silent = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let upstream = FakeUpstream::start().await;
    let forwarder = Forwarder::with_limits(
        vec![silent.local_addr().expect("address"), upstream.addr],
        8,
        TIMEOUT,
    );
    let bytes = forwarder
        .answer(forward_of(23, "httpbin.org."), Transport::Udp)
        .await;
    assert_eq!(
        upstream_answer(&bytes, 23).metadata.response_code,
        ResponseCode::NoError
    );
}

#[tokio::test]
async fn no_upstream_answering_gives_servfail() {
    let silent = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let forwarder = Forwarder::with_limits(vec![silent.local_addr().expect("address")], 8, TIMEOUT);
    let bytes = forwarder
        .answer(forward_of(24, "httpbin.org."), Transport::Udp)
        .await;
    assert_eq!(
        upstream_answer(&bytes, 24).metadata.response_code,
        ResponseCode::ServFail
    );
}

#[test]
fn forwarded_queries_in_flight_are_capped() {
    let forwarder = Forwarder::with_limits(Vec::new(), 1, TIMEOUT);
    let first = forwarder.admit();
    assert!(first.is_some());
    assert!(forwarder.admit().is_none());
    drop(first);
    assert!(forwarder.admit().is_some());
}
