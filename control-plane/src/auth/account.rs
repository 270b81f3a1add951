//! A Kubernetes service account (`namespace/name`), the identity a token
//! proves, with the name rules Kubernetes enforces.

use std::fmt;
use std::str::FromStr;

/// The namespace and name of a service account.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceAccount {
    pub namespace: String,
    pub name: String,
}

/// Why a namespace or service account name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    #[error(
        "namespace {0:?} is not a Kubernetes namespace name: lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters"
    )]
    Namespace(String),
    #[error(
        "service account {0:?} is not a Kubernetes name: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters"
    )]
    Name(String),
    #[error(
        "{0:?} is not NAMESPACE/SERVICE_ACCOUNT, e.g. istio-system/istio-egressgateway-service-account"
    )]
    Format(String),
}

impl ServiceAccount {
    /// A service account whose names Kubernetes would accept (an RFC 1123
    /// label for the namespace, a DNS subdomain for the name), so that
    /// neither can add a path segment to a SPIFFE id.
    pub fn new(namespace: &str, name: &str) -> Result<Self, AccountError> {
        if !is_dns_label(namespace) {
            return Err(AccountError::Namespace(namespace.to_string()));
        }
        if name.len() > 253 || name.split('.').any(|part| !is_dns_label(part)) {
            return Err(AccountError::Name(name.to_string()));
        }
        Ok(Self {
            namespace: namespace.to_string(),
            name: name.to_string(),
        })
    }
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters.
fn is_dns_label(text: &str) -> bool {
    let bytes = text.as_bytes();
    let alphanumeric = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes.first().is_some_and(alphanumeric)
        && bytes.last().is_some_and(alphanumeric)
        && bytes.iter().all(|b| alphanumeric(b) || *b == b'-')
}

impl fmt::Display for ServiceAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// `NAMESPACE/NAME`, as `--gateway-service-account` takes it.
impl FromStr for ServiceAccount {
    type Err = AccountError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (namespace, name) = text
            .split_once('/')
            .ok_or_else(|| AccountError::Format(text.to_string()))?;
        Self::new(namespace, name)
    }
}
