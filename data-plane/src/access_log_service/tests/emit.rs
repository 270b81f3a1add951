//! The proxy's emit path: a request on an HTTP connection manager with a
//! gRPC logger puts its entry on the queue, beside (or without) the line.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::route_mark_logger;
use crate::access_log_service::{AccessLogQueue, AccessLogStats, Entry, LogTargets};
use crate::proxy::http::{Downstream, RouteSource, serve};
use crate::proxy::test_fixtures::empty_context;

#[tokio::test]
async fn a_request_without_a_route_is_reported_with_its_host_and_flag() {
    let stats = Arc::new(AccessLogStats::default());
    let (queue, mut entries) = AccessLogQueue::new(16, stats);
    let context = empty_context(Some(queue));
    let downstream = Arc::new(Downstream {
        local: Some("93.184.215.14:80".parse().unwrap()),
        remote: Some("10.0.0.2:5555".parse().unwrap()),
        original_dst: Some("93.184.215.14:80".parse().unwrap()),
        source: RouteSource::Chain {
            route_config_name: "80".into(),
            inline: None,
            stat_prefix: "outbound_0.0.0.0_80".into(),
            http_filters: Arc::default(),
            use_remote_address: false,
            path_normalization: Default::default(),
            server_header: Default::default(),
            suppress_envoy_headers: false,
            upgrades: Default::default(),
        },
        targets: Arc::new(LogTargets::new(
            &Arc::from([]),
            Some(&Arc::new(route_mark_logger())),
            context.access_log_service.as_ref(),
        )),
        peer_identity: None,
        server_name: None,
        tls: false,
        timeouts: crate::model::http_timeouts::HttpTimeouts::default(),
    });
    let (mut client, server) = tokio::io::duplex(4096);
    tokio::spawn(serve(server, context, downstream));
    client
        .write_all(b"GET /get HTTP/1.1\r\nhost: unknown.example\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = Vec::new();
    client.read_to_end(&mut response).await.unwrap();
    assert!(
        response.starts_with(b"HTTP/1.1 404"),
        "no route configuration: {}",
        String::from_utf8_lossy(&response)
    );

    let queued = entries.0.recv().await.expect("an entry");
    assert_eq!(&*queued.log_name, "egress");
    let Entry::Http(entry) = queued.entry else {
        panic!("an HTTP entry expected: {:?}", queued.entry);
    };
    assert_eq!(entry.request.unwrap().authority, "unknown.example");
    assert_eq!(entry.response.unwrap().response_code.unwrap().value, 404);
    let common = entry.common_properties.unwrap();
    assert!(common.response_flags.unwrap().no_route_found);
}
