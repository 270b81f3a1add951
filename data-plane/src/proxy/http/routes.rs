//! Which route configuration serves a request: the one of the filter chain
//! that took the connection, or, in explicit proxy mode, the one of the
//! listener the request's destination port would have been captured by.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::model::RunningConfig;
use crate::model::access_log::GrpcAccessLog;
use crate::model::http_filters::HttpFilter;
use crate::model::listener::{ChainAction, TcpProxy};
use crate::model::path_normalization::PathNormalization;
use crate::model::route::{
    Forward, PathMatch, Route, RouteAction, RouteConfig, RouteMatch, VirtualHost,
};
use crate::model::server_header::SharedServerHeader;
use crate::model::upgrade::UpgradeConfigs;
use shared::egress::EgressPolicy;

use super::{Downstream, RouteSource};

/// The routes a request is matched against.
pub(super) struct RouteTable {
    pub(super) routes: Arc<RouteConfig>,
    /// The stat prefix of the HTTP connection manager (or TCP proxy).
    pub(super) stat_prefix: Arc<str>,
    /// The original destination for ORIGINAL_DST clusters.
    pub(super) original_dst: Option<SocketAddr>,
    /// In explicit proxy mode, the gRPC access logger of the HTTP
    /// connection manager (or TCP proxy) the request found; a captured
    /// connection's is its [`Downstream`]'s.
    pub(super) grpc_access_log: Option<Arc<GrpcAccessLog>>,
    /// The HTTP filters of its connection manager, before the router.
    pub(super) http_filters: Arc<[HttpFilter]>,
    /// The connection manager's `use_remote_address`.
    pub(super) use_remote_address: bool,
    /// What the connection manager does to request paths first.
    pub(super) path_normalization: PathNormalization,
    /// The `server` header of the connection manager's responses.
    pub(super) server_header: SharedServerHeader,
    /// Its router's `suppress_envoy_headers`.
    pub(super) suppress_envoy_headers: bool,
    /// The upgrade types its connection manager allows.
    pub(super) upgrades: UpgradeConfigs,
}

/// The route table for a request on `downstream` whose authority names
/// `port` (explicit proxy mode: 80 when it names none), if its listener
/// and route configuration exist.
pub(super) fn route_table(
    config: &RunningConfig,
    downstream: &Downstream,
    port: Option<u16>,
) -> Option<RouteTable> {
    match &downstream.source {
        RouteSource::Chain {
            route_config_name,
            inline,
            stat_prefix,
            http_filters,
            use_remote_address,
            path_normalization,
            server_header,
            suppress_envoy_headers,
            upgrades,
        } => {
            let routes = inline
                .clone()
                .or_else(|| config.route(route_config_name).cloned())?;
            Some(RouteTable {
                routes,
                stat_prefix: stat_prefix.clone(),
                original_dst: downstream.original_dst,
                grpc_access_log: None,
                http_filters: http_filters.clone(),
                use_remote_address: *use_remote_address,
                path_normalization: *path_normalization,
                server_header: server_header.clone(),
                suppress_envoy_headers: *suppress_envoy_headers,
                upgrades: upgrades.clone(),
            })
        }
        RouteSource::ExplicitProxy { accepting } => {
            let port = port.unwrap_or(80);
            let listener = config
                .listener_for_original_dst(SocketAddr::from(([0, 0, 0, 0], port)))
                .or_else(|| config.listener(accepting))?;
            let chain = listener.select_chain(port, None, None)?;
            let (
                routes,
                stat_prefix,
                grpc_access_log,
                http_filters,
                use_remote_address,
                path_normalization,
                server_header,
                suppress_envoy_headers,
                upgrades,
            ) = match &chain.action {
                ChainAction::Http(hcm) => (
                    hcm.inline_routes
                        .clone()
                        .or_else(|| config.route(&hcm.route_config_name).cloned())?,
                    hcm.stat_prefix.clone(),
                    hcm.grpc_access_log.clone(),
                    hcm.http_filters.clone(),
                    hcm.use_remote_address,
                    hcm.path_normalization,
                    hcm.server_header.clone(),
                    hcm.suppress_envoy_headers,
                    hcm.upgrades.clone(),
                ),
                ChainAction::Tcp(tcp) => (
                    Arc::new(forward_all(tcp, chain.egress_policy)),
                    tcp.stat_prefix.clone(),
                    tcp.grpc_access_log.clone(),
                    Arc::default(),
                    false,
                    PathNormalization::default(),
                    SharedServerHeader::default(),
                    false,
                    // A captured connection's bytes would carry any upgrade.
                    UpgradeConfigs::any(),
                ),
            };
            Some(RouteTable {
                routes,
                stat_prefix,
                original_dst: None,
                grpc_access_log,
                http_filters,
                use_remote_address,
                path_normalization,
                server_header,
                suppress_envoy_headers,
                upgrades,
            })
        }
    }
}

/// Routes for plain HTTP that a captured connection would have sent
/// through a TCP proxy: everything to the proxy's cluster, no timeout; or,
/// for a chain marked blocked, REGISTRY_ONLY's 502, as `block_all` answers.
fn forward_all(tcp: &TcpProxy, egress_policy: Option<EgressPolicy>) -> RouteConfig {
    let action = if egress_policy == Some(EgressPolicy::Blocked) {
        RouteAction::Direct {
            status: 502,
            body: None,
        }
    } else {
        RouteAction::Forward(Forward {
            target: tcp.target.clone(),
            timeout: None,
            retry: None,
            prefix_rewrite: None,
            host_rewrite: None,
            mirrors: Vec::new(),
            hash_policy: Vec::new(),
            upgrades: Vec::new(),
            cluster_not_found: 503,
        })
    };
    RouteConfig {
        name: tcp.stat_prefix.clone(),
        virtual_hosts: vec![VirtualHost {
            name: tcp.stat_prefix.clone(),
            domains: vec!["*".to_string()],
            routes: vec![Route {
                name: tcp.stat_prefix.clone(),
                matcher: RouteMatch {
                    path: PathMatch::Prefix("/".to_string()),
                    case_sensitive: true,
                    headers: Vec::new(),
                    query: Vec::new(),
                },
                action,
                decorator: None,
                request_headers_to_add: Vec::new(),
                request_headers_to_remove: Vec::new(),
                response_headers_to_add: Vec::new(),
                response_headers_to_remove: Vec::new(),
                egress_policy,
                filter_configs: Default::default(),
            }],
            include_attempt_count: false,
            require_tls: false,
        }],
    }
}

#[cfg(test)]
mod tests;
