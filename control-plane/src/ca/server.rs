//! The control plane's own serving certificate for the secure xDS port:
//! signed by the mesh root, for `istiod.istio-system.svc` (the name proxies
//! verify, as istiod's) and the names and addresses given by flag. Its key
//! is generated here: it is the server's own.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use rcgen::{KeyPair, SanType};

use shared::identity::CONTROL_PLANE_SERVER_NAME;

use super::{CaError, CertificateAuthority, leaf_params};

/// The serving certificate's lifetime (never past the root's).
const SERVER_CERT_TTL: Duration = Duration::from_secs(365 * 24 * 3600);

/// A DNS name or an IP address the serving certificate is valid for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerName {
    Dns(String),
    Ip(IpAddr),
}

/// Why a `--xds-san` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is neither an IP address nor a DNS name (letters, digits, '-' and '.', e.g. istiod.example.com)"
)]
pub struct ServerNameError(String);

impl FromStr for ServerName {
    type Err = ServerNameError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Ok(ServerName::Ip(ip));
        }
        let valid_label = |label: &str| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        if text.len() <= 253 && text.split('.').all(valid_label) {
            Ok(ServerName::Dns(text.to_ascii_lowercase()))
        } else {
            Err(ServerNameError(text.to_string()))
        }
    }
}

/// The serving certificate and its key. Prints without the key.
pub struct ServerCertificate {
    /// The leaf certificate, PEM.
    pub cert_pem: String,
    key_pem: String,
}

impl ServerCertificate {
    /// The private key, PKCS#8 PEM. Never log it.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }
}

impl fmt::Debug for ServerCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerCertificate").finish_non_exhaustive()
    }
}

impl CertificateAuthority {
    /// A new serving certificate for `istiod.istio-system.svc` and `names`.
    pub fn issue_server_certificate(
        &self,
        names: &[ServerName],
    ) -> Result<ServerCertificate, CaError> {
        let failed = |source| CaError::Issue {
            identity: CONTROL_PLANE_SERVER_NAME.to_string(),
            source,
        };
        let now = SystemTime::now();
        self.check_root_valid(now)?;
        let not_after = self.leaf_not_after(now, SERVER_CERT_TTL);
        let mut params = leaf_params(now, not_after).map_err(CaError::Random)?;
        let mut sans = vec![SanType::DnsName(
            CONTROL_PLANE_SERVER_NAME.try_into().map_err(failed)?,
        )];
        for name in names {
            let san = match name {
                ServerName::Ip(ip) => SanType::IpAddress(*ip),
                ServerName::Dns(dns) => SanType::DnsName(dns.clone().try_into().map_err(failed)?),
            };
            if !sans.contains(&san) {
                sans.push(san);
            }
        }
        params.subject_alt_names = sans;
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(failed)?;
        let cert = params.signed_by(&key, &self.issuer).map_err(failed)?;
        Ok(ServerCertificate {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}
