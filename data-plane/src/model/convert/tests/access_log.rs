//! Access loggers: the stdout line, and Envoy's gRPC loggers to the
//! `envoy_accesslog_service` cluster (Istio's access log service), with
//! every setting the agent cannot honour rejected by name.

use proto::pb::envoy::config::accesslog::v3::{AccessLog, AccessLogFilter, access_log};
use proto::pb::envoy::config::core::v3::{ApiVersion, GrpcService, grpc_service};
use proto::pb::envoy::config::listener::v3::{Filter, FilterChain, Listener, filter};
use proto::pb::envoy::extensions::access_loggers::grpc::v3::{
    CommonGrpcAccessLogConfig, HttpGrpcAccessLogConfig, TcpGrpcAccessLogConfig,
};
use proto::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, HttpFilter, Rds, http_connection_manager, http_filter,
};
use proto::pb::envoy::extensions::filters::network::tcp_proxy::v3::{TcpProxy, tcp_proxy};
use proto::pb::envoy::r#type::metadata::v3::{
    MetadataKey, MetadataKind, metadata_key, metadata_kind,
};
use proto::pb::envoy::r#type::tracing::v3::{CustomTag, custom_tag};
use proto::wkt::UInt32Value;

use super::{assert_rejected, pack, socket_address};
use crate::model::access_log::{CustomTag as ModelTag, GrpcAccessLog, TagValue};
use crate::model::convert::access_log::{HTTP_GRPC, TCP_GRPC};
use crate::model::convert::listener::{HCM, ROUTER, TCP_PROXY};
use crate::model::listener::{ChainAction, HttpManager, TcpProxy as ModelTcpProxy};
use crate::model::secret::SecretSources;
use crate::model::{Error, listener_from_proto};
use shared::egress::ACCESS_LOG_SERVICE_CLUSTER;

const STDOUT: &str =
    "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog";

pub(super) fn logger(type_url: &str, config: &impl prost::Message) -> AccessLog {
    AccessLog {
        name: "envoy.access_loggers.grpc".into(),
        filter: None,
        config_type: Some(access_log::ConfigType::TypedConfig(pack(type_url, config))),
    }
}

fn stdout() -> AccessLog {
    logger(STDOUT, &proto::wkt::Empty {})
}

/// The common config Istio's control plane writes for the access log
/// service, with the egress policy tag.
fn common(tag: CustomTag) -> CommonGrpcAccessLogConfig {
    CommonGrpcAccessLogConfig {
        log_name: "egress".into(),
        grpc_service: Some(GrpcService {
            target_specifier: Some(grpc_service::TargetSpecifier::EnvoyGrpc(
                grpc_service::EnvoyGrpc {
                    cluster_name: ACCESS_LOG_SERVICE_CLUSTER.into(),
                    ..Default::default()
                },
            )),
            ..Default::default()
        }),
        transport_api_version: ApiVersion::V3 as i32,
        custom_tags: vec![tag],
        ..Default::default()
    }
}

fn route_mark_tag() -> CustomTag {
    CustomTag {
        tag: "egress_policy".into(),
        r#type: Some(custom_tag::Type::Metadata(custom_tag::Metadata {
            kind: Some(MetadataKind {
                kind: Some(metadata_kind::Kind::Route(metadata_kind::Route {})),
            }),
            metadata_key: Some(MetadataKey {
                key: "istio".into(),
                path: vec![metadata_key::PathSegment {
                    segment: Some(metadata_key::path_segment::Segment::Key(
                        "egress_policy".into(),
                    )),
                }],
            }),
            default_value: String::new(),
        })),
    }
}

fn literal_tag(value: &str) -> CustomTag {
    CustomTag {
        tag: "egress_policy".into(),
        r#type: Some(custom_tag::Type::Literal(custom_tag::Literal {
            value: value.into(),
        })),
    }
}

fn http_grpc(common: CommonGrpcAccessLogConfig) -> AccessLog {
    logger(
        HTTP_GRPC,
        &HttpGrpcAccessLogConfig {
            common_config: Some(common),
            ..Default::default()
        },
    )
}

fn tcp_grpc(common: CommonGrpcAccessLogConfig) -> AccessLog {
    logger(
        TCP_GRPC,
        &TcpGrpcAccessLogConfig {
            common_config: Some(common),
        },
    )
}

fn listener_with(filter: Filter) -> Listener {
    Listener {
        name: "0.0.0.0_80".into(),
        address: Some(socket_address("0.0.0.0", 80)),
        filter_chains: vec![FilterChain {
            name: "chain".into(),
            filters: vec![filter],
            ..Default::default()
        }],
        ..Default::default()
    }
}

