//! The two secrets pilot-agent serves to its Envoy, from the workload
//! certificate: `default` (the chain and key, inline) and `ROOTCA` (the
//! root, inline), versioned by the certificate's serial so every rotation
//! is a new version; and the warnings when Envoy asks for another secret or
//! rejects them.

use proto::pb::envoy::config::core::v3::{DataSource, data_source};
use proto::pb::envoy::extensions::transport_sockets::tls::v3::{
    CertificateValidationContext, Secret, TlsCertificate, secret,
};
use proto::wkt::Any;
use shared::type_url;

use crate::identity::WorkloadCertificate;
use shared::naming::{SDS_ROOT_CA, SDS_WORKLOAD_CERTIFICATE};

/// Whether this server has a secret called `name`.
pub(super) fn is_served(name: &str) -> bool {
    name == SDS_WORKLOAD_CERTIFICATE || name == SDS_ROOT_CA
}

/// Warns that the Envoy asked for `name`, which this server does not have.
pub(super) fn warn_not_served(name: &str) {
    tracing::warn!(
        name = %name,
        "Envoy asked for a secret this agent does not have: it serves only \"default\" and \"ROOTCA\""
    );
}

/// Warns that the Envoy rejected the secrets of the response `nonce`.
pub(super) fn warn_rejected(nonce: &str, error: &str) {
    tracing::warn!(nonce = %nonce, error = %error, "Envoy rejected the secrets (NACK)");
}

/// The version of every secret made from `certificate`.
pub(super) fn version(certificate: &WorkloadCertificate) -> String {
    certificate.serial().to_string()
}

/// The secret `name` made from `certificate`, packed; `None` for a name
/// this server does not have.
pub(super) fn packed(name: &str, certificate: &WorkloadCertificate) -> Option<Any> {
    let secret = match name {
        SDS_WORKLOAD_CERTIFICATE => secret::Type::TlsCertificate(TlsCertificate {
            certificate_chain: Some(inline(certificate.chain_pem())),
            private_key: Some(inline(certificate.key_pem())),
            ..Default::default()
        }),
        SDS_ROOT_CA => secret::Type::ValidationContext(CertificateValidationContext {
            trusted_ca: Some(inline(certificate.root_pem().to_string())),
            ..Default::default()
        }),
        _ => return None,
    };
    let secret = Secret {
        name: name.to_string(),
        r#type: Some(secret),
    };
    Some(proto::pack(type_url::SECRET, &secret))
}

fn inline(pem: String) -> DataSource {
    DataSource {
        specifier: Some(data_source::Specifier::InlineBytes(pem.into_bytes())),
        ..Default::default()
    }
}
