//! What the filter tests share: a connection manager on `80` running some
//! filters in front of one route (a direct response, so no upstream is
//! needed), one request through it, and the stats it leaves.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::model::http_filters::{FilterConfig, FilterConfigs, FilterKind, HttpFilter};
use crate::model::route::{PathMatch, Route, RouteAction, RouteConfig};
use crate::proxy::ProxyContext;
use crate::proxy::test_fixtures::{empty_context, route, route_config};

use super::super::{Downstream, RouteSource, serve};

pub(crate) const FAULT: &str = "envoy.filters.http.fault";
pub(crate) const CORS: &str = "envoy.filters.http.cors";

/// The filter named `name` of `kind`.
pub(crate) fn filter(name: &str, kind: FilterKind) -> HttpFilter {
    HttpFilter {
        name: name.into(),
        kind,
    }
}

/// Route configuration `80`: every request answered 200 `hello` directly,
/// with `configs` for the filters.
fn routes(configs: Vec<(&str, FilterConfig)>) -> Arc<RouteConfig> {
    let hello = RouteAction::Direct {
        status: 200,
        body: Some("hello".into()),
    };
    let api = Route {
        filter_configs: FilterConfigs::new(
            configs
                .into_iter()
                .map(|(name, config)| (Arc::from(name), config))
                .collect(),
        ),
        ..route("api", PathMatch::Prefix("/".into()), hello)
    };
    Arc::new(route_config("api.test:80", &["*"], vec![api]))
}

/// Sends `request` (the head, without its final blank line) through a
/// connection manager running `filters` with `configs` on its one route;
/// returns the whole response and the context, for its stats.
pub(crate) async fn exchange(
    filters: Vec<HttpFilter>,
    configs: Vec<(&str, FilterConfig)>,
    request: &str,
) -> (String, Arc<ProxyContext>) {
    let context = empty_context(None);
    let downstream = Arc::new(Downstream {
        local: Some("10.0.0.9:80".parse().unwrap()),
        remote: Some("10.0.0.2:40000".parse().unwrap()),
        original_dst: Some("10.0.0.9:80".parse().unwrap()),
        source: RouteSource::Chain {
            route_config_name: "80".into(),
            inline: Some(routes(configs)),
            stat_prefix: "outbound_0.0.0.0_80".into(),
            http_filters: filters.into(),
            use_remote_address: false,
            path_normalization: Default::default(),
            server_header: Default::default(),
            suppress_envoy_headers: false,
            upgrades: Default::default(),
        },
        targets: Arc::default(),
        peer_identity: None,
        server_name: None,
        tls: false,
        timeouts: crate::model::http_timeouts::HttpTimeouts::default(),
    });
    let (mut client, proxy) = tokio::io::duplex(16 * 1024);
    tokio::spawn(serve(proxy, context.clone(), downstream));
    client
        .write_all(format!("{request}Connection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = String::new();
    client.read_to_string(&mut response).await.unwrap();
    (response, context)
}

/// The agent's Prometheus stats.
pub(crate) fn stats(context: &ProxyContext) -> String {
    let mut out = String::new();
    context.stats.render(&mut out);
    out
}
