//! Secrets from SDS: a certificate with its key (`default`), or the roots
//! that verify peers (`ROOTCA`). Clusters and listeners refer to them by
//! name and source: over ADS from the control plane, or through the
//! `sds-grpc` cluster, which names the agent's own identity (as Envoy's
//! `sds-grpc` names pilot-agent's). The store resolves the references when
//! either side changes.

use std::collections::HashMap;
use std::sync::Arc;

use shared::naming::{SDS_ROOT_CA, SDS_WORKLOAD_CERTIFICATE};

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

/// The secrets TLS contexts can refer to, by where they come from.
#[derive(Debug, Default, Clone)]
pub struct SecretSources {
    /// Sent by the control plane over ADS.
    pub ads: Secrets,
    /// The agent's own identity ([`SDS_WORKLOAD_CERTIFICATE`] and [`SDS_ROOT_CA`]),
    /// referred to through [`shared::naming::SDS_CLUSTER`]; empty until the first
    /// certificate is issued, and without an identity (plaintext).
    pub local: Secrets,
}

impl SecretSources {
    /// The local secrets of an identity: its chain and key (DER, leaf
    /// first), and its root.
    pub fn identity(chain: Vec<Vec<u8>>, key: Vec<u8>, root: Vec<u8>) -> Secrets {
        Secrets::from([
            (
                SDS_WORKLOAD_CERTIFICATE.into(),
                Arc::new(Secret::Certificate(ClientCert { chain, key })),
            ),
            (SDS_ROOT_CA.into(), Arc::new(Secret::Validation(vec![root]))),
        ])
    }
}
