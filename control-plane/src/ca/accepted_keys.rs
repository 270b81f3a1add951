//! The keys a workload's CSR may carry, as istiod's CA accepts them: ECDSA
//! P-256 signed with SHA-256, or RSA of at least 2048 bits; any other key
//! is refused before the request is read further.

use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::objects::{oid_registry, oid2sn};
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_PKCS1_RSAENCRYPTION, OID_PKCS1_SHA256WITHRSA,
    OID_PKCS1_SHA384WITHRSA, OID_PKCS1_SHA512WITHRSA, OID_SIG_ECDSA_WITH_SHA256, Oid,
};
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;

/// The keys this CA signs, as a refusal names them.
pub const ACCEPTED_KEYS: &str =
    "ECDSA P-256 keys (requests signed with SHA-256) and RSA keys of at least 2048 bits";

/// The shortest RSA modulus accepted, in bits.
const MIN_RSA_BITS: usize = 2048;

/// What is wrong with the key of the PEM request `csr_pem` (e.g. "a
/// 1024-bit RSA key"), or `None` when it is accepted or the request
/// cannot be read here (its reader then says why).
pub fn refused_key(csr_pem: &str) -> Option<String> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(csr_pem.as_bytes()).ok()?;
    let (_, request) = X509CertificationRequest::from_der(&pem.contents).ok()?;
    let key_info = &request.certification_request_info.subject_pki;
    let key_type = &key_info.algorithm.algorithm;
    let signature = &request.signature_algorithm.algorithm;
    if *key_type == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = key_info
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok());
        return match curve {
            Some(curve) if curve == OID_EC_P256 => (*signature != OID_SIG_ECDSA_WITH_SHA256)
                .then(|| format!("a P-256 key signed with {}", name(signature))),
            Some(curve) => Some(format!("an ECDSA key on curve {}", name(&curve))),
            None => Some("an ECDSA key of no named curve".to_string()),
        };
    }
    if *key_type == OID_PKCS1_RSAENCRYPTION {
        let bits = match key_info.parsed() {
            Ok(PublicKey::RSA(rsa)) => modulus_bits(rsa.modulus),
            _ => 0,
        };
        if bits < MIN_RSA_BITS {
            return Some(format!("a {bits}-bit RSA key"));
        }
        let sha2 = [
            OID_PKCS1_SHA256WITHRSA,
            OID_PKCS1_SHA384WITHRSA,
            OID_PKCS1_SHA512WITHRSA,
        ];
        return (!sha2.contains(signature))
            .then(|| format!("an RSA key signed with {}", name(signature)));
    }
    Some(format!("a key of type {}", name(key_type)))
}

/// An algorithm's short name, or its dotted OID.
fn name(oid: &Oid<'_>) -> String {
    oid2sn(oid, oid_registry()).map_or_else(|_| oid.to_id_string(), str::to_string)
}

/// The size of an RSA modulus (big-endian, maybe with leading zeros).
fn modulus_bits(modulus: &[u8]) -> usize {
    let zeros = modulus.iter().take_while(|b| **b == 0).count();
    let significant = &modulus[zeros..];
    significant.first().map_or(0, |first| {
        significant.len() * 8 - first.leading_zeros() as usize
    })
}
