//! What one query gets: a local answer, a forward, SERVFAIL or nothing.

use std::collections::BTreeMap;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::RecordType;
use proto::nds::NameTable;
use proto::nds::name_table::NameInfo;

use super::super::fake_upstream::query;
use super::super::table::LookupTable;
use super::{Decision, Transport, decide};

fn table(hosts: &[(&str, Vec<String>)]) -> LookupTable {
    let names = NameTable {
        table: hosts
            .iter()
            .map(|(host, ips)| {
                let info = NameInfo {
                    ips: ips.clone(),
                    ..Default::default()
                };
                (host.to_string(), info)
            })
            .collect::<BTreeMap<_, _>>(),
        name_info: None,
    };
    LookupTable::new(&names, &[])
}

fn db_table() -> LookupTable {
    table(&[("db.example.com", vec!["240.0.0.1".to_string()])])
}

fn replied(decision: Decision) -> Message {
    let Decision::Reply(bytes) = decision else {
        panic!("expected a reply, got {decision:?}");
    };
    Message::from_vec(&bytes).expect("a DNS message")
}

#[test]
fn a_table_host_is_answered_authoritatively_with_the_query_echoed() {
    let table = db_table();
    let response = replied(decide(
        &query(7, "db.example.com.", RecordType::A),
        Some(&table),
        Transport::Udp,
    ));
    assert_eq!(response.metadata.id, 7);
    assert_eq!(response.metadata.message_type, MessageType::Response);
    assert!(response.metadata.authoritative);
    assert!(response.metadata.recursion_desired);
    assert_eq!(response.metadata.response_code, ResponseCode::NoError);
    assert_eq!(response.queries.len(), 1);
    assert_eq!(response.answers.len(), 1);
}

#[test]
fn aaaa_for_a_v4_only_table_host_is_noerror_without_records() {
    let table = db_table();
    let response = replied(decide(
        &query(8, "db.example.com.", RecordType::AAAA),
        Some(&table),
        Transport::Udp,
    ));
    assert_eq!(response.metadata.response_code, ResponseCode::NoError);
    assert!(response.answers.is_empty());
}

#[test]
fn a_name_not_in_the_table_is_forwarded_as_it_came() {
    let table = db_table();
    let bytes = query(9, "httpbin.org.", RecordType::A);
    let Decision::Forward(forward) = decide(&bytes, Some(&table), Transport::Udp) else {
        panic!("expected a forward");
    };
    assert_eq!(forward.query, bytes);
    let failure = Message::from_vec(&forward.failure).expect("a DNS message");
    assert_eq!(failure.metadata.id, 9);
    assert_eq!(failure.metadata.response_code, ResponseCode::ServFail);
}

#[test]
fn before_the_first_table_and_without_a_question_the_answer_is_servfail() {
    let response = replied(decide(
        &query(10, "db.example.com.", RecordType::A),
        None,
        Transport::Udp,
    ));
    assert_eq!(response.metadata.response_code, ResponseCode::ServFail);
    let empty = Message::new(11, MessageType::Query, OpCode::Query)
        .to_vec()
        .expect("encodes");
    let table = db_table();
    let response = replied(decide(&empty, Some(&table), Transport::Tcp));
    assert_eq!(response.metadata.response_code, ResponseCode::ServFail);
}

#[test]
fn garbage_and_responses_are_dropped() {
    let table = db_table();
    assert_eq!(
        decide(b"not dns", Some(&table), Transport::Udp),
        Decision::Drop
    );
    let response = Message::new(12, MessageType::Response, OpCode::Query)
        .to_vec()
        .expect("encodes");
    assert_eq!(
        decide(&response, Some(&table), Transport::Udp),
        Decision::Drop
    );
}

#[test]
fn an_answer_too_large_for_udp_is_truncated_and_whole_over_tcp() {
    let ips: Vec<String> = (1..=60).map(|i| format!("240.0.1.{i}")).collect();
    let table = table(&[("many.example.com", ips)]);
    let bytes = query(13, "many.example.com.", RecordType::A);
    let udp = replied(decide(&bytes, Some(&table), Transport::Udp));
    assert!(udp.metadata.truncation);
    assert!(udp.answers.is_empty());
    let tcp = replied(decide(&bytes, Some(&table), Transport::Tcp));
    assert!(!tcp.metadata.truncation);
    assert_eq!(tcp.answers.len(), 60);
    // A client that takes larger UDP messages (EDNS) gets them whole.
    let mut edns_query = Message::from_vec(&bytes).expect("decodes");
    let mut edns = Edns::new();
    edns.set_max_payload(4096);
    edns_query.set_edns(edns);
    let large = replied(decide(
        &edns_query.to_vec().expect("encodes"),
        Some(&table),
        Transport::Udp,
    ));
    assert_eq!(large.answers.len(), 60);
}
