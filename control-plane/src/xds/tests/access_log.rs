//! The AccessLogService on the secure port, called as Envoy's gRPC access logger calls it: entries of the token's workload are recorded; a node of another namespace is denied.

use std::collections::HashMap;

use proto::pb::envoy::data::accesslog::v3::{
    AccessLogCommon, HttpAccessLogEntry, HttpRequestProperties, HttpResponseProperties,
};
use proto::pb::envoy::service::accesslog::v3::access_log_service_client::AccessLogServiceClient;
use proto::pb::envoy::service::accesslog::v3::stream_access_logs_message::{
    HttpAccessLogEntries, Identifier, LogEntries,
};
use proto::pb::envoy::service::accesslog::v3::{StreamAccessLogsMessage, StreamAccessLogsResponse};
use proto::wkt::UInt32Value;
use tonic::Code;

use super::*;
use crate::egress::{Decision, Protocol};

/// A blocked request to `host`, as the `egress` logger sends it.
fn blocked_request(host: &str) -> HttpAccessLogEntry {
    HttpAccessLogEntry {
        common_properties: Some(AccessLogCommon {
            route_name: "block_all".to_string(),
            custom_tags: HashMap::from([("egress_policy".to_string(), "blocked".to_string())]),
            ..Default::default()
        }),
        request: Some(HttpRequestProperties {
            authority: host.to_string(),
            ..Default::default()
        }),
        response: Some(HttpResponseProperties {
            response_code: Some(UInt32Value { value: 502 }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Streams `node`'s first message, with one entry, then a second entry,
/// and returns how the stream ended.
async fn stream(
    mesh: &Mesh,
    token: Option<&str>,
    node: Node,
) -> Result<tonic::Response<StreamAccessLogsResponse>, Status> {
    stream_nodes(mesh, token, node, None).await
}

/// As [`stream`], the second message naming `second` when given (as a
/// relay names the node of each stream it forwards).
async fn stream_nodes(
    mesh: &Mesh,
    token: Option<&str>,
    node: Node,
    second: Option<Node>,
) -> Result<tonic::Response<StreamAccessLogsResponse>, Status> {
    let entries = |host: &str| {
        Some(LogEntries::HttpLogs(HttpAccessLogEntries {
            log_entry: vec![blocked_request(host)],
        }))
    };
    let messages = vec![
        StreamAccessLogsMessage {
            identifier: Some(Identifier {
                node: Some(node),
                log_name: "egress".to_string(),
            }),
            log_entries: entries("httpbin.org"),
        },
        StreamAccessLogsMessage {
            identifier: second.map(|node| Identifier {
                node: Some(node),
                log_name: "egress".to_string(),
            }),
            log_entries: entries("httpbin.org"),
        },
    ];
    let mut client = AccessLogServiceClient::new(mesh.secure_channel().await);
    let call = client.stream_access_logs(authorized(tokio_stream::iter(messages), token));
    tokio::time::timeout(WAIT, call)
        .await
        .expect("the stream ends")
}

#[tokio::test]
async fn the_entries_of_the_tokens_workload_are_recorded() {
    let mesh = Mesh::start().await;
    let token = mesh.token("default", "sleep");
    stream(&mesh, Some(&token), sidecar("default", "sleep"))
        .await
        .expect("taken");
    let records = mesh.inventory.contents().records;
    assert_eq!(records.len(), 1, "{records:?}");
    let record = &records[0];
    assert_eq!(
        (
            record.source.namespace.as_str(),
            record.source.service_account.as_str(),
            record.source.name()
        ),
        ("default", "sleep", "pod-1")
    );
    let destination = record.destination.as_ref().expect("a destination");
    assert_eq!(
        (
            destination.host.as_str(),
            destination.port,
            destination.protocol
        ),
        ("httpbin.org", 80, Protocol::Http)
    );
    assert_eq!(record.handled_by, "BlackHoleCluster");
    assert_eq!(record.decision, Decision::Blocked);
    assert_eq!(record.count, 2);
    assert_eq!(record.response_codes.get(&502), Some(&2));
}

#[tokio::test]
async fn a_node_of_another_namespace_than_its_token_is_denied() {
    let mesh = Mesh::start().await;
    let token = mesh.token("default", "sleep");
    let status = stream(&mesh, Some(&token), sidecar("prod", "sleep"))
        .await
        .expect_err("denied");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(status.message().contains("default/sleep"), "{status:?}");
    assert_eq!(mesh.auth_failures("node_mismatch"), 1);
    assert!(mesh.inventory.contents().records.is_empty());
}

#[tokio::test]
async fn a_stream_without_a_token_is_unauthenticated() {
    let mesh = Mesh::start().await;
    let status = stream(&mesh, None, sidecar("default", "sleep"))
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(mesh.inventory.contents().records.is_empty());
}

#[tokio::test]
async fn a_later_message_naming_a_node_of_another_namespace_ends_the_stream() {
    let mesh = Mesh::start().await;
    let token = mesh.token("default", "sleep");
    let status = stream_nodes(
        &mesh,
        Some(&token),
        sidecar("default", "sleep"),
        Some(sidecar("prod", "sleep")),
    )
    .await
    .expect_err("denied");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let records = mesh.inventory.contents().records;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].count, 1, "only the first message's entry");
}
