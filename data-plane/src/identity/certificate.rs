//! The workload certificate as the control plane returned it, checked
//! before use: leaf first and root last, the leaf for this proxy's key and
//! SPIFFE id only, chaining to the root and valid now (or within minutes,
//! when this proxy's clock is behind the CA's).

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::KeyPair;
use rustls::pki_types::{CertificateDer, UnixTime};
use x509_parser::prelude::{ASN1Time, FromDer, X509Certificate};

use super::SpiffeId;
use crate::proxy::identity::uri_sans;

/// How far in the future a new certificate's `not_before` may be: a proxy
/// whose clock is behind the CA's still takes it, as the control plane
/// allows the same skew on tokens' `nbf`. Expiry has no leeway.
const NOT_BEFORE_LEEWAY: Duration = Duration::from_secs(5 * 60);

/// Why a certificate response cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error("expected the leaf certificate then the root, got {0} certificate(s)")]
    TooShort(usize),
    #[error("certificate {index} of the chain: {reason}")]
    Invalid { index: usize, reason: String },
    #[error("the leaf certificate is not for this proxy's key")]
    NotOurKey,
    #[error("the leaf certificate names {found:?}, not this proxy's {expected}")]
    WrongIdentity {
        expected: String,
        found: Vec<String>,
    },
    #[error("the leaf certificate does not verify against the root of the chain: {0}")]
    Untrusted(rustls::Error),
}

/// This proxy's certificate chain, its key and the mesh root.
pub struct WorkloadCertificate {
    spiffe_id: String,
    /// The leaf, then any intermediates (PEM, as received).
    chain_pem: Vec<String>,
    chain_der: Vec<Vec<u8>>,
    root_pem: String,
    root_der: Vec<u8>,
    key: KeyPair,
    /// When this proxy received it: its life, for rotation, starts here,
    /// since CAs backdate `not_before` for clock skew.
    received: SystemTime,
    not_before: SystemTime,
    not_after: SystemTime,
    serial: String,
}

/// Never prints the key.
impl fmt::Debug for WorkloadCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkloadCertificate")
            .field("spiffe_id", &self.spiffe_id)
            .field("serial", &self.serial)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl WorkloadCertificate {
    /// The certificate of a CA's response (`cert_chain`: PEM, leaf first,
    /// root last) for `key` and `id`, received and checked at `now`.
    pub fn from_response(
        cert_chain: &[String],
        key: KeyPair,
        id: &SpiffeId,
        now: SystemTime,
    ) -> Result<Self, ChainError> {
        let (root_pem, chain_pem) = match cert_chain.split_last() {
            Some((root, chain)) if !chain.is_empty() => (root, chain),
            _ => return Err(ChainError::TooShort(cert_chain.len())),
        };
        let der = cert_chain
            .iter()
            .enumerate()
            .map(|(index, pem)| {
                single_der(pem).map_err(|reason| ChainError::Invalid { index, reason })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let (chain_der, root_der) = (&der[..der.len() - 1], &der[der.len() - 1]);
        let (_, leaf) =
            X509Certificate::from_der(&chain_der[0]).map_err(|e| ChainError::Invalid {
                index: 0,
                reason: e.to_string(),
            })?;
        if leaf.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
            return Err(ChainError::NotOurKey);
        }
        let expected = id.to_string();
        let found = uri_sans(&chain_der[0]);
        if found != [expected.as_str()] {
            return Err(ChainError::WrongIdentity { expected, found });
        }
        let validity = leaf.validity();
        let not_before = x509_time(validity.not_before);
        verify(
            &chain_der[0],
            &chain_der[1..],
            root_der,
            verification_time(not_before, now),
        )?;
        Ok(Self {
            spiffe_id: expected,
            received: now,
            not_before,
            not_after: x509_time(validity.not_after),
            serial: serial_number(leaf.raw_serial()),
            chain_pem: chain_pem.to_vec(),
            chain_der: chain_der.to_vec(),
            root_pem: root_pem.clone(),
            root_der: root_der.clone(),
            key,
        })
    }

    pub fn spiffe_id(&self) -> &str {
        &self.spiffe_id
    }

    /// The serial number as Envoy's `/certs` shows it (lowercase hex).
    pub fn serial(&self) -> &str {
        &self.serial
    }

    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }

    /// When to replace it: at half its life, counted from when it was
    /// received, as Istio's agent does (its `CreatedTime` and grace period
    /// ratio 0.5). Counting from a backdated `not_before` would put the
    /// rotation of a short-lived certificate in the past.
    pub fn rotation_time(&self) -> SystemTime {
        let life = self
            .not_after
            .duration_since(self.received)
            .unwrap_or(Duration::ZERO);
        self.received + life / 2
    }

    /// The leaf and intermediates, DER.
    pub fn chain_der(&self) -> &[Vec<u8>] {
        &self.chain_der
    }

    /// The leaf and intermediates, PEM.
    pub fn chain_pem(&self) -> String {
        self.chain_pem.concat()
    }

    /// The private key, PKCS#8 DER.
    pub fn key_der(&self) -> Vec<u8> {
        self.key.serialize_der()
    }

    /// The private key, PKCS#8 PEM.
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// The mesh root, DER.
    pub fn root_der(&self) -> &[u8] {
        &self.root_der
    }

    /// The mesh root, PEM.
    pub fn root_pem(&self) -> &str {
        &self.root_pem
    }
}

/// The one certificate a PEM text holds.
fn single_der(pem: &str) -> Result<Vec<u8>, String> {
    let mut certs = rustls_pemfile::certs(&mut pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("invalid PEM: {e}"))?;
    match certs.len() {
        1 => Ok(certs.remove(0).to_vec()),
        n => Err(format!("expected one PEM certificate, found {n}")),
    }
}

/// When to check a certificate received at `now` that is valid from
/// `not_before`: now, or its `not_before` if that is at most
/// [`NOT_BEFORE_LEEWAY`] ahead. A certificate valid then and not now has
/// not expired (it starts later), so expiry is still checked against now.
fn verification_time(not_before: SystemTime, now: SystemTime) -> SystemTime {
    not_before.clamp(now, now + NOT_BEFORE_LEEWAY)
}

/// Checks that `leaf` chains to `root` through `intermediates`, is valid at
/// `now` and may authenticate a TLS client (peers verify it as one).
fn verify(
    leaf: &[u8],
    intermediates: &[Vec<u8>],
    root: &[u8],
    now: SystemTime,
) -> Result<(), ChainError> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(root.to_vec()))
        .map_err(|e| ChainError::Invalid {
            index: intermediates.len() + 1,
            reason: e.to_string(),
        })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| ChainError::Untrusted(rustls::Error::General(e.to_string())))?;
    let intermediates: Vec<CertificateDer<'_>> = intermediates
        .iter()
        .map(|der| CertificateDer::from(der.as_slice()))
        .collect();
    let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    verifier
        .verify_client_cert(
            &CertificateDer::from(leaf),
            &intermediates,
            UnixTime::since_unix_epoch(since_epoch),
        )
        .map(|_| ())
        .map_err(ChainError::Untrusted)
}

/// A serial number as Envoy's `/certs` prints it: lowercase hex, no
/// separators.
pub fn serial_number(raw: &[u8]) -> String {
    raw.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A certificate's validity bound as a `SystemTime` (the epoch for one
/// before it).
pub fn x509_time(time: ASN1Time) -> SystemTime {
    u64::try_from(time.timestamp()).map_or(UNIX_EPOCH, |seconds| {
        UNIX_EPOCH + Duration::from_secs(seconds)
    })
}
