//! Small builders for the Envoy messages every translator uses: addresses,
//! ADS config sources, durations, wrappers, network and HTTP filters.

use proto::pb::envoy::config::core::v3::{
    Address, AggregatedConfigSource, ApiVersion, ConfigSource, SocketAddress, TransportSocket,
    address, config_source, socket_address, transport_socket,
};
use proto::pb::envoy::config::listener::v3::{Filter, ListenerFilter, filter, listener_filter};
use proto::pb::envoy::extensions::filters::http::cors::v3::Cors;
use proto::pb::envoy::extensions::filters::http::fault::v3::HttpFault;
use proto::pb::envoy::extensions::filters::http::router::v3::Router;
use proto::pb::envoy::extensions::filters::listener::tls_inspector::v3::TlsInspector;
use proto::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, HttpFilter, Rds, RequestIdExtension, http_connection_manager,
    http_filter,
};
use proto::pb::envoy::extensions::filters::network::tcp_proxy::v3::{TcpProxy, tcp_proxy};
use proto::pb::envoy::extensions::request_id::uuid::v3::UuidRequestIdConfig;
use proto::pb::envoy::r#type::v3::Percent;
use proto::wkt::{Any, BoolValue, Duration, UInt32Value};

use proto::pack_named;

use crate::config::model::PathNormalization;

pub const TLS_TRANSPORT_SOCKET: &str = "envoy.transport_sockets.tls";
pub const UPSTREAM_TLS_CONTEXT: &str =
    "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext";
pub const DOWNSTREAM_TLS_CONTEXT: &str =
    "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext";
pub const HTTP_PROTOCOL_OPTIONS: &str = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";
/// Envoy's fault injection filter, and the type of its (per-route) config.
pub const FAULT_FILTER: &str = "envoy.filters.http.fault";
pub const HTTP_FAULT: &str = "envoy.extensions.filters.http.fault.v3.HTTPFault";
/// Envoy's CORS filter, its (empty) filter config and its per-route policy.
pub const CORS_FILTER: &str = "envoy.filters.http.cors";
pub const CORS: &str = "envoy.extensions.filters.http.cors.v3.Cors";
pub const CORS_POLICY: &str = "envoy.extensions.filters.http.cors.v3.CorsPolicy";

pub fn socket_address(address: &str, port: u32) -> Address {
    Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            address: address.to_string(),
            port_specifier: Some(socket_address::PortSpecifier::PortValue(port)),
            ..Default::default()
        })),
    }
}

/// "Fetch this over the same ADS stream".
pub fn ads_config_source() -> ConfigSource {
    ConfigSource {
        resource_api_version: ApiVersion::V3 as i32,
        config_source_specifier: Some(config_source::ConfigSourceSpecifier::Ads(
            AggregatedConfigSource {},
        )),
        ..Default::default()
    }
}

