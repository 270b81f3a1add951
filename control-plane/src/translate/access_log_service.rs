//! Envoy's gRPC access loggers on sidecar outbound listeners, as istiod adds
//! them with MeshConfig `enableEnvoyAccessLogService`: `http_grpc` on every
//! HTTP connection manager and `tcp_grpc` on every TCP proxy, beside the
//! file logger, streaming to the `envoy_accesslog_service` cluster, each
//! entry tagged `egress_policy` with the mark that decided it.

use proto::pb::envoy::config::accesslog::v3::{AccessLog, access_log};
use proto::pb::envoy::config::core::v3::{ApiVersion, GrpcService, grpc_service};
use proto::pb::envoy::config::listener::v3::{FilterChain, Listener, filter};
use proto::pb::envoy::extensions::access_loggers::grpc::v3::{
    CommonGrpcAccessLogConfig, HttpGrpcAccessLogConfig, TcpGrpcAccessLogConfig,
};
use proto::pb::envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;
use proto::pb::envoy::extensions::filters::network::tcp_proxy::v3::TcpProxy;
use proto::pb::envoy::r#type::metadata::v3::{
    MetadataKey, MetadataKind, metadata_key, metadata_kind,
};
use proto::pb::envoy::r#type::tracing::v3::{CustomTag, custom_tag};
use proto::pb::google::protobuf::value::Kind;
use proto::prost::Message;
use proto::{pack, pack_named};
use shared::egress::{ACCESS_LOG_SERVICE_CLUSTER, EGRESS_POLICY_FIELD, METADATA_NAMESPACE};

/// The log name every entry's stream carries.
pub const LOG_NAME: &str = "egress";
/// The mark of traffic no fall-through decided.
const NO_MARK: &str = "-";

const HCM: &str = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
const TCP_PROXY: &str =
    "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy";

/// Adds the gRPC access loggers to every HTTP connection manager and TCP
/// proxy of `listeners`, default chains included.
pub fn add_grpc_access_logs(listeners: &mut [Listener]) {
    for listener in listeners {
        let chains = listener
            .filter_chains
            .iter_mut()
            .chain(listener.default_filter_chain.as_mut());
        for chain in chains {
            add_to_chain(chain);
        }
    }
}

/// A chain's filters get their logger; a TCP proxy's entries carry the
/// chain's own mark (`-` when it has none).
fn add_to_chain(chain: &mut FilterChain) {
    let mark = chain_mark(chain).unwrap_or(NO_MARK).to_string();
    for network_filter in &mut chain.filters {
        let Some(filter::ConfigType::TypedConfig(any)) = &mut network_filter.config_type else {
            continue;
        };
        match any.type_url.as_str() {
            HCM => {
                if let Ok(mut hcm) = HttpConnectionManager::decode(any.value.as_slice()) {
                    hcm.access_log.push(http_grpc_access_log());
                    *any = pack(HCM, &hcm);
                }
            }
            TCP_PROXY => {
                if let Ok(mut tcp) = TcpProxy::decode(any.value.as_slice()) {
                    tcp.access_log.push(tcp_grpc_access_log(&mark));
                    *any = pack(TCP_PROXY, &tcp);
                }
            }
            _ => {}
        }
    }
}

/// The `istio`/`egress_policy` mark in a chain's metadata.
fn chain_mark(chain: &FilterChain) -> Option<&str> {
    let value = chain
        .metadata
        .as_ref()?
        .filter_metadata
        .get(METADATA_NAMESPACE)?
        .fields
        .get(EGRESS_POLICY_FIELD)?;
    match &value.kind {
        Some(Kind::StringValue(mark)) => Some(mark),
        _ => None,
    }
}

/// `envoy.access_loggers.http_grpc`, tagging each entry with the mark of
/// the route that served it (route metadata `istio`/`egress_policy`).
fn http_grpc_access_log() -> AccessLog {
    let route_mark = CustomTag {
        tag: EGRESS_POLICY_FIELD.to_string(),
        r#type: Some(custom_tag::Type::Metadata(custom_tag::Metadata {
            kind: Some(MetadataKind {
                kind: Some(metadata_kind::Kind::Route(metadata_kind::Route {})),
            }),
            metadata_key: Some(MetadataKey {
                key: METADATA_NAMESPACE.to_string(),
                path: vec![metadata_key::PathSegment {
                    segment: Some(metadata_key::path_segment::Segment::Key(
                        EGRESS_POLICY_FIELD.to_string(),
                    )),
                }],
            }),
            default_value: NO_MARK.to_string(),
        })),
    };
    let config = HttpGrpcAccessLogConfig {
        common_config: Some(common_config(route_mark)),
        ..Default::default()
    };
    AccessLog {
        name: "envoy.access_loggers.http_grpc".to_string(),
        config_type: Some(access_log::ConfigType::TypedConfig(pack_named(
            "envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig",
            &config,
        ))),
        ..Default::default()
    }
}

/// `envoy.access_loggers.tcp_grpc`, tagging each entry with `mark`.
fn tcp_grpc_access_log(mark: &str) -> AccessLog {
    let literal_mark = CustomTag {
        tag: EGRESS_POLICY_FIELD.to_string(),
        r#type: Some(custom_tag::Type::Literal(custom_tag::Literal {
            value: mark.to_string(),
        })),
    };
    let config = TcpGrpcAccessLogConfig {
        common_config: Some(common_config(literal_mark)),
    };
    AccessLog {
        name: "envoy.access_loggers.tcp_grpc".to_string(),
        config_type: Some(access_log::ConfigType::TypedConfig(pack_named(
            "envoy.extensions.access_loggers.grpc.v3.TcpGrpcAccessLogConfig",
            &config,
        ))),
        ..Default::default()
    }
}

/// Log name `egress`, V3, to `envoy_accesslog_service`, with `tag`.
fn common_config(tag: CustomTag) -> CommonGrpcAccessLogConfig {
    CommonGrpcAccessLogConfig {
        log_name: LOG_NAME.to_string(),
        grpc_service: Some(GrpcService {
            target_specifier: Some(grpc_service::TargetSpecifier::EnvoyGrpc(
                grpc_service::EnvoyGrpc {
                    cluster_name: ACCESS_LOG_SERVICE_CLUSTER.to_string(),
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

#[cfg(test)]
mod tests;
