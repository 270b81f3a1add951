//! Access log entries read as observations, as Envoy's `egress` loggers and the agent fill them; the stream's source workload.

use std::collections::HashMap;
use std::sync::Arc;

use proto::pb::envoy::config::core::v3::{Address, SocketAddress, address, socket_address};
use proto::pb::envoy::data::accesslog::v3::{
    AccessLogCommon, AccessLogType, ConnectionProperties, HttpAccessLogEntry,
    HttpRequestProperties, HttpResponseProperties, TcpAccessLogEntry, TlsProperties,
};
use proto::wkt::UInt32Value;
use shared::node::{NodeId, NodeType};
use tonic::Code;

use super::entry::{Skipped, host_name, observation};
use super::{MAX_LABEL_VALUE_LEN, MAX_LABELS, source_workload};
use crate::auth::ServiceAccount;
use crate::config::{ConfigSnapshot, load_checked};
use crate::egress::{Decision, Destination, Protocol, SourceWorkload};
use crate::metrics::Metrics;
use crate::test_yaml::external_service_entry;
use crate::translate::Proxy;
use crate::xds::{Caller, TrustedGateways};

fn sleep() -> Arc<SourceWorkload> {
    Arc::new(SourceWorkload::of_pod(
        "default",
        "sleep",
        "sleep-1",
        [("app".to_string(), "sleep".to_string())].into(),
    ))
}

fn address(ip: &str, port: u32) -> Option<Address> {
    Some(Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            address: ip.to_string(),
            port_specifier: Some(socket_address::PortSpecifier::PortValue(port)),
            ..Default::default()
        })),
    })
}

fn common(cluster: &str, original: Option<Address>, mark: Option<&str>) -> AccessLogCommon {
    AccessLogCommon {
        upstream_cluster: cluster.to_string(),
        downstream_local_address: original,
        custom_tags: mark
            .map(|mark| HashMap::from([("egress_policy".to_string(), mark.to_string())]))
            .unwrap_or_default(),
        ..Default::default()
    }
}

