//! TLS origination: the rustls client configuration of a cluster, built once
//! per cluster runtime from the model's [`UpstreamTls`].
//!
//! Envoy's semantics: without a validation context nothing is verified; with
//! one, the chain must lead to the trusted roots, and the certificate must
//! carry a SAN one of the configured matchers accepts ([`super::san`]).
//! Without matchers only the chain is verified, unless the cluster asks for
//! `auto_san_validation`: then the name sent as SNI, which `auto_sni` takes
//! from each request's host. Failures carry Envoy's words
//! ([`super::tls_reason`]).

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{VerifierBuilderError, WebPkiServerVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, InvalidDnsNameError, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tracing::warn;

use crate::model::cluster::{SubjectAltName, Trust, UpstreamTls};
use crate::proxy::identity::uri_san;

use super::san;
use super::tls_reason::VerifyFailure;

/// Roots and crypto shared by all clusters.
#[derive(Debug)]
pub(crate) struct TlsContext {
    provider: Arc<CryptoProvider>,
    /// The system roots, read on first use.
    system_roots: OnceLock<Arc<RootCertStore>>,
}

impl Default for TlsContext {
    fn default() -> Self {
        Self {
            provider: Arc::new(rustls::crypto::ring::default_provider()),
            system_roots: OnceLock::new(),
        }
    }
}

impl TlsContext {
    fn system_roots(&self) -> Arc<RootCertStore> {
        self.system_roots
            .get_or_init(|| {
                let found = rustls_native_certs::load_native_certs();
                for error in &found.errors {
                    warn!(%error, "reading system root certificates");
                }
                let mut roots = RootCertStore::empty();
                let (added, ignored) = roots.add_parsable_certificates(found.certs);
                if ignored > 0 {
                    warn!(
                        added,
                        ignored, "some system root certificates could not be parsed"
                    );
                }
                Arc::new(roots)
            })
            .clone()
    }
}

/// Why a cluster's TLS origination cannot be configured.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    #[error("invalid SNI {sni:?}: {source}")]
    Sni {
        sni: String,
        source: InvalidDnsNameError,
    },
    #[error("invalid trusted CA certificate: {0}")]
    TrustedCa(#[source] rustls::Error),
    #[error("cannot build the certificate verifier: {0}")]
    Verifier(#[source] VerifierBuilderError),
    #[error("TLS protocol versions: {0}")]
    ProtocolVersions(#[source] rustls::Error),
    #[error("client key: {0}")]
    ClientKey(&'static str),
    #[error("client certificate: {0}")]
    ClientCertificate(#[source] rustls::Error),
}

/// How a cluster originates TLS.
#[derive(Debug)]
pub(crate) struct TlsOrigination {
    /// The configured SNI, if any.
    sni: Option<ServerName<'static>>,
    /// The request's host is the SNI (`auto_sni`).
    auto_sni: bool,
    /// Sends SNI and verifies the SNI name (or the configured SANs).
    with_sni: Arc<ClientConfig>,
    /// Sends no SNI and verifies the chain only (or the configured SANs).
    without_sni: Arc<ClientConfig>,
    /// The client certificate's first URI SAN (`source_principal`).
    local_principal: Option<Arc<str>>,
}

impl TlsOrigination {
    /// Builds the client configurations; `http2` adds `h2` to the ALPN list.
    pub(crate) fn new(
        tls: &UpstreamTls,
        http2: bool,
        ctx: &TlsContext,
    ) -> Result<Self, TlsConfigError> {
        let sni = if tls.sni.is_empty() {
            None
        } else {
            Some(
                ServerName::try_from(tls.sni.clone()).map_err(|source| TlsConfigError::Sni {
                    sni: tls.sni.clone(),
                    source,
                })?,
            )
        };
        let webpki = match &tls.trust {
            Trust::None => None,
            Trust::System => Some(webpki_verifier(ctx.system_roots(), &ctx.provider)?),
            Trust::Roots(ders) => {
                let mut roots = RootCertStore::empty();
                for der in ders {
                    roots
                        .add(CertificateDer::from(der.clone()))
                        .map_err(TlsConfigError::TrustedCa)?;
                }
                Some(webpki_verifier(Arc::new(roots), &ctx.provider)?)
            }
        };
        let mut alpn: Vec<Vec<u8>> = tls.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
        if http2 && !alpn.iter().any(|p| p == b"h2") {
            alpn.insert(0, b"h2".to_vec());
        }
        let names = |send_sni: bool| match (
            tls.subject_alt_names.is_empty(),
            send_sni && tls.verify_server_name,
        ) {
            (false, _) => NameCheck::Sans(tls.subject_alt_names.clone()),
            (true, true) => NameCheck::ServerName,
            (true, false) => NameCheck::ChainOnly,
        };
        let config = |send_sni: bool| {
            let verifier = Verifier {
                webpki: webpki.clone(),
                names: names(send_sni),
                provider: ctx.provider.clone(),
            };
            let builder = ClientConfig::builder_with_provider(ctx.provider.clone())
                .with_safe_default_protocol_versions()
                .map_err(TlsConfigError::ProtocolVersions)?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier));
            let mut config = match &tls.client_cert {
                None => builder.with_no_client_auth(),
                Some(cert) => {
                    let chain = cert
                        .chain
                        .iter()
                        .map(|c| CertificateDer::from(c.clone()))
                        .collect();
                    let key = PrivateKeyDer::try_from(cert.key.clone())
                        .map_err(TlsConfigError::ClientKey)?;
                    builder
                        .with_client_auth_cert(chain, key)
                        .map_err(TlsConfigError::ClientCertificate)?
                }
            };
            config.enable_sni = send_sni;
            config.alpn_protocols = alpn.clone();
            Ok::<_, TlsConfigError>(Arc::new(config))
        };
        Ok(Self {
            sni,
            auto_sni: tls.auto_sni,
            with_sni: config(true)?,
            without_sni: config(false)?,
            local_principal: tls
                .client_cert
                .as_ref()
                .and_then(|cert| cert.chain.first())
                .and_then(|der| uri_san(der))
                .map(Arc::from),
        })
    }

    /// The configuration and server name for a connection to `addr` for
    /// requests to `request_host` (the authority's host, port stripped):
    /// that host under `auto_sni` unless it is an IP address, else the
    /// cluster's SNI, else no SNI at all (Envoy's router sets the SNI per
    /// request; the pool keeps connections of each name apart).
    pub(crate) fn target(&self, addr: SocketAddr, request_host: Option<&str>) -> TlsTarget {
        let auto = request_host
            .filter(|_| self.auto_sni)
            .filter(|host| host.parse::<IpAddr>().is_err() && !host.starts_with('['))
            .and_then(|host| ServerName::try_from(host.to_string()).ok());
        let (config, name) = match auto.or_else(|| self.sni.clone()) {
            Some(name) => (&self.with_sni, name),
            None => (&self.without_sni, ServerName::IpAddress(addr.ip().into())),
        };
        TlsTarget {
            config: config.clone(),
            name,
            local_principal: self.local_principal.clone(),
        }
    }
}

/// What a connector needs to originate TLS to one host.
#[derive(Debug, Clone)]
pub(crate) struct TlsTarget {
    pub(crate) config: Arc<ClientConfig>,
    pub(crate) name: ServerName<'static>,
    /// The client certificate's first URI SAN.
    pub(crate) local_principal: Option<Arc<str>>,
}

fn webpki_verifier(
    roots: Arc<RootCertStore>,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<WebPkiServerVerifier>, TlsConfigError> {
    WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
        .build()
        .map_err(TlsConfigError::Verifier)
}

/// Which name the server certificate must be valid for.
#[derive(Debug)]
enum NameCheck {
    /// The name given to the handshake (the SNI: `auto_san_validation`).
    ServerName,
    /// A SAN one of these matchers accepts.
    Sans(Vec<SubjectAltName>),
    /// No name: the chain alone.
    ChainOnly,
}

#[derive(Debug)]
struct Verifier {
    /// `None` accepts any certificate (Trust::None).
    webpki: Option<Arc<WebPkiServerVerifier>>,
    names: NameCheck,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(webpki) = &self.webpki else {
            return Ok(ServerCertVerified::assertion());
        };
        // webpki checks the chain before the name: a name mismatch means the
        // chain was good.
        let name_matches =
            match webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
                Ok(_) => true,
                Err(rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForName
                    | CertificateError::NotValidForNameContext { .. },
                )) => false,
                Err(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer))
                    if san::is_self_signed(end_entity) =>
                {
                    return Err(VerifyFailure::SelfSigned.into_rustls());
                }
                Err(other) => return Err(other),
            };
        match &self.names {
            NameCheck::ChainOnly => Ok(ServerCertVerified::assertion()),
            NameCheck::ServerName if name_matches => Ok(ServerCertVerified::assertion()),
            NameCheck::ServerName => Err(VerifyFailure::SanList.into_rustls()),
            NameCheck::Sans(matchers) => {
                let sans = san::certificate_sans(end_entity);
                if san::any_matches(matchers, &sans) {
                    Ok(ServerCertVerified::assertion())
                } else {
                    Err(VerifyFailure::SanMatcher {
                        certificate_sans: sans.into_iter().map(|(_, value)| value).collect(),
                    }
                    .into_rustls())
                }
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
