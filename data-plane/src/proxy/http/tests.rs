//! Requests through the connection manager: REGISTRY_ONLY's 502 naming
//! the host, counted in Istio's metrics with its mark; paths normalized as
//! the connection manager says before routing.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::model::path_normalization::PathNormalization;

use crate::model::route::{PathMatch, Route, RouteAction, RouteConfig};
use crate::proxy::test_fixtures::{
    assert_one_blocked_request, empty_context, read_blocked_reply, route, route_config,
};
use shared::egress::EgressPolicy;

use super::{Downstream, RouteSource, serve};

/// A route of `path` to a direct response of `status`.
fn direct(name: &str, path: PathMatch, status: u16, egress_policy: Option<EgressPolicy>) -> Route {
    Route {
        egress_policy,
        ..route(name, path, RouteAction::Direct { status, body: None })
    }
}

fn routes(routes: Vec<Route>) -> Arc<RouteConfig> {
    let mut config = route_config("all", &["*"], routes);
    config.virtual_hosts[0].include_attempt_count = true;
    Arc::new(config)
}

/// Istio's route configuration `80` under REGISTRY_ONLY: only `block_all`.
fn registry_only_routes() -> Arc<RouteConfig> {
    routes(vec![direct(
        "block_all",
        PathMatch::Prefix("/".into()),
        502,
        Some(EgressPolicy::Blocked),
    )])
}

fn downstream(routes: Arc<RouteConfig>, path_normalization: PathNormalization) -> Arc<Downstream> {
    Arc::new(Downstream {
        local: Some("93.184.216.34:80".parse().unwrap()),
        remote: Some("10.0.0.2:40000".parse().unwrap()),
        original_dst: Some("93.184.216.34:80".parse().unwrap()),
        source: RouteSource::Chain {
            route_config_name: "80".into(),
            inline: Some(routes),
            stat_prefix: "outbound_0.0.0.0_80".into(),
            http_filters: Arc::default(),
            use_remote_address: false,
            path_normalization,
            server_header: Default::default(),
            suppress_envoy_headers: false,
            upgrades: Default::default(),
        },
        targets: Arc::default(),
        peer_identity: None,
        server_name: None,
        tls: false,
        timeouts: crate::model::http_timeouts::HttpTimeouts::default(),
    })
}

/// The status line of the answer to `GET <path>` on a connection manager
/// whose only route sends exact `/b` a 200 (anything else: 404).
async fn status_for(path: &str, normalization: PathNormalization) -> String {
    let only_b = routes(vec![
        direct("b", PathMatch::Exact("/b".into()), 200, None),
        direct("other", PathMatch::Prefix("/".into()), 404, None),
    ]);
    let (mut client, proxy) = tokio::io::duplex(16 * 1024);
    tokio::spawn(serve(
        proxy,
        empty_context(None),
        downstream(only_b, normalization),
    ));
    let request = format!("GET {path} HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n");
    client.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    client.read_to_string(&mut response).await.unwrap();
    response.lines().next().unwrap_or_default().to_string()
}

#[tokio::test]
async fn normalize_path_resolves_dot_segments_before_routing_and_refuses_a_nul() {
    let normalize = PathNormalization {
        normalize: true,
        ..Default::default()
    };
    assert_eq!(status_for("/a/../b", normalize).await, "HTTP/1.1 200 OK");
    assert_eq!(
        status_for("/a/%2e%2E/b", normalize).await,
        "HTTP/1.1 200 OK"
    );
    assert_eq!(
        status_for("/a/%00/b", normalize).await,
        "HTTP/1.1 400 Bad Request"
    );
    let off = PathNormalization::default();
    assert_eq!(status_for("/a/../b", off).await, "HTTP/1.1 404 Not Found");
    let merge = PathNormalization {
        merge_slashes: true,
        ..Default::default()
    };
    assert_eq!(status_for("//b", merge).await, "HTTP/1.1 200 OK");
}

#[tokio::test]
async fn a_blocked_request_is_answered_502_naming_its_host_and_counted_blocked() {
    let context = empty_context(None);
    let downstream = downstream(registry_only_routes(), PathNormalization::default());
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
    // Envoy's connection manager names itself on every response.
    assert!(response.contains("server: envoy\r\n"), "{response}");
    assert_one_blocked_request(&context, "evil.example");
}
