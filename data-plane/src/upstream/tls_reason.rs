//! A failed TLS handshake in Envoy's words: the transport failure reason
//! BoringSSL gives it (`TLS_error:|<code>:SSL routines:OPENSSL_internal:<REASON>:...:TLS_error_end`),
//! so access logs and response details read as they do under Envoy 1.40.
//!
//! The certificate checks of [`super::tls`] report name mismatches and
//! self-signed peers as [`VerifyFailure`], carrying the detail Envoy prints.

use std::fmt;
use std::sync::Arc;

use rustls::{AlertDescription, CertificateError, OtherError};

/// BoringSSL's packed error code of an `SSL` library reason.
const SSL_LIB: u32 = 16 << 24;
/// `SSL_R_CERTIFICATE_VERIFY_FAILED`.
const CERTIFICATE_VERIFY_FAILED: u32 = 125;
/// `SSL_R_WRONG_VERSION_NUMBER`.
const WRONG_VERSION_NUMBER: u32 = 247;
/// Reasons for received alerts are 1000 + the alert number.
const ALERT_OFFSET: u32 = 1000;

/// A certificate check that failed after the chain was looked at, with the
/// words Envoy's validator uses after `verify cert failed: `.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum VerifyFailure {
    /// No configured subject alt name matcher matched; the certificate's
    /// SANs as it lists them.
    SanMatcher { certificate_sans: Vec<String> },
    /// The name sent as SNI (`auto_san_validation`) is not in the certificate.
    SanList,
    /// A self-signed certificate no trusted root vouches for.
    SelfSigned,
}

impl fmt::Display for VerifyFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SanMatcher { certificate_sans } => write!(
                f,
                "SAN matcher, certificate SANs are [{}]",
                certificate_sans.join(", ")
            ),
            Self::SanList => f.write_str("verify SAN list"),
            Self::SelfSigned => f.write_str(&x509_detail("self signed certificate")),
        }
    }
}

impl std::error::Error for VerifyFailure {}

impl VerifyFailure {
    /// As the rustls error a certificate verifier returns.
    pub(crate) fn into_rustls(self) -> rustls::Error {
        rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(self))))
    }
}

/// Envoy's transport failure reason for a handshake that failed with `error`.
pub(crate) fn transport_failure_reason(error: &rustls::Error) -> String {
    match error {
        rustls::Error::InvalidCertificate(certificate) => ssl_error(
            CERTIFICATE_VERIFY_FAILED,
            "CERTIFICATE_VERIFY_FAILED",
            Some(&format!(
                "verify cert failed: {}",
                certificate_detail(certificate)
            )),
        ),
        rustls::Error::InvalidMessage(_)
        | rustls::Error::InappropriateMessage { .. }
        | rustls::Error::InappropriateHandshakeMessage { .. } => {
            ssl_error(WRONG_VERSION_NUMBER, "WRONG_VERSION_NUMBER", None)
        }
        rustls::Error::AlertReceived(alert) => match alert_name(*alert) {
            Some((number, name)) => ssl_error(ALERT_OFFSET + number, name, None),
            None => format!("TLS_error:|{error}:TLS_error_end"),
        },
        other => format!("TLS_error:|{other}:TLS_error_end"),
    }
}

fn ssl_error(reason: u32, name: &str, detail: Option<&str>) -> String {
    let code = SSL_LIB | reason;
    match detail {
        Some(detail) => {
            format!("TLS_error:|{code}:SSL routines:OPENSSL_internal:{name}:{detail}:TLS_error_end")
        }
        None => format!("TLS_error:|{code}:SSL routines:OPENSSL_internal:{name}:TLS_error_end"),
    }
}

/// What OpenSSL's `X509_verify_cert` says about the leaf.
fn x509_detail(what: &str) -> String {
    format!("X509_verify_cert: certificate verification error at depth 0: {what}")
}

fn certificate_detail(error: &CertificateError) -> String {
    let x509 = match error {
        CertificateError::Other(OtherError(inner)) => {
            if let Some(ours) = inner.downcast_ref::<VerifyFailure>() {
                return ours.to_string();
            }
            return x509_detail(&inner.to_string());
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            return VerifyFailure::SanList.to_string();
        }
        CertificateError::UnknownIssuer => "unable to get local issuer certificate",
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "certificate has expired"
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "certificate is not yet valid"
        }
        CertificateError::BadSignature => "certificate signature failure",
        CertificateError::Revoked => "certificate revoked",
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            "unsupported certificate purpose"
        }
        CertificateError::BadEncoding => "unable to decode issuer public key",
        _ => "certificate verification failed",
    };
    x509_detail(x509)
}

