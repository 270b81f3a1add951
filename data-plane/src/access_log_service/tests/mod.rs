//! The entries as Envoy's gRPC access loggers fill them, the queue that
//! never waits, and the client against the fake access log service of
//! [`crate::testing::fake_als`].

mod emit;

use std::sync::Arc;

use http::uri::PathAndQuery;
use http::{HeaderValue, Method};
use proto::pb::envoy::config::core::v3::{Node, RequestMethod, address, socket_address};
use proto::pb::envoy::data::accesslog::v3::http_access_log_entry::HttpVersion;
use proto::pb::envoy::data::accesslog::v3::{AccessLogCommon, AccessLogType};
use proto::pb::envoy::service::accesslog::v3::StreamAccessLogsMessage;
use proto::pb::envoy::service::accesslog::v3::stream_access_logs_message::LogEntries;
use shared::identity::CONTROL_PLANE_SERVER_NAME;

use super::client::messages;
use super::*;
use crate::model::access_log::{CustomTag, TagValue};
use crate::testing::fake_als::{FakeAls, RecordedStream};
use crate::xds::{ControlPlane, TlsSettings};
use shared::egress::EgressPolicy;

fn logger(value: TagValue) -> GrpcAccessLog {
    GrpcAccessLog {
        log_name: "egress".into(),
        custom_tags: vec![CustomTag {
            tag: "egress_policy".into(),
            value,
        }],
    }
}

fn route_mark_logger() -> GrpcAccessLog {
    logger(TagValue::RouteEgressPolicy {
        default_value: None,
    })
}

/// A captured request to an unregistered host under a REGISTRY_ONLY dry run.
fn http_log() -> AccessLog {
    let mut log = AccessLog::new(
        "HTTP/1.1",
        Some("93.184.215.14:80".parse().unwrap()),
        Some("10.0.0.2:5555".parse().unwrap()),
    );
    log.method = Some(Method::GET);
    log.path = Some(PathAndQuery::from_static("/headers"));
    log.authority = Some(HeaderValue::from_static("httpbin.org"));
    log.response_code = 200;
    log.response_code_details = "via_upstream";
    log.bytes_received = 12;
    log.bytes_sent = 345;
    log.upstream_cluster = Some("PassthroughCluster".into());
    log.upstream_host = Some("93.184.215.14:80".parse().unwrap());
    log.route_name = Some("allow_any".into());
    log.egress_policy = Some(EgressPolicy::WouldBlock);
    log
}

/// A blocked TLS connection: the SNI, no upstream.
fn blocked_tls_log() -> AccessLog {
    let mut log = AccessLog::new(
        "-",
        Some("151.101.1.67:443".parse().unwrap()),
        Some("10.0.0.2:5556".parse().unwrap()),
    );
    log.requested_server_name = Some("edition.cnn.com".into());
    log.upstream_cluster = Some("BlackHoleCluster".into());
    log.response_flags = "UH";
    log.bytes_received = 517;
    log
}

fn ip_port(address: Option<&proto::pb::envoy::config::core::v3::Address>) -> (String, u32) {
    match address.and_then(|a| a.address.as_ref()) {
        Some(address::Address::SocketAddress(socket)) => match socket.port_specifier {
            Some(socket_address::PortSpecifier::PortValue(port)) => (socket.address.clone(), port),
            _ => panic!("no port in {socket:?}"),
        },
        other => panic!("not a socket address: {other:?}"),
    }
}

#[test]
fn an_http_entry_carries_the_destination_decision_and_mark() {
    let entry = http_entry(&http_log(), &route_mark_logger());
    let request = entry.request.unwrap();
    assert_eq!(request.authority, "httpbin.org");
    assert_eq!(request.path, "/headers");
    assert_eq!(request.request_method, RequestMethod::Get as i32);
    assert_eq!(request.request_body_bytes, 12);
    let response = entry.response.unwrap();
    assert_eq!(response.response_code.unwrap().value, 200);
    assert_eq!(response.response_body_bytes, 345);
    assert_eq!(response.response_code_details, "via_upstream");
    assert_eq!(entry.protocol_version, HttpVersion::Http11 as i32);
    let common = entry.common_properties.unwrap();
    assert_eq!(common.upstream_cluster, "PassthroughCluster");
    assert_eq!(common.route_name, "allow_any");
    assert_eq!(
        ip_port(common.downstream_local_address.as_ref()),
        ("93.184.215.14".to_string(), 80),
        "the original destination, as Envoy's %DOWNSTREAM_LOCAL_ADDRESS%"
    );
    assert_eq!(
        ip_port(common.downstream_remote_address.as_ref()),
        ("10.0.0.2".to_string(), 5555)
    );
    assert!(common.tls_properties.is_none(), "no SNI on plain HTTP");
    assert_eq!(common.custom_tags["egress_policy"], "would_block");
    assert!(common.start_time.is_some());
    assert_eq!(common.access_log_type, AccessLogType::DownstreamEnd as i32);
}

