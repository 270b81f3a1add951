//! One blocked HTTP request through the connection manager: REGISTRY_ONLY's
//! 502 naming the host, counted in Istio's metrics with its mark.

use std::sync::Arc;

use tokio::io::AsyncWriteExt;

use crate::model::route::{PathMatch, Route, RouteAction, RouteConfig, RouteMatch, VirtualHost};
use crate::proxy::test_fixtures::{assert_one_blocked_request, empty_context, read_blocked_reply};
use shared::egress::EgressPolicy;

use super::{Downstream, RouteSource, serve};

/// Istio's route configuration `80` under REGISTRY_ONLY: only `block_all`.
fn registry_only_routes() -> Arc<RouteConfig> {
    Arc::new(RouteConfig {
        name: "80".into(),
        virtual_hosts: vec![VirtualHost {
            name: "block_all".into(),
            domains: vec!["*".into()],
            routes: vec![Route {
                name: "block_all".into(),
                matcher: RouteMatch {
                    path: PathMatch::Prefix("/".into()),
                    case_sensitive: true,
                    headers: Vec::new(),
                    query: Vec::new(),
                },
                action: RouteAction::Direct {
                    status: 502,
                    body: None,
                },
                decorator: None,
                request_headers_to_add: Vec::new(),
                request_headers_to_remove: Vec::new(),
                response_headers_to_add: Vec::new(),
                response_headers_to_remove: Vec::new(),
                egress_policy: Some(EgressPolicy::Blocked),
                filter_configs: Default::default(),
            }],
            include_attempt_count: true,
            require_tls: false,
        }],
    })
}

#[tokio::test]
async fn a_blocked_request_is_answered_502_naming_its_host_and_counted_blocked() {
    let context = empty_context(None);
    let downstream = Arc::new(Downstream {
        local: Some("93.184.216.34:80".parse().unwrap()),
        remote: Some("10.0.0.2:40000".parse().unwrap()),
        original_dst: Some("93.184.216.34:80".parse().unwrap()),
        source: RouteSource::Chain {
            route_config_name: "80".into(),
            inline: Some(registry_only_routes()),
            stat_prefix: "outbound_0.0.0.0_80".into(),
            http_filters: Arc::default(),
            use_remote_address: false,
        },
        targets: Arc::default(),
        peer_identity: None,
        server_name: None,
        tls: false,
    });
    let (mut client, proxy) = tokio::io::duplex(16 * 1024);
    tokio::spawn(serve(proxy, context.clone(), downstream));
    client
        .write_all(b"GET /get HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let response = read_blocked_reply(&mut client, "evil.example").await;
    assert!(
        response.contains("content-type: text/plain\r\n"),
        "{response}"
    );
    assert_one_blocked_request(&context, "evil.example");
}
