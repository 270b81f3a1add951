//! Secrets from SDS: a certificate with its key (`default`), or the roots
//! that verify peers (`ROOTCA`). Clusters and listeners refer to them by
//! name; the store resolves the references when either side changes.

use std::collections::HashMap;
use std::sync::Arc;

use super::cluster::ClientCert;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Secret {
    /// A certificate chain and private key (DER).
    Certificate(ClientCert),
    /// Trusted CA certificates (DER).
    Validation(Vec<Vec<u8>>),
}

/// Secrets by name.
pub type Secrets = HashMap<Arc<str>, Arc<Secret>>;