#[test]
fn a_tcp_entry_carries_the_sni_bytes_flags_and_literal_mark() {
    let entry = tcp_entry(
        &blocked_tls_log(),
        &logger(TagValue::Literal("blocked".into())),
    );
    let common: AccessLogCommon = entry.common_properties.unwrap();
    assert_eq!(
        common.tls_properties.unwrap().tls_sni_hostname,
        "edition.cnn.com"
    );
    assert_eq!(common.upstream_cluster, "BlackHoleCluster");
    assert!(common.response_flags.unwrap().no_healthy_upstream);
    assert_eq!(common.custom_tags["egress_policy"], "blocked");
    assert_eq!(entry.connection_properties.unwrap().received_bytes, 517);
    assert_eq!(
        common.access_log_type,
        AccessLogType::TcpConnectionEnd as i32
    );
}

#[test]
fn an_http_entry_without_a_route_mark_has_no_metadata_tag() {
    let mut log = http_log();
    log.egress_policy = None;
    let entry = http_entry(&log, &route_mark_logger());
    assert!(entry.common_properties.unwrap().custom_tags.is_empty());
}

fn queued(log_name: &str, entry: Entry) -> QueuedEntry {
    QueuedEntry {
        log_name: log_name.into(),
        entry,
    }
}

#[test]
fn consecutive_entries_of_one_stream_share_a_message() {
    let logger = route_mark_logger();
    let http = Entry::Http(Box::new(http_entry(&http_log(), &logger)));
    let tcp = Entry::Tcp(Box::new(tcp_entry(&blocked_tls_log(), &logger)));
    let grouped = messages(
        [
            queued("egress", http.clone()),
            queued("egress", http.clone()),
            queued("egress", tcp.clone()),
            queued("other", tcp.clone()),
            queued("other", tcp),
        ]
        .into_iter(),
    );
    let shape: Vec<_> = grouped
        .iter()
        .map(|(key, entries, count)| {
            let held = match entries {
                LogEntries::HttpLogs(logs) => logs.log_entry.len(),
                LogEntries::TcpLogs(logs) => logs.log_entry.len(),
            };
            (&*key.log_name, key.http, held as u64, *count)
        })
        .collect();
    assert_eq!(
        shape,
        [
            ("egress", true, 2, 2),
            ("egress", false, 1, 1),
            ("other", false, 2, 2)
        ]
    );
}

#[test]
fn a_full_queue_drops_and_counts() {
    let stats = Arc::new(AccessLogStats::default());
    let (queue, _receiver) = AccessLogQueue::new(2, stats.clone());
    let logger = route_mark_logger();
    for _ in 0..5 {
        queue.send_http(&http_log(), &logger);
    }
    assert_eq!(stats.dropped(), 3);
    let mut out = String::new();
    stats.render_prometheus(&mut out);
    assert!(
        out.lines()
            .any(|l| l == "envoy_access_logs_grpc_access_log_logs_dropped 3"),
        "{out}"
    );
}

#[test]
fn log_targets_without_file_loggers_or_a_queue_log_nothing() {
    let stats = Arc::new(AccessLogStats::default());
    let (queue, _receiver) = AccessLogQueue::new(2, stats);
    let logger = Arc::new(route_mark_logger());
    let none = Arc::from([]);
    assert!(LogTargets::new(&none, None, Some(&queue)).is_empty());
    assert!(
        LogTargets::new(&none, Some(&logger), None).is_empty(),
        "an agent that does not report has nowhere to send entries"
    );
    assert!(!LogTargets::new(&none, Some(&logger), Some(&queue)).is_empty());
    let stdout = crate::proxy::access_log::istio_stdout();
    assert!(!LogTargets::new(&stdout, None, None).is_empty());
}

/// The client of a proxy with `token`, connected to `als`.
struct Agent {
    queue: AccessLogQueue,
    stats: Arc<AccessLogStats>,
    _files: tempfile::TempDir,
}

fn node() -> Node {
    Node {
        id: "sidecar~10.0.0.2~sleep.default~default.svc.cluster.local".into(),
        ..Default::default()
    }
}

