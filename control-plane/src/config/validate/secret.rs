//! Secret checks: a TLS credential's keys are there, its PEM parses, and its private key is the certificate's.

use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::sign::SigningKey;

use super::check::Check;
use crate::config::error::Problem;
use crate::config::model::Secret;
use crate::config::model::secret::{CA_SUFFIX, CredentialError, KeyPair, TLS_TYPE};

impl Check<'_> {
    /// A `kubernetes.io/tls` secret must hold a key pair, a `<name>-cacert`
    /// secret a CA; a generic one is checked for what it holds. Secrets of
    /// other types (tokens, registry credentials) are not credentials.
    pub(super) fn secret(&mut self, spec: &Secret) {
        if !spec.may_hold_credential() {
            return;
        }
        let ca_only = self.meta.name.ends_with(CA_SUFFIX);
        let pair = spec.key_pair();
        let ca = spec.ca_certificate();
        match (&pair, &ca) {
            (Err(CredentialError::EmptyPair(..)), _) => self.no_credential(pair_error(&pair)),
            (Err(_), _) if spec.secret_type == TLS_TYPE && !ca_only => {
                self.no_credential(pair_error(&pair));
            }
            (_, Err(error)) if ca_only => self.no_credential(error.to_string()),
            (_, Err(error @ CredentialError::EmptyCa(_))) => self.no_credential(error.to_string()),
            _ => {}
        }
        if let Ok(pair) = pair
            && !ca_only
        {
            self.key_pair(pair);
        }
        if let Ok((key, ca)) = ca {
            let field = format!("data.{key}");
            if let Err(message) = certificates(ca, key) {
                self.report(field, Problem::SecretBadPem { message });
            }
        }
    }

    fn no_credential(&mut self, reason: String) {
        self.report("data", Problem::SecretWithoutCredential { reason });
    }

    fn key_pair(&mut self, pair: KeyPair<'_>) {
        let cert_field = format!("data.{}", pair.certificate_key);
        let key_field = format!("data.{}", pair.private_key_key);
        let chain = match certificates(pair.certificate, pair.certificate_key) {
            Ok(chain) => chain,
            Err(message) => {
                self.report(cert_field, Problem::SecretBadPem { message });
                return;
            }
        };
        let key = match private_key(pair.private_key, pair.private_key_key) {
            Ok(key) => key,
            Err(message) => {
                self.report(key_field, Problem::SecretBadPem { message });
                return;
            }
        };
        if !key_matches(&chain[0], key.as_ref()) {
            let problem = Problem::SecretKeyMismatch {
                certificate: pair.certificate_key.to_string(),
                key: pair.private_key_key.to_string(),
            };
            self.report(key_field, problem);
        }
    }
}

fn pair_error(pair: &Result<KeyPair<'_>, CredentialError>) -> String {
    pair.as_ref()
        .err()
        .map(ToString::to_string)
        .unwrap_or_default()
}

/// The certificates of PEM text, each parsed as X.509.
fn certificates(pem: &[u8], key: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = rustls_pemfile::certs(&mut &pem[..])
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| format!("{key} is not valid PEM ({error})"))?;
    if certs.is_empty() {
        return Err(format!("{key} holds no PEM certificate"));
    }
    for (index, cert) in certs.iter().enumerate() {
        if let Err(error) = x509_parser::parse_x509_certificate(cert) {
            return Err(format!(
                "certificate {} in {key} is not X.509 ({error})",
                index + 1
            ));
        }
    }
    Ok(certs)
}

/// Whether `key` is the private key of `certificate`'s public key. Read
/// with x509-parser, not webpki, so that X.509 v1 certificates (what
/// `openssl x509 -req` makes without extensions, as Istio's docs do) are
/// compared too.
fn key_matches(certificate: &CertificateDer<'_>, key: &dyn SigningKey) -> bool {
    let Some(key_info) = key.public_key() else {
        return false;
    };
    x509_parser::parse_x509_certificate(certificate)
        .is_ok_and(|(_, cert)| cert.tbs_certificate.subject_pki.raw == key_info.as_ref())
}

/// The signing key of PEM text (PKCS#8, PKCS#1 or SEC1).
fn private_key(pem: &[u8], key: &str) -> Result<Arc<dyn SigningKey>, String> {
    let der = rustls_pemfile::private_key(&mut &pem[..])
        .map_err(|error| format!("{key} is not valid PEM ({error})"))?
        .ok_or_else(|| format!("{key} holds no PEM private key"))?;
    rustls::crypto::ring::sign::any_supported_type(&der)
        .map_err(|error| format!("{key} is not a usable private key ({error})"))
}
