//! The mesh certificate authority (istiod's CA role): a root, generated or
//! loaded from a directory, that signs workloads' CSRs for their SPIFFE
//! identity (`spiffe://<trust domain>/ns/<namespace>/sa/<service account>`)
//! and the control plane's own serving certificate. Workload keys are never
//! generated here: they are born in the workload.
//!
//! Nothing here logs or formats key material: [`CertificateAuthority`] and
//! [`ServerCertificate`] print without their keys.

mod accepted_keys;
mod csr;
mod error;
mod files;
mod server;
#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use time::OffsetDateTime;

pub use csr::SignedCertificate;
pub use error::{CaError, CsrError};
pub use files::{ROOT_CERT_FILE, TOKEN_KEY_FILE, load_or_create_token_key};
use files::{read_file, write_new_file};
pub use server::{ServerCertificate, ServerName, ServerNameError};

/// The root certificate's file in a CA directory (Istio's plugged-in CA name).
pub const CA_CERT_FILE: &str = "ca-cert.pem";
/// The root key's file in a CA directory: PKCS#8 PEM (`BEGIN PRIVATE KEY`).
pub const CA_KEY_FILE: &str = "ca-key.pem";
/// Istio's default workload certificate lifetime (as `--workload-cert-ttl`
/// defaults to), for tests.
#[cfg(test)]
pub(crate) const DEFAULT_WORKLOAD_CERT_TTL: Duration = Duration::from_secs(24 * 3600);
/// The lifetime of a generated root: ten years, as istiod's self-signed root.
const ROOT_TTL: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// How far a certificate's `notBefore` is set in the past, so that a peer
/// whose clock is slightly behind still accepts it.
const CLOCK_SKEW_GRACE: Duration = Duration::from_secs(60);

pub use shared::identity::SpiffeId;

/// Where the root came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootSource {
    /// Generated and written to this directory for the next start.
    Created(PathBuf),
    /// Read from this directory.
    Loaded(PathBuf),
}

/// The root and what it signs workload certificates with.
pub struct CertificateAuthority {
    root_pem: String,
    root_not_after: SystemTime,
    issuer: Issuer<'static, KeyPair>,
    workload_ttl: Duration,
    source: RootSource,
}

impl fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("source", &self.source)
            .field("root_not_after", &self.root_not_after)
            .field("workload_ttl", &self.workload_ttl)
            .finish_non_exhaustive()
    }
}

impl CertificateAuthority {
    /// The root in `dir` (`ca-cert.pem`, `ca-key.pem`); when `dir` has
    /// neither, a generated one, written there so that restarts keep it.
    /// Either way `root-cert.pem`, the copy proxies trust, is refreshed.
    pub fn load_or_create(
        dir: &Path,
        trust_domain: &str,
        workload_ttl: Duration,
    ) -> Result<Self, CaError> {
        let cert_path = dir.join(CA_CERT_FILE);
        let key_path = dir.join(CA_KEY_FILE);
        let root = match (cert_path.exists(), key_path.exists()) {
            (true, true) => Self::load(dir, workload_ttl)?,
            (false, false) => {
                std::fs::create_dir_all(dir).map_err(|source| CaError::Write {
                    path: dir.to_path_buf(),
                    source,
                })?;
                let (root, key_pem) = generate_root(
                    trust_domain,
                    workload_ttl,
                    RootSource::Created(dir.to_path_buf()),
                )?;
                write_new_file(&key_path, &key_pem, true)?;
                write_new_file(&cert_path, &root.root_pem, false)?;
                root
            }
            (has_cert, _) => {
                return Err(CaError::IncompleteDir {
                    dir: dir.to_path_buf(),
                    present: if has_cert { CA_CERT_FILE } else { CA_KEY_FILE },
                    missing: if has_cert { CA_KEY_FILE } else { CA_CERT_FILE },
                });
            }
        };
        files::write_root_cert(dir, &root.root_pem)?;
        Ok(root)
    }