fn start_agent(als: &FakeAls, token: &str) -> Agent {
    let files = tempfile::tempdir().unwrap();
    std::fs::write(files.path().join("root-cert.pem"), als.root_pem()).unwrap();
    std::fs::write(files.path().join("token"), token).unwrap();
    let control_plane = ControlPlane::tls(
        &als.address().to_string(),
        &TlsSettings {
            ca_root: files.path().join("root-cert.pem"),
            server_name: CONTROL_PLANE_SERVER_NAME.to_string(),
            token: files.path().join("token"),
        },
    )
    .unwrap();
    let stats = Arc::new(AccessLogStats::default());
    let (queue, receiver) = AccessLogQueue::new(QUEUE_CAPACITY, stats.clone());
    tokio::spawn(AccessLogClient::new(control_plane, node(), receiver, stats.clone()).run());
    Agent {
        queue,
        stats,
        _files: files,
    }
}

fn entries_in(stream: &RecordedStream) -> usize {
    stream
        .messages
        .iter()
        .map(|m| match &m.log_entries {
            Some(LogEntries::HttpLogs(logs)) => logs.log_entry.len(),
            Some(LogEntries::TcpLogs(logs)) => logs.log_entry.len(),
            None => 0,
        })
        .sum()
}

fn identifier(message: &StreamAccessLogsMessage) -> Option<(String, String)> {
    message.identifier.as_ref().map(|identifier| {
        (
            identifier.log_name.clone(),
            identifier
                .node
                .as_ref()
                .map(|n| n.id.clone())
                .unwrap_or_default(),
        )
    })
}

#[tokio::test]
async fn the_client_streams_entries_with_the_node_first_and_the_token() {
    let als = FakeAls::start(CONTROL_PLANE_SERVER_NAME).await.unwrap();
    let agent = start_agent(&als, "token-1\n");
    let logger = route_mark_logger();
    agent.queue.send_http(&http_log(), &logger);
    agent.queue.send_http(&http_log(), &logger);
    let streams = als
        .wait_for(|streams| streams.iter().map(entries_in).sum::<usize>() == 2)
        .await;
    assert_eq!(
        streams.len(),
        1,
        "one stream for the HTTP entries of one log"
    );
    let stream = &streams[0];
    assert_eq!(stream.authorization.as_deref(), Some("Bearer token-1"));
    assert_eq!(
        identifier(&stream.messages[0]),
        Some(("egress".to_string(), node().id)),
        "the first message names the node and the log"
    );
    assert!(
        stream.messages[1..].iter().all(|m| m.identifier.is_none()),
        "only the first message carries the identifier"
    );
    let Some(LogEntries::HttpLogs(logs)) = &stream.messages[0].log_entries else {
        panic!("HTTP entries expected: {:?}", stream.messages[0]);
    };
    let common = logs.log_entry[0].common_properties.as_ref().unwrap();
    assert_eq!(common.custom_tags["egress_policy"], "would_block");
    assert_eq!(agent.stats.written(), 2);
    assert_eq!(agent.stats.dropped(), 0);

    agent.queue.send_tcp(&blocked_tls_log(), &logger);
    let streams = als.wait_for(|streams| streams.len() == 2).await;
    assert_eq!(
        identifier(&streams[1].messages[0]).map(|(name, _)| name),
        Some("egress".to_string()),
        "TCP entries go on a stream of their own, as Envoy's tcp_grpc logger's"
    );
}

#[tokio::test]
async fn a_refused_stream_drops_its_entries_and_the_client_reconnects() {
    let als = FakeAls::start(CONTROL_PLANE_SERVER_NAME).await.unwrap();
    als.refuse(Some(tonic::Status::unavailable("not now")));
    let agent = start_agent(&als, "token-1");
    let queue = agent.queue.clone();
    let traffic = tokio::spawn(async move {
        let logger = route_mark_logger();
        loop {
            queue.send_http(&http_log(), &logger);
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    });
    als.wait_for(|streams| !streams.is_empty()).await;
    // The refusal is seen when a later entry finds the stream ended.
    while agent.stats.dropped() == 0 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    als.refuse(None);
    let streams = als
        .wait_for(|streams| streams.iter().any(|s| !s.messages.is_empty()))
        .await;
    traffic.abort();
    let accepted = streams
        .iter()
        .find(|s| !s.messages.is_empty())
        .expect("a stream after the refusals");
    assert_eq!(
        identifier(&accepted.messages[0]).map(|(name, _)| name),
        Some("egress".to_string()),
        "a new stream names the node and log again"
    );
}
