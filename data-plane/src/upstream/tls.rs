//! TLS origination: the rustls client configuration of a cluster, built once
//! per cluster runtime from the model's [`UpstreamTls`].
//!
//! Envoy's semantics: without a validation context nothing is verified; with
//! one, the chain must lead to the trusted roots, and the name checked is a
//! configured subject alt name if any (a DNS name, or a URI such as a
//! SPIFFE id, matched exactly), else the SNI. When no SNI is sent and no
//! subject alt names are configured, only the chain is verified.

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
use crate::proxy::identity::uri_sans;

use super::lb::Host;

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
    #[error("none of the subject alt names is a valid DNS name or IP address")]
    NoValidSubjectAltName,
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
    /// Sends SNI and verifies the SNI name (or the configured SANs).
    with_sni: Arc<ClientConfig>,
    /// Sends no SNI and verifies the chain only (or the configured SANs).
    without_sni: Arc<ClientConfig>,
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
        let mut dns = Vec::new();
        let mut uris = Vec::new();
        for san in &tls.subject_alt_names {
            match san {
                SubjectAltName::Dns(name) => match ServerName::try_from(name.clone()) {
                    Ok(name) => dns.push(name),
                    Err(error) => {
                        warn!(san = name, %error, "ignoring a subject alt name that is not a valid DNS name or IP");
                    }
                },
                SubjectAltName::Uri(uri) => uris.push(uri.clone()),
            }
        }
        if !tls.subject_alt_names.is_empty() && dns.is_empty() && uris.is_empty() {
            return Err(TlsConfigError::NoValidSubjectAltName);
        }
        let mut alpn: Vec<Vec<u8>> = tls.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
        if http2 && !alpn.iter().any(|p| p == b"h2") {
            alpn.insert(0, b"h2".to_vec());
        }
        let names = |send_sni: bool| match (
            tls.subject_alt_names.is_empty(),
            send_sni && tls.verify_server_name,
        ) {
            (false, _) => NameCheck::Sans {
                dns: dns.clone(),
                uris: uris.clone(),
            },
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
            with_sni: config(true)?,
            without_sni: config(false)?,
        })
    }

    /// The configuration and server name for a connection to `host`: the
    /// cluster's SNI, else the host's DNS name, else no SNI at all.
    pub(crate) fn for_host(&self, host: &Host) -> TlsTarget {
        let (config, name) = if let Some(sni) = &self.sni {
            (&self.with_sni, sni.clone())
        } else if let Some(name) = host
            .hostname
            .as_deref()
            .and_then(|h| ServerName::try_from(h.to_string()).ok())
        {
            (&self.with_sni, name)
        } else {
            (
                &self.without_sni,
                ServerName::IpAddress(host.addr.ip().into()),
            )
        };
        TlsTarget {
            config: config.clone(),
            name,
        }
    }
}

/// What a connector needs to originate TLS to one host.
#[derive(Debug, Clone)]
pub(crate) struct TlsTarget {
    pub(crate) config: Arc<ClientConfig>,
    pub(crate) name: ServerName<'static>,
}

fn webpki_verifier(
    roots: Arc<RootCertStore>,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<WebPkiServerVerifier>, TlsConfigError> {
    WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
        .build()
        .map_err(TlsConfigError::Verifier)
}

/// The chain alone: webpki checks the chain before the name, so a name
/// mismatch means the chain was good.
fn chain_only(
    verified: Result<ServerCertVerified, rustls::Error>,
) -> Result<ServerCertVerified, rustls::Error> {
    match verified {
        Err(rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        )) => Ok(ServerCertVerified::assertion()),
        other => other,
    }
}

/// Which name the server certificate must be valid for.
#[derive(Debug)]
enum NameCheck {
    /// The name given to the handshake (the SNI).
    ServerName,
    /// Any of these subject alt names: DNS names, or URIs compared exactly.
    Sans {
        dns: Vec<ServerName<'static>>,
        uris: Vec<String>,
    },
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
        let verify = |name: &ServerName<'_>| {
            webpki.verify_server_cert(end_entity, intermediates, name, ocsp, now)
        };
        match &self.names {
            NameCheck::ServerName => verify(server_name),
            NameCheck::Sans { dns, uris } => {
                let mut first_error = None;
                for san in dns {
                    match verify(san) {
                        Ok(verified) => return Ok(verified),
                        Err(e) => {
                            first_error.get_or_insert(e);
                        }
                    }
                }
                if !uris.is_empty() {
                    chain_only(verify(server_name))?;
                    let found = uri_sans(end_entity.as_ref());
                    if uris.iter().any(|uri| found.contains(uri)) {
                        return Ok(ServerCertVerified::assertion());
                    }
                }
                Err(first_error.unwrap_or(rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForName,
                )))
            }
            NameCheck::ChainOnly => chain_only(verify(server_name)),
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