    /// The root in `dir`: `ca-cert.pem` (a self-signed CA certificate) and
    /// `ca-key.pem` (its PKCS#8 private key).
    pub fn load(dir: &Path, workload_ttl: Duration) -> Result<Self, CaError> {
        let cert_path = dir.join(CA_CERT_FILE);
        let key_path = dir.join(CA_KEY_FILE);
        let root_pem = read_file(&cert_path)?;
        let key_pem = read_file(&key_path)?;
        let key = KeyPair::from_pem(&key_pem).map_err(|source| CaError::InvalidKey {
            path: key_path.clone(),
            source,
        })?;
        let invalid_cert = |reason: String| CaError::InvalidCert {
            path: cert_path.clone(),
            reason,
        };
        let (_, pem) = x509_parser::pem::parse_x509_pem(root_pem.as_bytes())
            .map_err(|e| invalid_cert(format!("no PEM certificate in the file: {e}")))?;
        if pem.label != "CERTIFICATE" {
            return Err(invalid_cert(format!(
                "its first PEM block is `{}`, not `CERTIFICATE`",
                pem.label
            )));
        }
        let x509 = pem
            .parse_x509()
            .map_err(|e| invalid_cert(format!("not an X.509 certificate: {e}")))?;
        if !x509.is_ca() {
            return Err(invalid_cert(
                "not a CA certificate (basicConstraints CA:TRUE is missing)".to_string(),
            ));
        }
        if x509.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
            return Err(CaError::KeyMismatch {
                cert: cert_path,
                key: key_path,
            });
        }
        let root_not_after = SystemTime::from(x509.validity().not_after.to_datetime());
        if root_not_after <= SystemTime::now() {
            return Err(invalid_cert(format!(
                "expired on {}; replace it, or empty the directory to have a new root generated",
                x509.validity().not_after
            )));
        }
        let issuer = Issuer::from_ca_cert_der(&pem.contents.as_slice().into(), key)
            .map_err(|e| invalid_cert(format!("cannot sign with it: {e}")))?;
        Ok(Self {
            root_pem,
            root_not_after,
            issuer,
            workload_ttl,
            source: RootSource::Loaded(dir.to_path_buf()),
        })
    }

    /// The root certificate, PEM: what every proxy trusts (`ROOTCA`).
    pub fn root_pem(&self) -> &str {
        &self.root_pem
    }

    pub fn source(&self) -> &RootSource {
        &self.source
    }

    /// Refuses to sign at `now` once the root has expired, so that a leaf
    /// never ends before it starts.
    fn check_root_valid(&self, now: SystemTime) -> Result<(), CaError> {
        if now < self.root_not_after {
            return Ok(());
        }
        Err(CaError::RootExpired {
            at: humantime::format_rfc3339_seconds(self.root_not_after).to_string(),
        })
    }

    /// The end of a leaf issued at `issued` for `ttl`: never past the
    /// root's own expiry.
    fn leaf_not_after(&self, issued: SystemTime, ttl: Duration) -> SystemTime {
        whole_seconds(
            issued
                .checked_add(ttl)
                .unwrap_or(self.root_not_after)
                .min(self.root_not_after),
        )
    }
}

/// What every leaf the CA signs shares: an empty subject, not a CA, both
/// TLS uses, a random 128-bit serial (as istiod's), valid from a minute
/// before `issued` (clock skew) until `not_after`.
fn leaf_params(
    issued: SystemTime,
    not_after: SystemTime,
) -> Result<CertificateParams, getrandom::Error> {
    let mut serial = [0u8; 16];
    getrandom::fill(&mut serial)?;
    serial[0] &= 0x7f;
    let mut params = CertificateParams::default();
    params.serial_number = Some(serial.to_vec().into());
    params.distinguished_name = DistinguishedName::new();
    params.not_before = OffsetDateTime::from(
        whole_seconds(issued)
            .checked_sub(CLOCK_SKEW_GRACE)
            .unwrap_or(UNIX_EPOCH),
    );
    params.not_after = OffsetDateTime::from(not_after);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    Ok(params)
}

/// A new self-signed root (ECDSA P-256, ten years, `O=<trust domain>`) and
/// its key PEM, for writing to a CA directory.
fn generate_root(
    trust_domain: &str,
    workload_ttl: Duration,
    source: RootSource,
) -> Result<(CertificateAuthority, String), CaError> {
    let now = whole_seconds(SystemTime::now());
    let not_after = now + ROOT_TTL;
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, trust_domain);
    name.push(DnType::CommonName, "egress-mesh root CA");
    params.distinguished_name = name;
    params.not_before = OffsetDateTime::from(now.checked_sub(CLOCK_SKEW_GRACE).unwrap_or(now));
    params.not_after = OffsetDateTime::from(not_after);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(CaError::Generate)?;
    let cert = params.self_signed(&key).map_err(CaError::Generate)?;
    let key_pem = key.serialize_pem();
    Ok((
        CertificateAuthority {
            root_pem: cert.pem(),
            root_not_after: not_after,
            issuer: Issuer::new(params, key),
            workload_ttl,
            source,
        },
        key_pem,
    ))
}

/// X.509 times have a resolution of one second.
fn whole_seconds(t: SystemTime) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs())
}