pub fn duration(d: std::time::Duration) -> Duration {
    Duration {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

pub fn seconds(secs: i64) -> Duration {
    Duration {
        seconds: secs,
        nanos: 0,
    }
}

pub fn u32_value(value: u32) -> UInt32Value {
    UInt32Value { value }
}

pub fn bool_value(value: bool) -> BoolValue {
    BoolValue { value }
}

pub fn transport_socket(
    name: &str,
    type_name: &str,
    config: &impl prost::Message,
) -> TransportSocket {
    TransportSocket {
        name: name.to_string(),
        config_type: Some(transport_socket::ConfigType::TypedConfig(pack_named(
            type_name, config,
        ))),
    }
}

fn network_filter(name: &str, typed_config: Any) -> Filter {
    Filter {
        name: name.to_string(),
        config_type: Some(filter::ConfigType::TypedConfig(typed_config)),
    }
}

/// A TCP proxy to `cluster` (or to weighted clusters).
pub fn tcp_proxy(stat_prefix: &str, target: TcpTarget) -> Filter {
    tcp_proxy_filter(tcp_proxy_config(stat_prefix, target))
}

/// The TCP proxy's config, with its access log, for callers that add to it.
pub fn tcp_proxy_config(stat_prefix: &str, target: TcpTarget) -> TcpProxy {
    let cluster_specifier = match target {
        TcpTarget::Cluster(cluster) => tcp_proxy::ClusterSpecifier::Cluster(cluster),
        TcpTarget::Weighted(clusters) => {
            tcp_proxy::ClusterSpecifier::WeightedClusters(tcp_proxy::WeightedCluster {
                clusters: clusters
                    .into_iter()
                    .map(
                        |(name, weight)| tcp_proxy::weighted_cluster::ClusterWeight {
                            name,
                            weight,
                            ..Default::default()
                        },
                    )
                    .collect(),
            })
        }
    };
    TcpProxy {
        stat_prefix: stat_prefix.to_string(),
        cluster_specifier: Some(cluster_specifier),
        ..Default::default()
    }
}

/// The network filter of a TCP proxy config.
pub fn tcp_proxy_filter(config: TcpProxy) -> Filter {
    network_filter(
        "envoy.filters.network.tcp_proxy",
        pack_named(
            "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
            &config,
        ),
    )
}

/// Where a TCP proxy sends a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TcpTarget {
    Cluster(String),
    Weighted(Vec<(String, u32)>),
}

fn http_filter(name: &str, typed_config: Any) -> HttpFilter {
    HttpFilter {
        name: name.to_string(),
        config_type: Some(http_filter::ConfigType::TypedConfig(typed_config)),
        ..Default::default()
    }
}

/// The HTTP filters of every connection manager, in istiod's order: fault
/// and CORS (empty: routes configure them through their
/// `typed_per_filter_config`), then the router.
fn http_filters() -> Vec<HttpFilter> {
    vec![
        http_filter(FAULT_FILTER, pack_named(HTTP_FAULT, &HttpFault::default())),
        http_filter(CORS_FILTER, pack_named(CORS, &Cors::default())),
        http_filter(
            "envoy.filters.http.router",
            pack_named(
                "envoy.extensions.filters.http.router.v3.Router",
                &Router::default(),
            ),
        ),
    ]
}

/// An HTTP connection manager reading its routes from RDS `route_config_name`,
/// as istiod builds every one: paths normalized as the mesh's
/// `pathNormalization` says, WebSocket upgrades allowed, request ids from
/// the UUID extension, and routes waited for without a fetch timeout.
pub fn http_connection_manager(
    stat_prefix: &str,
    route_config_name: &str,
    paths: PathNormalization,
) -> Filter {
    http_connection_manager_filter(connection_manager(stat_prefix, route_config_name, paths))
}

/// A gateway's HTTP connection manager: as a sidecar's, and its responses
/// say `server: istio-envoy`, as istiod names a gateway's.
pub fn gateway_http_connection_manager(
    stat_prefix: &str,
    route_config_name: &str,
    paths: PathNormalization,
) -> Filter {
    http_connection_manager_filter(HttpConnectionManager {
        server_name: GATEWAY_SERVER_NAME.to_string(),
        ..connection_manager(stat_prefix, route_config_name, paths)
    })
}

/// The connection manager's path settings for the mesh's
/// `pathNormalization`, as istiod sets them: escaped slashes kept unless
/// DECODE_AND_MERGE_SLASHES.
fn path_settings(config: &mut HttpConnectionManager, paths: PathNormalization) {
    use http_connection_manager::PathWithEscapedSlashesAction as Escaped;
    config.path_with_escaped_slashes_action = Escaped::KeepUnchanged as i32;
    config.normalize_path = Some(bool_value(paths != PathNormalization::None));
    if matches!(
        paths,
        PathNormalization::MergeSlashes | PathNormalization::DecodeAndMergeSlashes
    ) {
        config.merge_slashes = true;
    }
    if paths == PathNormalization::DecodeAndMergeSlashes {
        config.path_with_escaped_slashes_action = Escaped::UnescapeAndForward as i32;
    }
}

/// The name istiod gives a gateway's connection managers (`EnvoyServerName`).
const GATEWAY_SERVER_NAME: &str = "istio-envoy";

fn connection_manager(
    stat_prefix: &str,
    route_config_name: &str,
    paths: PathNormalization,
) -> HttpConnectionManager {
    let mut config = HttpConnectionManager {
        stat_prefix: stat_prefix.to_string(),
        codec_type: http_connection_manager::CodecType::Auto as i32,
        route_specifier: Some(http_connection_manager::RouteSpecifier::Rds(Rds {
            config_source: Some(ConfigSource {
                initial_fetch_timeout: Some(seconds(0)),
                ..ads_config_source()
            }),
            route_config_name: route_config_name.to_string(),
        })),
        http_filters: http_filters(),
        use_remote_address: Some(bool_value(false)),
        upgrade_configs: vec![http_connection_manager::UpgradeConfig {
            upgrade_type: "websocket".to_string(),
            ..Default::default()
        }],
        // istiod turns Envoy's 5 minute stream idle timeout off.
        stream_idle_timeout: Some(seconds(0)),
        tracing: Some(istio_default_tracing()),
        request_id_extension: Some(uuid_request_id()),
        ..Default::default()
    };
    path_settings(&mut config, paths);
    config
}

fn http_connection_manager_filter(config: HttpConnectionManager) -> Filter {
    network_filter(
        "envoy.filters.network.http_connection_manager",
        pack_named(
            "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            &config,
        ),
    )
}

/// The request id extension istiod sets without a Telemetry resource:
/// Envoy's UUID ids, which also decide trace sampling.
fn uuid_request_id() -> RequestIdExtension {
    RequestIdExtension {
        typed_config: Some(pack_named(
            "envoy.extensions.request_id.uuid.v3.UuidRequestIdConfig",
            &UuidRequestIdConfig {
                use_request_id_for_trace_sampling: Some(bool_value(true)),
                ..Default::default()
            },
        )),
    }
}

/// Tracing as istiod sets it with its default mesh config (tracing enabled,
/// 1% sampled, no provider: Envoy's null tracer). With tracing on, Envoy
/// applies each route's decorator and, on outbound listeners, sends it
/// upstream as `x-envoy-decorator-operation`.
fn istio_default_tracing() -> http_connection_manager::Tracing {
    http_connection_manager::Tracing {
        client_sampling: Some(Percent { value: 100.0 }),
        random_sampling: Some(Percent { value: 1.0 }),
        overall_sampling: Some(Percent { value: 100.0 }),
        ..Default::default()
    }
}

/// The TLS inspector, which reads SNI from the ClientHello for filter chain
/// matching without terminating TLS.
pub fn tls_inspector() -> ListenerFilter {
    ListenerFilter {
        name: "envoy.filters.listener.tls_inspector".to_string(),
        config_type: Some(listener_filter::ConfigType::TypedConfig(pack_named(
            "envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector",
            &TlsInspector::default(),
        ))),
        ..Default::default()
    }
}
