//! Signing a workload's CSR for the identity its token proved: the
//! request's key must be one this CA accepts, its signature is verified
//! (it proves the key's possession), its SANs may name that identity only,
//! and the certificate carries the request's public key, the identity's
//! SPIFFE id and the CA's lifetime.

use std::time::{Duration, SystemTime};

use rcgen::{CertificateSigningRequestParams, SanType};

use super::accepted_keys::{ACCEPTED_KEYS, refused_key};
use super::{CaError, CertificateAuthority, CsrError, SpiffeId, leaf_params};

/// A signed workload certificate, as `CreateCertificate` returns it.
#[derive(Debug, Clone)]
pub struct SignedCertificate {
    /// PEM certificates: the leaf, then the root.
    pub chain: Vec<String>,
    pub not_after: SystemTime,
}

impl CertificateAuthority {
    /// Signs `csr_pem` for `identity`, valid for the workload TTL or for
    /// `requested` when that is shorter (and never past the root, which
    /// must not have expired).
    pub fn sign_csr(
        &self,
        identity: &SpiffeId,
        csr_pem: &str,
        requested: Option<Duration>,
    ) -> Result<SignedCertificate, CsrError> {
        self.sign_csr_at(identity, csr_pem, requested, SystemTime::now())
    }

    pub(super) fn sign_csr_at(
        &self,
        identity: &SpiffeId,
        csr_pem: &str,
        requested: Option<Duration>,
        now: SystemTime,
    ) -> Result<SignedCertificate, CsrError> {
        self.check_root_valid(now)?;
        if let Some(key) = refused_key(csr_pem) {
            return Err(CsrError::Invalid(format!(
                "its key is {key}; this CA signs {ACCEPTED_KEYS}"
            )));
        }
        let request = CertificateSigningRequestParams::from_pem(csr_pem).map_err(|e| {
            CsrError::Invalid(match e {
                rcgen::Error::InvalidCertificationRequestSignature => {
                    "its signature does not verify with its public key".to_string()
                }
                other => format!("it is not a PEM PKCS#10 request this CA can read ({other})"),
            })
        })?;
        if matches!(request.params.is_ca, rcgen::IsCa::Ca(_)) {
            return Err(CsrError::Invalid(
                "it asks for a CA certificate; workloads get leaf certificates".to_string(),
            ));
        }
        let spiffe_id = identity.to_string();
        let others: Vec<String> = request
            .params
            .subject_alt_names
            .iter()
            .filter(|san| !matches!(san, SanType::URI(uri) if uri.as_str() == spiffe_id))
            .map(san_text)
            .collect();
        if !others.is_empty() {
            return Err(CsrError::IdentityMismatch {
                requested: others.join(", "),
            });
        }
        let issue_failed = |source| CaError::Issue {
            identity: spiffe_id.clone(),
            source,
        };
        let ttl = requested
            .filter(|d| !d.is_zero())
            .map_or(self.workload_ttl, |d| d.min(self.workload_ttl));
        let not_after = self.leaf_not_after(now, ttl);
        let mut params = leaf_params(now, not_after).map_err(CaError::Random)?;
        params.subject_alt_names = vec![SanType::URI(
            spiffe_id.clone().try_into().map_err(issue_failed)?,
        )];
        let leaf = CertificateSigningRequestParams {
            params,
            public_key: request.public_key,
        }
        .signed_by(&self.issuer)
        .map_err(issue_failed)?;
        Ok(SignedCertificate {
            chain: vec![leaf.pem(), self.root_pem.clone()],
            not_after,
        })
    }
}

/// A SAN as a refusal quotes it: its type and its value, quoted.
fn san_text(san: &SanType) -> String {
    match san {
        SanType::URI(uri) => format!("URI {:?}", uri.as_str()),
        SanType::DnsName(name) => format!("DNS {:?}", name.as_str()),
        SanType::IpAddress(ip) => format!("IP {ip}"),
        SanType::Rfc822Name(email) => format!("email {:?}", email.as_str()),
        other => format!("{other:?}"),
    }
}
