//! TLS → model: the transport socket of a cluster (origination) or a filter
//! chain (termination), certificates and validation contexts, and SDS
//! secrets and where each reference takes them from (ADS, or the agent's
//! own identity through `sds-grpc`). Certificate material is read and
//! parsed here, so a missing file or bad PEM rejects the resource that
//! names it.

use std::sync::Arc;

use prost::Message;
use proto::pb::envoy::config::core::v3::{
    ApiConfigSource, TransportSocket, api_config_source::ApiType, config_source, grpc_service,
    transport_socket,
};
use proto::pb::envoy::extensions::transport_sockets::tls::v3::{
    CertificateValidationContext, CommonTlsContext, DownstreamTlsContext, SdsSecretConfig,
    Secret as PbSecret, SubjectAltNameMatcher, TlsCertificate, UpstreamTlsContext,
    common_tls_context, secret, subject_alt_name_matcher::SanType,
};

use super::data_source::{self, DataSourceError};
use super::route::string_match;
use super::{At, decode};
use crate::model::Error;
use crate::model::cluster::{ClientCert, SanType as SanKind, SubjectAltName, Trust, UpstreamTls};
use crate::model::listener::DownstreamTls;
use crate::model::secret::{Secret, SecretSources};
use shared::naming::{SDS_CLUSTER, SDS_ROOT_CA, SDS_WORKLOAD_CERTIFICATE};

pub(super) const UPSTREAM_TLS: &str =
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext";
pub(super) const DOWNSTREAM_TLS: &str =
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext";
pub(super) const RAW_BUFFER: &str =
    "type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer";

