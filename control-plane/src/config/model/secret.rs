//! Kubernetes Secrets holding TLS credentials (`credentialName`), as `kubectl get secret -o yaml` prints them.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer};

/// The certificate chain, key and CA of a generic secret, as istiod names
/// them; read before the `kubernetes.io/tls` names.
pub const GENERIC_CERT: &str = "cert";
pub const GENERIC_KEY: &str = "key";
pub const GENERIC_CA: &str = "cacert";
/// The certificate chain, key and CA of a `kubernetes.io/tls` secret.
pub const TLS_CERT: &str = "tls.crt";
pub const TLS_KEY: &str = "tls.key";
pub const TLS_CA: &str = "ca.crt";
/// The type of a secret made by `kubectl create secret tls`.
pub const TLS_TYPE: &str = "kubernetes.io/tls";
/// The type of a secret made by `kubectl create secret generic`.
pub const OPAQUE_TYPE: &str = "Opaque";
/// A secret named `<name>-cacert` holds the CA that verifies peers for
/// `credentialName: <name>` (Istio's `SdsCaSuffix`).
pub const CA_SUFFIX: &str = "-cacert";

/// A Secret's type and data. `data` values are decoded from base64 when
/// read; `stringData` is merged over them, as the API server does.
/// Its `Debug` names the keys, never the values.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Secret {
    #[serde(rename = "type", default)]
    pub secret_type: String,
    #[serde(default, deserialize_with = "base64_values")]
    pub data: BTreeMap<String, Vec<u8>>,
    #[serde(default)]
    pub string_data: BTreeMap<String, String>,
    pub immutable: Option<bool>,
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secret")
            .field("type", &self.secret_type)
            .field("keys", &self.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Why a secret holds no usable credential, in istiod's terms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("found keys {0:?} and {1:?}, but they were empty")]
    EmptyPair(&'static str, &'static str),
    #[error(
        "has neither {GENERIC_CERT:?} and {GENERIC_KEY:?} nor {TLS_CERT:?} and {TLS_KEY:?} (found: {found})"
    )]
    NoPair { found: String },
    #[error("found key {0:?}, but it was empty")]
    EmptyCa(&'static str),
    #[error("has neither {GENERIC_CA:?} nor {TLS_CA:?} (found: {found})")]
    NoCa { found: String },
}

/// A certificate chain and its private key (PEM), and the keys they came from.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct KeyPair<'a> {
    pub certificate_key: &'static str,
    pub private_key_key: &'static str,
    pub certificate: &'a [u8],
    pub private_key: &'a [u8],
}

impl Secret {
    /// The value of `key`, if set (empty values included).
    pub fn value(&self, key: &str) -> Option<&[u8]> {
        self.string_data
            .get(key)
            .map(String::as_bytes)
            .or_else(|| self.data.get(key).map(Vec::as_slice))
    }

    /// Every key, once, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        let mut keys: Vec<&str> = self
            .data
            .keys()
            .chain(self.string_data.keys())
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        keys.dedup();
        keys.into_iter()
    }

    fn non_empty(&self, key: &str) -> Option<&[u8]> {
        self.value(key).filter(|value| !value.is_empty())
    }

    /// The certificate chain and key, as istiod reads them: `cert` and
    /// `key` first, then `tls.crt` and `tls.key`.
    pub fn key_pair(&self) -> Result<KeyPair<'_>, CredentialError> {
        for (cert, key) in [(GENERIC_CERT, GENERIC_KEY), (TLS_CERT, TLS_KEY)] {
            if let (Some(certificate), Some(private_key)) =
                (self.non_empty(cert), self.non_empty(key))
            {
                return Ok(KeyPair {
                    certificate_key: cert,
                    private_key_key: key,
                    certificate,
                    private_key,
                });
            }
        }
        for (cert, key) in [(GENERIC_CERT, GENERIC_KEY), (TLS_CERT, TLS_KEY)] {
            if self.value(cert).is_some() && self.value(key).is_some() {
                return Err(CredentialError::EmptyPair(cert, key));
            }
        }
        Err(CredentialError::NoPair {
            found: self.found(),
        })
    }

    /// The CA certificates that verify peers, as istiod reads them:
    /// `cacert` first, then `ca.crt`; with the key they came from.
    pub fn ca_certificate(&self) -> Result<(&'static str, &[u8]), CredentialError> {
        for key in [GENERIC_CA, TLS_CA] {
            if let Some(ca) = self.non_empty(key) {
                return Ok((key, ca));
            }
        }
        for key in [GENERIC_CA, TLS_CA] {
            if self.value(key).is_some() {
                return Err(CredentialError::EmptyCa(key));
            }
        }
        Err(CredentialError::NoCa {
            found: self.found(),
        })
    }

    /// Whether this secret is of a type that can hold a TLS credential
    /// (`kubernetes.io/tls`, `Opaque`, or none given).
    pub fn may_hold_credential(&self) -> bool {
        matches!(self.secret_type.as_str(), "" | TLS_TYPE | OPAQUE_TYPE)
    }

    fn found(&self) -> String {
        let keys: Vec<&str> = self.keys().collect();
        if keys.is_empty() {
            "no keys".to_string()
        } else {
            keys.join(", ")
        }
    }
}

/// What is wrong with a `data` value that does not decode. The decoder's
/// own error is left out: it names a byte of the value.
pub const NOT_BASE64: &str =
    "is not base64; encode it with base64, or put the text under stringData";

/// `data` as Kubernetes writes it: each value base64 (standard alphabet);
/// an empty value may print as null.
fn base64_values<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, Vec<u8>>, D::Error> {
    let encoded: BTreeMap<String, Option<String>> = BTreeMap::deserialize(deserializer)?;
    encoded
        .into_iter()
        .map(|(key, value)| {
            let compact: String = value.unwrap_or_default().split_whitespace().collect();
            STANDARD
                .decode(compact.as_bytes())
                .map(|decoded| (key.clone(), decoded))
                .map_err(|_| serde::de::Error::custom(format!("data.{key} {NOT_BASE64}")))
        })
        .collect()
}

#[cfg(test)]
pub mod testing;
#[cfg(test)]
mod tests;