fn http(common: AccessLogCommon, authority: &str, code: u32) -> HttpAccessLogEntry {
    HttpAccessLogEntry {
        common_properties: Some(common),
        request: Some(HttpRequestProperties {
            authority: authority.to_string(),
            request_headers_bytes: 80,
            request_body_bytes: 20,
            ..Default::default()
        }),
        response: Some(HttpResponseProperties {
            response_code: Some(UInt32Value { value: code }),
            response_headers_bytes: 100,
            response_body_bytes: 900,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn tcp(common: AccessLogCommon) -> TcpAccessLogEntry {
    TcpAccessLogEntry {
        common_properties: Some(common),
        connection_properties: Some(ConnectionProperties {
            received_bytes: 300,
            sent_bytes: 4000,
        }),
    }
}

fn with_sni(mut common: AccessLogCommon, sni: &str) -> AccessLogCommon {
    common.tls_properties = Some(TlsProperties {
        tls_sni_hostname: sni.to_string(),
        ..Default::default()
    });
    common
}

fn destination(host: &str, port: u16, protocol: Protocol) -> Destination {
    Destination {
        host: host.to_string(),
        port,
        protocol,
    }
}

/// A config with `default/httpbin`, httpbin.org on port 80.
fn registered() -> ConfigSnapshot {
    let dir = tempfile::tempdir().expect("tempdir");
    let yaml = external_service_entry("httpbin", "httpbin.org", "[]", 80, "HTTP");
    std::fs::write(dir.path().join("httpbin.yaml"), yaml).expect("write");
    let checked = load_checked(dir.path(), None);
    assert!(checked.errors.is_empty(), "{:?}", checked.errors);
    checked.snapshot
}

#[test]
fn an_http_entry_is_its_host_the_route_port_and_the_service_entry_that_routed_it() {
    let entry = http(
        common(
            "outbound|80||httpbin.org",
            address("93.184.216.34", 80),
            None,
        ),
        "HTTPBin.org",
        200,
    );
    let observed = observation(&sleep(), &entry, &registered(), 7).expect("observed");
    assert_eq!(
        observed.destination,
        destination("httpbin.org", 80, Protocol::Http)
    );
    assert_eq!(observed.handled_by, "default/httpbin");
    assert_eq!(observed.decision, Decision::Allowed);
    assert_eq!((observed.received_bytes, observed.sent_bytes), (100, 1000));
    assert_eq!(observed.response_code, Some(200));
    assert_eq!(observed.at, 7);
}

#[test]
fn a_connect_target_and_an_explicit_port_name_the_port() {
    let connect = http(
        common(
            "PassthroughCluster",
            address("127.0.0.1", 15001),
            Some("would_block"),
        ),
        "api.example.com:8443",
        200,
    );
    let observed =
        observation(&sleep(), &connect, &ConfigSnapshot::default(), 1).expect("observed");
    assert_eq!(
        observed.destination,
        destination("api.example.com", 8443, Protocol::Http)
    );
    assert_eq!(observed.handled_by, "PassthroughCluster");
    assert_eq!(observed.decision, Decision::WouldBlock);
    let explicit = http(
        common("PassthroughCluster", address("127.0.0.1", 15001), None),
        "example.com",
        200,
    );
    let observed =
        observation(&sleep(), &explicit, &ConfigSnapshot::default(), 1).expect("observed");
    assert_eq!(
        observed.destination.port, 80,
        "the capture listener's port is not a destination; HTTP defaults to 80"
    );
}

#[test]
fn a_blocked_request_has_no_cluster_and_is_the_blackholes() {
    let mut blocked = common("", address("93.184.216.34", 80), None);
    blocked.route_name = "block_all".to_string();
    let observed = observation(
        &sleep(),
        &http(blocked, "example.com", 502),
        &ConfigSnapshot::default(),
        1,
    )
    .expect("observed");
    assert_eq!(
        observed.destination,
        destination("example.com", 80, Protocol::Http)
    );
    assert_eq!(observed.handled_by, "BlackHoleCluster");
    assert_eq!(observed.decision, Decision::Blocked);
    assert_eq!(observed.response_code, Some(502));
}

#[test]
fn a_tcp_entry_with_an_sni_is_tls_and_without_one_is_its_original_destination() {
    let tls = tcp(with_sni(
        common(
            "BlackHoleCluster",
            address("142.250.0.1", 443),
            Some("blocked"),
        ),
        "www.baidu.com",
    ));
    let observed = observation(&sleep(), &tls, &ConfigSnapshot::default(), 1).expect("observed");
    assert_eq!(
        observed.destination,
        destination("www.baidu.com", 443, Protocol::Tls)
    );
    assert_eq!(observed.decision, Decision::Blocked);
    assert_eq!((observed.received_bytes, observed.sent_bytes), (300, 4000));
    assert_eq!(observed.response_code, None);
    let raw = tcp(common(
        "PassthroughCluster",
        address("203.0.113.7", 27017),
        None,
    ));
    let observed = observation(&sleep(), &raw, &ConfigSnapshot::default(), 1).expect("observed");
    assert_eq!(
        observed.destination,
        destination("203.0.113.7", 27017, Protocol::Tcp)
    );
    assert_eq!(observed.handled_by, "PassthroughCluster");
}

#[test]
fn inbound_unfinished_and_destinationless_entries_are_not_observations() {
    let snapshot = ConfigSnapshot::default();
    let inbound = tcp(common("inbound|8080||", address("10.1.0.5", 8080), None));
    assert_eq!(
        observation(&sleep(), &inbound, &snapshot, 1),
        Err(Skipped::Inbound)
    );
    let mut periodic = common("PassthroughCluster", address("203.0.113.7", 27017), None);
    periodic.access_log_type = AccessLogType::TcpPeriodic as i32;
    assert_eq!(
        observation(&sleep(), &tcp(periodic), &snapshot, 1),
        Err(Skipped::Intermediate)
    );
    let mut end = common("PassthroughCluster", address("203.0.113.7", 27017), None);
    end.access_log_type = AccessLogType::TcpConnectionEnd as i32;
    assert!(observation(&sleep(), &tcp(end), &snapshot, 1).is_ok());
    let nowhere = tcp(common("PassthroughCluster", None, None));
    assert_eq!(
        observation(&sleep(), &nowhere, &snapshot, 1),
        Err(Skipped::NoDestination)
    );
}

#[test]
fn a_host_header_that_is_not_a_name_falls_back_to_the_original_destination() {
    let entry = http(
        common("PassthroughCluster", address("93.184.216.34", 80), None),
        "evil\u{1b}[31m.example",
        200,
    );
    let observed = observation(&sleep(), &entry, &ConfigSnapshot::default(), 1).expect("observed");
    assert_eq!(observed.destination.host, "93.184.216.34");
    assert_eq!(host_name("Example.COM."), Some("example.com".to_string()));
    assert_eq!(host_name("[::1]"), None);
    assert_eq!(host_name("::1"), Some("::1".to_string()));
    assert_eq!(host_name("a..b"), None);
    assert_eq!(host_name("*.example.com"), None);
}

fn node(namespace: &str, labels: &[(&str, &str)]) -> proto::pb::envoy::config::core::v3::Node {
    Proxy {
        id: NodeId::new(NodeType::Sidecar, "10.1.0.5", "sleep-1", namespace).to_string(),
        node_type: NodeType::Sidecar,
        namespace: namespace.to_string(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ips: vec!["10.1.0.5".to_string()],
        service_account: "sleep".to_string(),
        dns_capture: false,
    }
    .to_node()
}

#[test]
fn the_source_is_the_tokens_account_with_the_nodes_labels_and_another_namespace_is_denied() {
    let caller = Caller {
        account: ServiceAccount::new("default", "sleep").expect("valid"),
        peer: None,
    };
    let metrics = Metrics::default();
    let gateways = TrustedGateways::default();
    let source = source_workload(
        &caller,
        &node("default", &[("app", "sleep")]),
        &gateways,
        &metrics,
    )
    .expect("admitted");
    assert_eq!(source, *sleep());
    let denied = source_workload(&caller, &node("prod", &[]), &gateways, &metrics)
        .expect_err("another namespace");
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert!(
        metrics
            .render()
            .contains("pilot_xds_auth_failures_total{reason=\"node_mismatch\"} 1"),
        "recorded as every refusal"
    );
}

#[test]
fn labels_past_kubernetes_bounds_refuse_the_stream() {
    let caller = Caller {
        account: ServiceAccount::new("default", "sleep").expect("valid"),
        peer: None,
    };
    let metrics = Metrics::default();
    let gateways = TrustedGateways::default();
    let admit = |labels: &[(&str, &str)]| {
        source_workload(&caller, &node("default", labels), &gateways, &metrics)
    };
    let keys: Vec<String> = (0..=MAX_LABELS).map(|n| format!("label-{n}")).collect();
    let many: Vec<(&str, &str)> = keys.iter().map(|key| (key.as_str(), "x")).collect();
    assert!(admit(&many[..MAX_LABELS]).is_ok(), "64 labels are accepted");
    let long_key = format!("{}/{}", "p".repeat(253), "n".repeat(63));
    assert!(
        admit(&[(&long_key, "x")]).is_ok(),
        "a 317-byte key is accepted"
    );
    let long_value = "v".repeat(MAX_LABEL_VALUE_LEN);
    assert!(admit(&[("app", &long_value)]).is_ok(), "a 63-byte value");
    let too_long_key = format!("{long_key}n");
    let too_long_value = format!("{long_value}v");
    for (refused, what) in [
        (admit(&many), "65 labels"),
        (admit(&[(&too_long_key, "x")]), "a 318-byte key"),
        (admit(&[("app", &too_long_value)]), "a 64-byte value"),
    ] {
        let status = refused.expect_err(what);
        assert_eq!(status.code(), Code::InvalidArgument, "{what}");
        assert!(
            status.message().contains("Kubernetes") || status.message().contains("at most"),
            "{what}: {}",
            status.message()
        );
    }
}
