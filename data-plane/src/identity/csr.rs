//! The proxy's key (ECDSA P-256, generated in memory) and the certificate
//! signing request for it, whose only subject alt name is the SPIFFE id.

use rcgen::string::Ia5String;
use rcgen::{CertificateParams, DistinguishedName, KeyPair, SanType};

use super::SpiffeId;

/// A fresh key and the PEM CSR that asks for a certificate for it.
pub(super) struct SigningRequest {
    pub key: KeyPair,
    pub csr_pem: String,
}

/// A new key and its CSR for `id`: an empty subject, as Istio's workload
/// certificates have, and the URI SAN.
pub(super) fn signing_request(id: &SpiffeId) -> Result<SigningRequest, rcgen::Error> {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.subject_alt_names = vec![SanType::URI(Ia5String::try_from(id.to_string())?)];
    let csr_pem = params.serialize_request(&key)?.pem()?;
    Ok(SigningRequest { key, csr_pem })
}