pub(super) fn http_listener(access_log: Vec<AccessLog>) -> Listener {
    let hcm = HttpConnectionManager {
        stat_prefix: "outbound_0.0.0.0_80".into(),
        http_filters: vec![HttpFilter {
            name: "envoy.filters.http.router".into(),
            config_type: Some(http_filter::ConfigType::TypedConfig(pack(
                ROUTER,
                &proto::wkt::Empty {},
            ))),
            ..Default::default()
        }],
        route_specifier: Some(http_connection_manager::RouteSpecifier::Rds(Rds {
            route_config_name: "80".into(),
            ..Default::default()
        })),
        access_log,
        ..Default::default()
    };
    listener_with(Filter {
        name: "envoy.filters.network.http_connection_manager".into(),
        config_type: Some(filter::ConfigType::TypedConfig(pack(HCM, &hcm))),
    })
}

fn tcp_listener(access_log: Vec<AccessLog>) -> Listener {
    let tcp = TcpProxy {
        stat_prefix: "BlackHoleCluster".into(),
        cluster_specifier: Some(tcp_proxy::ClusterSpecifier::Cluster(
            "BlackHoleCluster".into(),
        )),
        access_log,
        ..Default::default()
    };
    listener_with(Filter {
        name: "envoy.filters.network.tcp_proxy".into(),
        config_type: Some(filter::ConfigType::TypedConfig(pack(TCP_PROXY, &tcp))),
    })
}

pub(super) fn convert(l: &Listener) -> Result<crate::model::Listener, Error> {
    listener_from_proto(l, &SecretSources::default())
}

pub(super) fn http_manager(l: &Listener) -> HttpManager {
    match convert(l).unwrap().filter_chains.remove(0).action {
        ChainAction::Http(manager) => manager,
        other => panic!("expected an HTTP connection manager, got {other:?}"),
    }
}

fn tcp_proxy_of(l: &Listener) -> ModelTcpProxy {
    match convert(l).unwrap().filter_chains.remove(0).action {
        ChainAction::Tcp(proxy) => proxy,
        other => panic!("expected a TCP proxy, got {other:?}"),
    }
}

const HTTP_LOG: &str = "filter_chains[0].http_connection_manager.access_log[0]";

#[test]
fn an_http_grpc_logger_takes_the_egress_policy_from_route_metadata() {
    let manager = http_manager(&http_listener(vec![http_grpc(common(route_mark_tag()))]));
    assert!(
        manager.file_access_logs.is_empty(),
        "no file logger: no line"
    );
    assert_eq!(
        manager.grpc_access_log.as_deref(),
        Some(&GrpcAccessLog {
            log_name: "egress".into(),
            custom_tags: vec![ModelTag {
                tag: "egress_policy".into(),
                value: TagValue::RouteEgressPolicy {
                    default_value: None
                },
            }],
        })
    );
}

#[test]
fn a_stdout_logger_and_a_grpc_logger_both_log() {
    let manager = http_manager(&http_listener(vec![
        stdout(),
        http_grpc(common(route_mark_tag())),
    ]));
    assert_eq!(manager.file_access_logs.len(), 1);
    assert!(manager.grpc_access_log.is_some());
}

#[test]
fn without_loggers_nothing_is_logged() {
    let manager = http_manager(&http_listener(Vec::new()));
    assert!(manager.file_access_logs.is_empty());
    assert!(manager.grpc_access_log.is_none());
}

#[test]
fn a_tcp_grpc_logger_on_a_fall_through_chain_carries_a_literal_mark() {
    let proxy = tcp_proxy_of(&tcp_listener(vec![tcp_grpc(common(literal_tag(
        "blocked",
    )))]));
    assert!(proxy.file_access_logs.is_empty());
    let logger = proxy.grpc_access_log.expect("a gRPC logger");
    assert_eq!(&*logger.log_name, "egress");
    assert_eq!(
        logger.custom_tags[0].value,
        TagValue::Literal("blocked".into())
    );
}

#[test]
fn another_cluster_is_rejected() {
    let mut config = common(route_mark_tag());
    config.grpc_service = Some(GrpcService {
        target_specifier: Some(grpc_service::TargetSpecifier::EnvoyGrpc(
            grpc_service::EnvoyGrpc {
                cluster_name: "my_als".into(),
                ..Default::default()
            },
        )),
        ..Default::default()
    });
    assert_rejected(
        convert(&http_listener(vec![http_grpc(config)])),
        "listener",
        "0.0.0.0_80",
        &format!("{HTTP_LOG}.typed_config.common_config.grpc_service.envoy_grpc.cluster_name"),
        "\"my_als\" is not supported: the agent streams access logs to its control plane, named by cluster envoy_accesslog_service",
    );
}

