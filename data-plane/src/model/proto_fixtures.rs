//! xDS protos that the tests of the conversions and of the store build:
//! TLS transport sockets, inline data, SDS references to
//! the mesh's certificate and roots (over ADS, or through `sds-grpc` as
//! istiod writes them), a self-signed certificate, and access log JSON
//! formats.

use prost::Message;
use proto::pb::envoy::config::core::v3::{
    AggregatedConfigSource, ConfigSource, DataSource, TransportSocket, config_source, data_source,
    transport_socket,
};
use proto::pb::envoy::extensions::transport_sockets::tls::v3::{
    CommonTlsContext, SdsSecretConfig, common_tls_context,
};
use shared::naming::{SDS_CLUSTER, SDS_ROOT_CA, SDS_WORKLOAD_CERTIFICATE};

/// A TLS transport socket configured by `message` of type `type_url`.
pub(crate) fn transport_socket(type_url: &str, message: &impl Message) -> TransportSocket {
    TransportSocket {
        name: "envoy.transport_sockets.tls".into(),
        config_type: Some(transport_socket::ConfigType::TypedConfig(proto::pack(
            type_url, message,
        ))),
    }
}

pub(crate) fn inline(text: &str) -> DataSource {
    DataSource {
        specifier: Some(data_source::Specifier::InlineString(text.to_string())),
        ..Default::default()
    }
}

/// A self-signed certificate for `name` and its key, PEM.
pub(crate) fn certificate_pem(name: &str) -> (String, String) {
    let key = rcgen::KeyPair::generate().expect("generate a key");
    let cert = rcgen::CertificateParams::new(vec![name.to_string()])
        .expect("certificate parameters")
        .self_signed(&key)
        .expect("self-sign");
    (cert.pem(), key.serialize_pem())
}

/// The SDS secret `name`, fetched over ADS.
pub(crate) fn sds(name: &str) -> SdsSecretConfig {
    SdsSecretConfig {
        name: name.to_string(),
        sds_config: Some(ConfigSource {
            config_source_specifier: Some(config_source::ConfigSourceSpecifier::Ads(
                AggregatedConfigSource {},
            )),
            ..Default::default()
        }),
    }
}

/// The SDS secret `name` through [`SDS_CLUSTER`], as istiod refers to the
/// proxy's own certificate and roots.
pub(crate) fn local_sds(name: &str) -> SdsSecretConfig {
    proto::sds::secret_through_cluster(name, SDS_CLUSTER)
}

/// Istio's mutual TLS as istiod writes it now: `default` and `ROOTCA`
/// through `sds-grpc`, the proxy's own identity.
pub(crate) fn local_mesh_context() -> CommonTlsContext {
    CommonTlsContext {
        tls_certificate_sds_secret_configs: vec![local_sds(SDS_WORKLOAD_CERTIFICATE)],
        validation_context_type: Some(
            common_tls_context::ValidationContextType::ValidationContextSdsSecretConfig(local_sds(
                SDS_ROOT_CA,
            )),
        ),
        ..Default::default()
    }
}

/// Istio's mutual TLS inside the mesh: the workload certificate `default`
/// and the roots `ROOTCA`, both over SDS.
pub(crate) fn mesh_context() -> CommonTlsContext {
    CommonTlsContext {
        tls_certificate_sds_secret_configs: vec![sds("default")],
        validation_context_type: Some(
            common_tls_context::ValidationContextType::ValidationContextSdsSecretConfig(sds(
                "ROOTCA",
            )),
        ),
        ..Default::default()
    }
}

/// A `json_format` Struct of `fields` (key, format string).
pub(crate) fn json_format(fields: &[(&str, &str)]) -> proto::pb::google::protobuf::Struct {
    use proto::pb::google::protobuf::{Value, value::Kind};
    proto::pb::google::protobuf::Struct {
        fields: fields
            .iter()
            .map(|(key, format)| {
                let value = Value {
                    kind: Some(Kind::StringValue((*format).into())),
                };
                ((*key).into(), value)
            })
            .collect(),
    }
}