/// Why a certificate and key could not be read.
#[derive(Debug, thiserror::Error)]
enum CertificateError {
    #[error("certificate_chain is required")]
    MissingChain,
    #[error("private_key is required")]
    MissingKey,
    #[error(transparent)]
    Read(#[from] DataSourceError),
    #[error("certificate_chain: {0}")]
    Chain(PemError),
    #[error("private_key: no PEM private key found")]
    NoPrivateKey,
}

/// Why PEM text held no certificates.
#[derive(Debug, thiserror::Error)]
enum PemError {
    #[error("invalid PEM: {0}")]
    Invalid(std::io::Error),
    #[error("no PEM certificate found")]
    NoCertificate,
}

/// The TLS context of type `tls_type` that `socket` carries: `None` without
/// a transport socket or with raw_buffer (plaintext).
fn tls_context<M: Message + Default>(
    socket: Option<&TransportSocket>,
    tls_type: &str,
    at: &At<'_>,
) -> Result<Option<M>, Error> {
    let Some(socket) = socket else {
        return Ok(None);
    };
    match &socket.config_type {
        Some(transport_socket::ConfigType::TypedConfig(any)) if any.type_url == tls_type => {
            decode(any, tls_type, at).map(Some)
        }
        Some(transport_socket::ConfigType::TypedConfig(any)) if any.type_url == RAW_BUFFER => {
            Ok(None)
        }
        _ => Err(at.error(format!("unsupported transport socket {}", socket.name))),
    }
}

/// A cluster's TLS origination and the SDS secrets it refers to.
pub(super) struct Origination {
    pub tls: UpstreamTls,
    pub secret_names: Vec<Arc<str>>,
}

/// A cluster's TLS origination, if its transport socket is TLS.
pub(super) fn upstream_tls(
    socket: Option<&TransportSocket>,
    secrets: &SecretSources,
    at: &At<'_>,
) -> Result<Option<Origination>, Error> {
    let Some(ctx) = tls_context::<UpstreamTlsContext>(socket, UPSTREAM_TLS, at)? else {
        return Ok(None);
    };
    let common = ctx.common_tls_context.unwrap_or_default();
    let at = at.field("common_tls_context");
    let (client_cert, mut names) = certificate(&common, secrets, &at)?;
    let peer = peer_validation(&common, secrets, &at)?;
    if matches!(peer.trust, Trust::None) && !peer.subject_alt_names.is_empty() {
        // Envoy refuses this too: names checked on an unverified chain prove nothing.
        return Err(at
            .field("validation_context.match_typed_subject_alt_names")
            .error(
                "subject alt names cannot be verified without trusted_ca or system_root_certs",
            ));
    }
    names.extend(peer.secret_name);
    let tls = UpstreamTls {
        sni: ctx.sni,
        auto_sni: false,
        trust: peer.trust,
        subject_alt_names: peer.subject_alt_names,
        client_cert,
        alpn: alpn_protocols(common.alpn_protocols, &at)?,
        verify_server_name: false,
    };
    Ok(Some(Origination {
        tls,
        secret_names: names,
    }))
}

/// A filter chain's TLS termination.
pub(super) fn downstream_tls(
    socket: Option<&TransportSocket>,
    secrets: &SecretSources,
    at: &At<'_>,
) -> Result<Option<DownstreamTls>, Error> {
    let Some(ctx) = tls_context::<DownstreamTlsContext>(socket, DOWNSTREAM_TLS, at)? else {
        return Ok(None);
    };
    let common = ctx.common_tls_context.unwrap_or_default();
    let at = at.field("common_tls_context");
    let (certificate, mut secret_names) = certificate(&common, secrets, &at)?;
    let peer = peer_validation(&common, secrets, &at)?;
    secret_names.extend(peer.secret_name);
    if !peer.subject_alt_names.is_empty() {
        return Err(
            at.error("verifying the subject alt names of client certificates is not supported")
        );
    }
    let client_roots = match peer.trust {
        Trust::Roots(roots) => Some(roots),
        Trust::None => None,
        Trust::System => {
            return Err(at
                .field("validation_context.system_root_certs")
                .error("verifying clients against the system roots is not supported"));
        }
    };
    let require_client_certificate = ctx
        .require_client_certificate
        .as_ref()
        .is_some_and(|b| b.value);
    let alpn = alpn_protocols(common.alpn_protocols, &at)?;
    DownstreamTls::new(
        certificate,
        client_roots,
        require_client_certificate,
        alpn,
        secret_names,
    )
    .map(Some)
    .map_err(|e| at.error(e))
}

/// A context's ALPN protocol names, refused as Envoy refuses them: each
/// name is 1 to 255 bytes long.
fn alpn_protocols(names: Vec<String>, at: &At<'_>) -> Result<Vec<String>, Error> {
    match names
        .iter()
        .find(|name| name.is_empty() || name.len() > 255)
    {
        Some(bad) => Err(at.field("alpn_protocols").error(format!(
            "invalid ALPN protocol {bad:?}: a protocol name is 1 to 255 bytes long"
        ))),
        None => Ok(names),
    }
}

/// A secret from SDS.
pub fn secret(s: &PbSecret) -> Result<(Arc<str>, Secret), Error> {
    let at = At::resource("secret", &s.name);
    let secret = match &s.r#type {
        Some(secret::Type::TlsCertificate(cert)) => Secret::Certificate(
            tls_certificate(cert).map_err(|e| at.field("tls_certificate").error(e))?,
        ),
        Some(secret::Type::ValidationContext(vc)) => {
            let at = at.field("validation_context");
            match validation(vc, &at)? {
                (Trust::Roots(roots), sans) if sans.is_empty() => Secret::Validation(roots),
                (Trust::Roots(_), _) => {
                    return Err(at.field("match_typed_subject_alt_names").error(
                        "subject alt names are not supported in a secret; \
                         match them in the TLS context that uses it",
                    ));
                }
                (Trust::None | Trust::System, _) => {
                    return Err(at.field("trusted_ca").error("trusted_ca is required"));
                }
            }
        }
        _ => {
            return Err(at
                .field("type")
                .error("only tls_certificate and validation_context secrets are supported"));
        }
    };
    Ok((s.name.as_str().into(), secret))
}

/// A certificate and key from files or inline PEM.
fn tls_certificate(cert: &TlsCertificate) -> Result<ClientCert, CertificateError> {
    let chain_pem = data_source::read(
        cert.certificate_chain
            .as_ref()
            .ok_or(CertificateError::MissingChain)?,
    )?;
    let key_pem = data_source::read(
        cert.private_key
            .as_ref()
            .ok_or(CertificateError::MissingKey)?,
    )?;
    let chain = pem_certs(&chain_pem).map_err(CertificateError::Chain)?;
    let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .ok()
        .flatten()
        .ok_or(CertificateError::NoPrivateKey)?;
    Ok(ClientCert {
        chain,
        key: key.secret_der().to_vec(),
    })
}

fn pem_certs(pem: &[u8]) -> Result<Vec<Vec<u8>>, PemError> {
    let certs: Vec<Vec<u8>> = rustls_pemfile::certs(&mut &pem[..])
        .map(|c| c.map(|c| c.to_vec()))
        .collect::<Result<_, _>>()
        .map_err(PemError::Invalid)?;
    if certs.is_empty() {
        return Err(PemError::NoCertificate);
    }
    Ok(certs)
}

/// Trusted roots and subject alt names from a validation context.
fn validation(
    vc: &CertificateValidationContext,
    at: &At<'_>,
) -> Result<(Trust, Vec<SubjectAltName>), Error> {
    let trust = match (&vc.trusted_ca, &vc.system_root_certs) {
        (Some(ca), _) => {
            let pem = data_source::read(ca).map_err(|e| at.error(e))?;
            Trust::Roots(pem_certs(&pem).map_err(|e| at.error(e))?)
        }
        (None, Some(_)) => Trust::System,
        (None, None) => Trust::None,
    };
    let sans = subject_alt_names(&vc.match_typed_subject_alt_names, at)?;
    Ok((trust, sans))
}