/// BoringSSL's reason name for a received alert.
fn alert_name(alert: AlertDescription) -> Option<(u32, &'static str)> {
    Some(match alert {
        AlertDescription::UnexpectedMessage => (10, "SSLV3_ALERT_UNEXPECTED_MESSAGE"),
        AlertDescription::BadRecordMac => (20, "SSLV3_ALERT_BAD_RECORD_MAC"),
        AlertDescription::HandshakeFailure => (40, "SSLV3_ALERT_HANDSHAKE_FAILURE"),
        AlertDescription::BadCertificate => (42, "SSLV3_ALERT_BAD_CERTIFICATE"),
        AlertDescription::UnsupportedCertificate => (43, "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE"),
        AlertDescription::CertificateRevoked => (44, "SSLV3_ALERT_CERTIFICATE_REVOKED"),
        AlertDescription::CertificateExpired => (45, "SSLV3_ALERT_CERTIFICATE_EXPIRED"),
        AlertDescription::CertificateUnknown => (46, "SSLV3_ALERT_CERTIFICATE_UNKNOWN"),
        AlertDescription::IllegalParameter => (47, "SSLV3_ALERT_ILLEGAL_PARAMETER"),
        AlertDescription::UnknownCA => (48, "TLSV1_ALERT_UNKNOWN_CA"),
        AlertDescription::AccessDenied => (49, "TLSV1_ALERT_ACCESS_DENIED"),
        AlertDescription::DecodeError => (50, "TLSV1_ALERT_DECODE_ERROR"),
        AlertDescription::DecryptError => (51, "TLSV1_ALERT_DECRYPT_ERROR"),
        AlertDescription::ProtocolVersion => (70, "TLSV1_ALERT_PROTOCOL_VERSION"),
        AlertDescription::InsufficientSecurity => (71, "TLSV1_ALERT_INSUFFICIENT_SECURITY"),
        AlertDescription::InternalError => (80, "TLSV1_ALERT_INTERNAL_ERROR"),
        AlertDescription::UnrecognisedName => (112, "TLSV1_ALERT_UNRECOGNIZED_NAME"),
        AlertDescription::CertificateRequired => (116, "TLSV1_ALERT_CERTIFICATE_REQUIRED"),
        AlertDescription::NoApplicationProtocol => (120, "TLSV1_ALERT_NO_APPLICATION_PROTOCOL"),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_untrusted_chain_reads_as_envoys_x509_failure() {
        assert_eq!(
            transport_failure_reason(&rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer
            )),
            "TLS_error:|268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:verify cert failed: X509_verify_cert: certificate verification error at depth 0: unable to get local issuer certificate:TLS_error_end"
        );
        assert_eq!(
            transport_failure_reason(&VerifyFailure::SelfSigned.into_rustls()),
            "TLS_error:|268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:verify cert failed: X509_verify_cert: certificate verification error at depth 0: self signed certificate:TLS_error_end"
        );
    }

    #[test]
    fn a_san_mismatch_lists_the_certificate_sans() {
        let failure = VerifyFailure::SanMatcher {
            certificate_sans: vec!["server.test".into(), "spiffe://td/ns/a/sa/b".into()],
        };
        assert_eq!(
            transport_failure_reason(&failure.into_rustls()),
            "TLS_error:|268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:verify cert failed: SAN matcher, certificate SANs are [server.test, spiffe://td/ns/a/sa/b]:TLS_error_end"
        );
        assert_eq!(
            transport_failure_reason(&rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName
            )),
            "TLS_error:|268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:verify cert failed: verify SAN list:TLS_error_end"
        );
    }

    #[test]
    fn a_plaintext_server_is_a_wrong_version_number() {
        assert_eq!(
            transport_failure_reason(&rustls::Error::InvalidMessage(
                rustls::InvalidMessage::InvalidContentType
            )),
            "TLS_error:|268435703:SSL routines:OPENSSL_internal:WRONG_VERSION_NUMBER:TLS_error_end"
        );
    }

    #[test]
    fn received_alerts_are_named_as_boringssl_names_them() {
        assert_eq!(
            transport_failure_reason(&rustls::Error::AlertReceived(
                AlertDescription::HandshakeFailure
            )),
            "TLS_error:|268436496:SSL routines:OPENSSL_internal:SSLV3_ALERT_HANDSHAKE_FAILURE:TLS_error_end"
        );
        assert_eq!(
            transport_failure_reason(&rustls::Error::AlertReceived(
                AlertDescription::CertificateRequired
            )),
            "TLS_error:|268436572:SSL routines:OPENSSL_internal:TLSV1_ALERT_CERTIFICATE_REQUIRED:TLS_error_end"
        );
    }
}
