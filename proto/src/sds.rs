//! The SDS reference istiod writes for a proxy's own certificate and roots:
//! a gRPC stream (v3, the node on the first message only) to a bootstrap
//! cluster, with no initial fetch timeout.

use crate::pb::envoy::config::core::v3::{
    ApiConfigSource, ApiVersion, ConfigSource, GrpcService, api_config_source, config_source,
    grpc_service,
};
use crate::pb::envoy::extensions::transport_sockets::tls::v3::SdsSecretConfig;

/// Secret `name`, fetched over gRPC through the bootstrap cluster `cluster`.
pub fn secret_through_cluster(name: &str, cluster: &str) -> SdsSecretConfig {
    SdsSecretConfig {
        name: name.to_string(),
        sds_config: Some(ConfigSource {
            config_source_specifier: Some(config_source::ConfigSourceSpecifier::ApiConfigSource(
                ApiConfigSource {
                    api_type: api_config_source::ApiType::Grpc as i32,
                    transport_api_version: ApiVersion::V3 as i32,
                    set_node_on_first_message_only: true,
                    grpc_services: vec![GrpcService {
                        target_specifier: Some(grpc_service::TargetSpecifier::EnvoyGrpc(
                            grpc_service::EnvoyGrpc {
                                cluster_name: cluster.to_string(),
                                ..Default::default()
                            },
                        )),
                        ..Default::default()
                    }],
                    ..Default::default()
                },
            )),
            initial_fetch_timeout: Some(crate::wkt::Duration::default()),
            resource_api_version: ApiVersion::V3 as i32,
            ..Default::default()
        }),
    }
}