/// The matchers of `match_typed_subject_alt_names`, as Envoy applies them:
/// DNS, URI, email and IP address SANs, each with any string matcher.
fn subject_alt_names(
    matchers: &[SubjectAltNameMatcher],
    at: &At<'_>,
) -> Result<Vec<SubjectAltName>, Error> {
    matchers
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let at = at.field(format!("match_typed_subject_alt_names[{i}]"));
            let san_type = match SanType::try_from(m.san_type) {
                Ok(SanType::Dns) => SanKind::Dns,
                Ok(SanType::Uri) => SanKind::Uri,
                Ok(SanType::Email) => SanKind::Email,
                Ok(SanType::IpAddress) => SanKind::IpAddress,
                other => {
                    let name = other
                        .map_or_else(|_| m.san_type.to_string(), |t| t.as_str_name().to_string());
                    return Err(at.field("san_type").error(format!(
                        "SAN type {name} cannot be verified; DNS, URI, EMAIL and IP_ADDRESS are supported"
                    )));
                }
            };
            let matcher = m
                .matcher
                .as_ref()
                .ok_or_else(|| at.field("matcher").error("a matcher is required"))?;
            Ok(SubjectAltName {
                san_type,
                pattern: string_match(matcher, &at.field("matcher"))?,
                ignore_case: matcher.ignore_case,
            })
        })
        .collect()
}

/// The certificate of the first `tls_certificates` or SDS reference, and the
/// ADS secret names used. A missing SDS secret yields no certificate yet.
fn certificate(
    common: &CommonTlsContext,
    secrets: &SecretSources,
    at: &At<'_>,
) -> Result<(Option<ClientCert>, Vec<Arc<str>>), Error> {
    if let Some(cert) = common.tls_certificates.first() {
        let cert = tls_certificate(cert).map_err(|e| at.field("tls_certificates[0]").error(e))?;
        return Ok((Some(cert), Vec::new()));
    }
    let Some(sds) = common.tls_certificate_sds_secret_configs.first() else {
        return Ok((None, Vec::new()));
    };
    let at = at.field("tls_certificate_sds_secret_configs[0]");
    let Resolved { secret, ads_name } = resolve(sds, secrets, &at)?;
    let cert = match secret.as_deref() {
        Some(Secret::Certificate(cert)) => Some(cert.clone()),
        Some(Secret::Validation(_)) => {
            return Err(at.error(format!(
                "secret {:?} is a validation context, not a certificate",
                sds.name
            )));
        }
        None => None,
    };
    Ok((cert, ads_name.into_iter().collect()))
}

/// Where an SDS reference takes its secret from.
enum SecretSource {
    /// The control plane, over ADS.
    Ads,
    /// The agent's own identity, through [`SDS_CLUSTER`].
    Local,
}

/// The source `sds` names: ADS, or the `sds-grpc` cluster as istiod
/// writes it for the proxy's own identity (a gRPC stream, state of the
/// world or delta). Any other source is rejected: the agent has no other
/// way to fetch a secret.
fn secret_source(sds: &SdsSecretConfig, at: &At<'_>) -> Result<SecretSource, Error> {
    use config_source::ConfigSourceSpecifier as S;
    let at = at.field("sds_config");
    match sds
        .sds_config
        .as_ref()
        .and_then(|c| c.config_source_specifier.as_ref())
    {
        Some(S::Ads(_)) => Ok(SecretSource::Ads),
        Some(S::ApiConfigSource(api)) => match grpc_cluster(api) {
            Some(SDS_CLUSTER) => match ApiType::try_from(api.api_type) {
                Ok(ApiType::Grpc | ApiType::DeltaGrpc) => Ok(SecretSource::Local),
                other => {
                    let api_type = other.map_or_else(
                        |_| api.api_type.to_string(),
                        |known| known.as_str_name().to_string(),
                    );
                    Err(at
                        .field("api_config_source")
                        .field("api_type")
                        .error(format!(
                            "{api_type} is not supported for {SDS_CLUSTER:?}: \
                         use GRPC or DELTA_GRPC, as istiod writes it"
                        )))
                }
            },
            Some(cluster) => Err(at.error(format!(
                "secrets from cluster {cluster:?} are not supported; \
                 use ADS, or {SDS_CLUSTER:?} for the proxy's own certificate"
            ))),
            None => Err(at.error(format!(
                "only an envoy_grpc source to {SDS_CLUSTER:?} is supported"
            ))),
        },
        Some(_) => Err(at.error(format!(
            "only ADS and {SDS_CLUSTER:?} are supported as secret sources"
        ))),
        None => Err(at.error(format!(
            "a secret source is required: ADS, or {SDS_CLUSTER:?} for the proxy's own certificate"
        ))),
    }
}

