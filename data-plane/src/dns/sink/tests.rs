//! NDS through the ADS client: subscribed only by a sink that answers DNS, applied to the DNS proxy, and a bad resource NACKed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;
use proto::nds::NameTable;
use proto::nds::name_table::NameInfo;
use proto::pb::envoy::config::core::v3::Node;
use shared::type_url::{CLUSTER, NAME_TABLE};
use tokio::sync::watch;

use super::super::fake_upstream::query;
use super::super::{Decision, DnsProxy, Forwarder, Transport};
use super::DnsSink;
use crate::store::ConfigStore;
use crate::testing::auto_ads::AutoAds;
use crate::xds::{AdsClient, ConfigSink, ControlPlane};

/// An upper bound, so a broken test fails instead of hanging.
const WAIT: Duration = Duration::from_secs(10);

fn db_table() -> NameTable {
    let info = NameInfo {
        ips: vec!["240.0.0.1".to_string()],
        registry: "External".to_string(),
        ..Default::default()
    };
    NameTable {
        table: BTreeMap::from([("db.example.com".to_string(), info)]),
        name_info: None,
    }
}

fn store() -> Arc<ConfigStore> {
    Arc::new(ConfigStore::new(Box::new(|_| Ok(()))))
}

/// The answer records the DNS proxy gives for `db.example.com` now.
fn db_answers(dns: &DnsProxy) -> usize {
    match dns.decide(&query(1, "db.example.com.", RecordType::A), Transport::Udp) {
        Decision::Reply(bytes) => Message::from_vec(&bytes).map_or(0, |m| m.answers.len()),
        _ => 0,
    }
}

#[test]
fn only_a_sink_that_answers_dns_takes_the_name_table() {
    let store = store();
    assert!(!store.subscribes(NAME_TABLE));
    assert!(store.subscribes(CLUSTER));
    let dns = Arc::new(DnsProxy::new(Vec::new(), Forwarder::new(Vec::new())));
    let sink = DnsSink::new(store, dns);
    assert!(sink.subscribes(NAME_TABLE));
    assert!(sink.subscribes(CLUSTER));
}

#[test]
fn a_resource_of_another_type_in_a_name_table_response_is_rejected() {
    let dns = Arc::new(DnsProxy::new(Vec::new(), Forwarder::new(Vec::new())));
    let sink = DnsSink::new(store(), dns.clone());
    let wrong = proto::pack(CLUSTER, &db_table());
    assert!(sink.apply(NAME_TABLE, &[wrong]).is_err());
    assert_eq!(db_answers(&dns), 0, "the proxy keeps having no table");
}

#[test]
fn the_client_subscribes_to_the_name_table_and_the_proxy_answers_from_it() {
    let ads = AutoAds::start().expect("fake ADS");
    ads.set(NAME_TABLE, vec![proto::pack(NAME_TABLE, &db_table())]);
    let dns = Arc::new(DnsProxy::new(Vec::new(), Forwarder::new(Vec::new())));
    let sink = Arc::new(DnsSink::new(store(), dns.clone()));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let (ready, _) = watch::channel(false);
        let control_plane = ControlPlane::plaintext(&ads.address().to_string()).expect("address");
        let task = tokio::spawn(AdsClient::new(control_plane, Node::default(), sink, ready).run());
        tokio::time::timeout(WAIT, async {
            while db_answers(&dns) == 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("the table in force in time");
        task.abort();
    });
    let ack = ads
        .wait_for_request(WAIT, |request| {
            request.type_url == NAME_TABLE
                && !request.response_nonce.is_empty()
                && request.error_detail.is_none()
        })
        .expect("the name table ACKed");
    assert!(ack.resource_names.is_empty(), "a wildcard subscription");
}
