//! SDS references as istiod writes them: `default` and `ROOTCA` from the proxy's agent through `sds-grpc`.

use proto::pb::envoy::config::core::v3::{
    ApiConfigSource, ApiVersion, ConfigSource, GrpcService, api_config_source, config_source,
    grpc_service,
};
use proto::pb::envoy::extensions::transport_sockets::tls::v3::{
    CommonTlsContext, SdsSecretConfig, common_tls_context,
};

use shared::naming::{SDS_CLUSTER, SDS_ROOT_CA, SDS_WORKLOAD_CERTIFICATE};

use super::filters;

/// A reference to secret `name`, fetched from the proxy's agent through
/// [`SDS_CLUSTER`], as istiod writes it: gRPC, v3, the node on the first
/// message only, and no initial fetch timeout (the agent always has its
/// workload certificate, so Envoy waits for it).
fn sds_from_agent(name: &str) -> SdsSecretConfig {
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
                                cluster_name: SDS_CLUSTER.to_string(),
                                ..Default::default()
                            },
                        )),
                        ..Default::default()
                    }],
                    ..Default::default()
                },
            )),
            initial_fetch_timeout: Some(filters::seconds(0)),
            resource_api_version: ApiVersion::V3 as i32,
            ..Default::default()
        }),
    }
}

/// The TLS context of Istio mutual TLS, either side: the proxy's own
/// certificate (`default`) and the mesh root (`ROOTCA`) from the agent's SDS.
pub fn istio_mutual_tls_context(alpn: &[&str]) -> CommonTlsContext {
    CommonTlsContext {
        tls_certificate_sds_secret_configs: vec![sds_from_agent(SDS_WORKLOAD_CERTIFICATE)],
        validation_context_type: Some(
            common_tls_context::ValidationContextType::ValidationContextSdsSecretConfig(
                sds_from_agent(SDS_ROOT_CA),
            ),
        ),
        alpn_protocols: alpn.iter().map(|p| p.to_string()).collect(),
        ..Default::default()
    }
}
