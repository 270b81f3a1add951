//! The DownstreamTlsContext of a Gateway server that terminates TLS, as istiod builds it: ISTIO_MUTUAL with the proxy's own certificate, SIMPLE, MUTUAL and OPTIONAL_MUTUAL with `credentialName` (SDS over ADS) or certificate files.

use proto::pb::envoy::config::core::v3::{DataSource, data_source};
use proto::pb::envoy::extensions::transport_sockets::tls::v3::{
    CertificateValidationContext, CommonTlsContext, DownstreamTlsContext, TlsCertificate,
    common_tls_context,
};

use crate::config::model::{ServerTlsMode, ServerTlsSettings};

use super::filters;
use super::secret::{credential_ca_name, credential_name, istio_mutual_tls_context, sds_over_ads};

/// The ALPN a TCP or TLS server that terminates ISTIO_MUTUAL offers
/// (Istio's `ALPNDownstreamWithMxc`): a sidecar's peer metadata exchange
/// comes first.
const ISTIO_MUTUAL_TCP_ALPN: [&str; 3] = ["istio-peer-exchange", "h2", "http/1.1"];
/// The ALPN every other terminating server offers, HTTPS ISTIO_MUTUAL
/// included (Istio's `ALPNHttp`).
const HTTP_ALPN: [&str; 2] = ["h2", "http/1.1"];

/// Whether `mode` terminates TLS at the gateway.
pub fn terminates(mode: ServerTlsMode) -> bool {
    matches!(
        mode,
        ServerTlsMode::Simple
            | ServerTlsMode::Mutual
            | ServerTlsMode::OptionalMutual
            | ServerTlsMode::IstioMutual
    )
}

/// The TLS context of a server with `tls`, serving HTTP when `http`, or
/// `None` when the mode does not terminate TLS. Its ALPN is istiod's
/// `BuildListenerTLSContext`: `h2`, `http/1.1` for every terminating
/// server, with `istio-peer-exchange` first on a TCP or TLS server that
/// terminates ISTIO_MUTUAL.
pub fn server_tls_context(tls: &ServerTlsSettings, http: bool) -> Option<DownstreamTlsContext> {
    if !terminates(tls.mode) {
        return None;
    }
    let alpn: &[&str] = if tls.mode == ServerTlsMode::IstioMutual && !http {
        &ISTIO_MUTUAL_TCP_ALPN
    } else {
        &HTTP_ALPN
    };
    let common = if tls.mode == ServerTlsMode::IstioMutual {
        istio_mutual_tls_context(alpn)
    } else {
        CommonTlsContext {
            alpn_protocols: alpn.iter().map(|p| p.to_string()).collect(),
            ..credential_context(tls)
        }
    };
    Some(DownstreamTlsContext {
        common_tls_context: Some(common),
        require_client_certificate: Some(filters::bool_value(matches!(
            tls.mode,
            ServerTlsMode::Mutual | ServerTlsMode::IstioMutual
        ))),
        ..Default::default()
    })
}

/// The certificate and, for MUTUAL and OPTIONAL_MUTUAL, the CA that
/// verifies clients: `kubernetes://<credentialName>` and its `-cacert` over
/// ADS, or the files `serverCertificate`, `privateKey` and `caCertificates`.
fn credential_context(tls: &ServerTlsSettings) -> CommonTlsContext {
    let verifies_clients = matches!(
        tls.mode,
        ServerTlsMode::Mutual | ServerTlsMode::OptionalMutual
    );
    if let Some(credential) = &tls.credential_name {
        use common_tls_context::{CombinedCertificateValidationContext, ValidationContextType};
        return CommonTlsContext {
            tls_certificate_sds_secret_configs: vec![sds_over_ads(credential_name(credential))],
            validation_context_type: verifies_clients.then(|| {
                ValidationContextType::CombinedValidationContext(
                    CombinedCertificateValidationContext {
                        default_validation_context: Some(CertificateValidationContext::default()),
                        validation_context_sds_secret_config: Some(sds_over_ads(
                            credential_ca_name(credential),
                        )),
                        ..Default::default()
                    },
                )
            }),
            ..Default::default()
        };
    }
    CommonTlsContext {
        tls_certificates: vec![TlsCertificate {
            certificate_chain: tls.server_certificate.as_deref().map(file),
            private_key: tls.private_key.as_deref().map(file),
            ..Default::default()
        }],
        validation_context_type: verifies_clients
            .then_some(tls.ca_certificates.as_deref())
            .flatten()
            .map(|ca| {
                common_tls_context::ValidationContextType::ValidationContext(
                    CertificateValidationContext {
                        trusted_ca: Some(file(ca)),
                        ..Default::default()
                    },
                )
            }),
        ..Default::default()
    }
}

fn file(path: &str) -> DataSource {
    DataSource {
        specifier: Some(data_source::Specifier::Filename(path.to_string())),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests;
