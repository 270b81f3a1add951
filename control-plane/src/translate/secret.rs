//! SDS: the secrets TLS contexts refer to by name, as Istio names them:
//! `default` (the proxy's workload certificate chain and private key) and
//! `ROOTCA` (the mesh root, which verifies peers), served by the proxy's own
//! agent through the `sds-grpc` cluster.

use std::collections::BTreeMap;

use proto::pb::envoy::config::core::v3::{
    ApiConfigSource, ApiVersion, ConfigSource, DataSource, GrpcService, api_config_source,
    config_source, data_source, grpc_service,
};
use proto::pb::envoy::extensions::transport_sockets::tls::v3::{
    CertificateValidationContext, CommonTlsContext, SdsSecretConfig, Secret, TlsCertificate,
    common_tls_context, secret,
};
use proto::wkt::Any;
use shared::type_url;

use super::filters;

/// The bootstrap cluster through which a proxy reaches its agent's SDS
/// server (a Unix socket), as pilot-agent names it.
pub const SDS_CLUSTER: &str = "sds-grpc";
/// The secret with the proxy's own certificate and key.
pub const SDS_DEFAULT: &str = "default";
/// The secret with the mesh root certificate.
pub const SDS_ROOT_CA: &str = "ROOTCA";
/// What replaces a private key in output meant for people.
pub const REDACTED: &str = "[redacted]";

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
        tls_certificate_sds_secret_configs: vec![sds_from_agent(SDS_DEFAULT)],
        validation_context_type: Some(
            common_tls_context::ValidationContextType::ValidationContextSdsSecretConfig(
                sds_from_agent(SDS_ROOT_CA),
            ),
        ),
        alpn_protocols: alpn.iter().map(|p| p.to_string()).collect(),
        ..Default::default()
    }
}

fn inline_bytes(text: &str) -> DataSource {
    DataSource {
        specifier: Some(data_source::Specifier::InlineBytes(
            text.as_bytes().to_vec(),
        )),
        ..Default::default()
    }
}

/// `default`: the certificate chain (leaf first) and its private key, PEM.
pub fn workload_secret(chain_pem: &str, key_pem: &str) -> Secret {
    Secret {
        name: SDS_DEFAULT.to_string(),
        r#type: Some(secret::Type::TlsCertificate(TlsCertificate {
            certificate_chain: Some(inline_bytes(chain_pem)),
            private_key: Some(inline_bytes(key_pem)),
            ..Default::default()
        })),
    }
}

/// `ROOTCA`: the roots that verify peer certificates, PEM.
pub fn root_secret(root_pem: &str) -> Secret {
    Secret {
        name: SDS_ROOT_CA.to_string(),
        r#type: Some(secret::Type::ValidationContext(
            CertificateValidationContext {
                trusted_ca: Some(inline_bytes(root_pem)),
                ..Default::default()
            },
        )),
    }
}

/// The secret with any private key replaced by [`REDACTED`].
pub fn redact(mut secret: Secret) -> Secret {
    if let Some(secret::Type::TlsCertificate(certificate)) = &mut secret.r#type
        && certificate.private_key.is_some()
    {
        certificate.private_key = Some(DataSource {
            specifier: Some(data_source::Specifier::InlineString(REDACTED.to_string())),
            ..Default::default()
        });
    }
    secret
}

/// A secret packed as the xDS server sends it.
pub fn pack(secret: &Secret) -> Any {
    proto::pack(type_url::SECRET, secret)
}

/// Secrets packed as the xDS server sends them, by name.
pub fn by_name(secrets: &[Secret]) -> BTreeMap<String, Any> {
    secrets.iter().map(|s| (s.name.clone(), pack(s))).collect()
}