/// The cluster of an API config source with one `envoy_grpc` service.
fn grpc_cluster(api: &ApiConfigSource) -> Option<&str> {
    match api.grpc_services.as_slice() {
        [service] => match &service.target_specifier {
            Some(grpc_service::TargetSpecifier::EnvoyGrpc(envoy)) => {
                Some(envoy.cluster_name.as_str())
            }
            _ => None,
        },
        _ => None,
    }
}

/// What an SDS reference resolves to.
struct Resolved {
    /// The secret, once it is there.
    secret: Option<Arc<Secret>>,
    /// Its name, when it comes over ADS (to subscribe to it).
    ads_name: Option<Arc<str>>,
}

/// The secret an SDS reference names. Through `sds-grpc`, only the proxy's
/// own certificate and roots exist.
fn resolve(sds: &SdsSecretConfig, secrets: &SecretSources, at: &At<'_>) -> Result<Resolved, Error> {
    let name = sds.name.as_str();
    match secret_source(sds, at)? {
        SecretSource::Ads => Ok(Resolved {
            secret: secrets.ads.get(name).cloned(),
            ads_name: Some(name.into()),
        }),
        SecretSource::Local if name == SDS_WORKLOAD_CERTIFICATE || name == SDS_ROOT_CA => {
            Ok(Resolved {
                secret: secrets.local.get(name).cloned(),
                ads_name: None,
            })
        }
        SecretSource::Local => Err(at.field("name").error(format!(
            "{SDS_CLUSTER:?} serves only {SDS_WORKLOAD_CERTIFICATE:?} and {SDS_ROOT_CA:?} \
             (the proxy's own certificate and roots), not {name:?}"
        ))),
    }
}

/// How a peer's certificate is verified.
struct PeerValidation {
    trust: Trust,
    subject_alt_names: Vec<SubjectAltName>,
    /// The ADS secret the roots come from.
    secret_name: Option<Arc<str>>,
}

impl PeerValidation {
    /// Roots from the SDS secret `sds` (mesh roots: chain only, since SPIFFE
    /// certificates carry no DNS names), and `subject_alt_names`. A missing
    /// secret yields no roots yet.
    fn from_sds(
        sds: &SdsSecretConfig,
        subject_alt_names: Vec<SubjectAltName>,
        secrets: &SecretSources,
        at: &At<'_>,
    ) -> Result<Self, Error> {
        let at = at.field("validation_context_sds_secret_config");
        let Resolved { secret, ads_name } = resolve(sds, secrets, &at)?;
        let trust = match secret.as_deref() {
            Some(Secret::Validation(roots)) => Trust::Roots(roots.clone()),
            Some(Secret::Certificate(_)) => {
                return Err(at.error(format!(
                    "secret {:?} is a certificate, not a validation context",
                    sds.name
                )));
            }
            None => Trust::Roots(Vec::new()),
        };
        Ok(Self {
            trust,
            subject_alt_names,
            secret_name: ads_name,
        })
    }
}

/// How peers are verified: an inline validation context, or roots from SDS
/// (alone or combined with an inline context's SANs).
fn peer_validation(
    common: &CommonTlsContext,
    secrets: &SecretSources,
    at: &At<'_>,
) -> Result<PeerValidation, Error> {
    use common_tls_context::ValidationContextType as V;
    match &common.validation_context_type {
        None => Ok(PeerValidation {
            trust: Trust::None,
            subject_alt_names: Vec::new(),
            secret_name: None,
        }),
        Some(V::ValidationContext(vc)) => {
            let (trust, subject_alt_names) = validation(vc, &at.field("validation_context"))?;
            Ok(PeerValidation {
                trust,
                subject_alt_names,
                secret_name: None,
            })
        }
        Some(V::ValidationContextSdsSecretConfig(sds)) => {
            PeerValidation::from_sds(sds, Vec::new(), secrets, at)
        }
        Some(V::CombinedValidationContext(combined)) => {
            let sans = match &combined.default_validation_context {
                Some(vc) => validation(vc, &at.field("combined_validation_context"))?.1,
                None => Vec::new(),
            };
            let sds = combined
                .validation_context_sds_secret_config
                .clone()
                .unwrap_or_default();
            PeerValidation::from_sds(&sds, sans, secrets, at)
        }
        Some(_) => Err(at
            .field("validation_context_type")
            .error("this kind of validation context is not supported")),
    }
}