#[test]
fn google_grpc_is_rejected() {
    let mut config = common(route_mark_tag());
    config.grpc_service = Some(GrpcService {
        target_specifier: Some(grpc_service::TargetSpecifier::GoogleGrpc(Default::default())),
        ..Default::default()
    });
    assert_rejected(
        convert(&http_listener(vec![http_grpc(config)])),
        "listener",
        "0.0.0.0_80",
        &format!("{HTTP_LOG}.typed_config.common_config.grpc_service.google_grpc"),
        "not supported: use envoy_grpc with cluster_name envoy_accesslog_service",
    );
}

#[test]
fn a_logger_filter_is_rejected() {
    let mut log = http_grpc(common(route_mark_tag()));
    log.filter = Some(AccessLogFilter::default());
    assert_rejected(
        convert(&http_listener(vec![log])),
        "listener",
        "0.0.0.0_80",
        &format!("{HTTP_LOG}.filter"),
        "access log filters are not supported: every entry is logged",
    );
}

#[test]
fn buffer_settings_are_rejected() {
    let mut config = common(route_mark_tag());
    config.buffer_size_bytes = Some(UInt32Value { value: 1024 });
    assert_rejected(
        convert(&http_listener(vec![http_grpc(config)])),
        "listener",
        "0.0.0.0_80",
        &format!("{HTTP_LOG}.typed_config.common_config.buffer_size_bytes"),
        "not supported: the agent sends entries as they come and reconnects with its own backoff",
    );
}

#[test]
fn a_v2_transport_is_rejected() {
    let mut config = common(route_mark_tag());
    config.transport_api_version = 1;
    assert_rejected(
        convert(&http_listener(vec![http_grpc(config)])),
        "listener",
        "0.0.0.0_80",
        &format!("{HTTP_LOG}.typed_config.common_config.transport_api_version"),
        "only V3 is supported",
    );
}

#[test]
fn extra_headers_are_rejected() {
    let log = logger(
        HTTP_GRPC,
        &HttpGrpcAccessLogConfig {
            common_config: Some(common(route_mark_tag())),
            additional_request_headers_to_log: vec!["x-b3-traceid".into()],
            ..Default::default()
        },
    );
    assert_rejected(
        convert(&http_listener(vec![log])),
        "listener",
        "0.0.0.0_80",
        &format!("{HTTP_LOG}.typed_config.additional_request_headers_to_log"),
        "logging extra headers is not supported",
    );
}

#[test]
fn the_wrong_kind_of_grpc_logger_is_rejected() {
    assert_rejected(
        convert(&http_listener(vec![tcp_grpc(common(literal_tag(
            "blocked",
        )))])),
        "listener",
        "0.0.0.0_80",
        &format!("{HTTP_LOG}.typed_config"),
        "tcp_grpc logs TCP connections: an HTTP connection manager takes http_grpc",
    );
    assert_rejected(
        convert(&tcp_listener(vec![http_grpc(common(route_mark_tag()))])),
        "listener",
        "0.0.0.0_80",
        "filter_chains[0].tcp_proxy.access_log[0].typed_config",
        "http_grpc logs HTTP requests: a TCP proxy takes tcp_grpc",
    );
}

#[test]
fn tags_other_than_literal_and_the_route_mark_are_rejected() {
    let header = CustomTag {
        tag: "agent".into(),
        r#type: Some(custom_tag::Type::RequestHeader(custom_tag::Header {
            name: "user-agent".into(),
            default_value: String::new(),
        })),
    };
    assert_rejected(
        convert(&http_listener(vec![http_grpc(common(header))])),
        "listener",
        "0.0.0.0_80",
        &format!("{HTTP_LOG}.typed_config.common_config.custom_tags[0]"),
        "only literal and route metadata tags are supported",
    );
    let mut other_key = route_mark_tag();
    if let Some(custom_tag::Type::Metadata(metadata)) = &mut other_key.r#type {
        metadata.metadata_key.as_mut().unwrap().key = "envoy.lb".into();
    }
    assert_rejected(
        convert(&http_listener(vec![http_grpc(common(other_key))])),
        "listener",
        "0.0.0.0_80",
        &format!("{HTTP_LOG}.typed_config.common_config.custom_tags[0].metadata.metadata_key"),
        "only key istio with path egress_policy (the egress policy mark) is supported",
    );
}

#[test]
fn a_second_grpc_logger_is_rejected() {
    assert_rejected(
        convert(&http_listener(vec![
            http_grpc(common(route_mark_tag())),
            http_grpc(common(route_mark_tag())),
        ])),
        "listener",
        "0.0.0.0_80",
        "filter_chains[0].http_connection_manager.access_log[1]",
        "only one gRPC access logger per filter is supported",
    );
}
