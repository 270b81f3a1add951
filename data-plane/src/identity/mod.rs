//! The proxy's workload identity, as Istio's pilot-agent keeps it: a key
//! generated here and never sent anywhere, a CSR for the proxy's SPIFFE id
//! signed by the control plane's CA over the authenticated channel, the
//! certificate kept in memory and rotated at half its life.

mod certificate;
mod csr;
mod rotation;

pub use certificate::{ChainError, WorkloadCertificate, serial_number};
pub use rotation::{CertificateAuthority, IdentityError};

use std::fmt;

/// The trust domain of a mesh that does not name one.
pub const DEFAULT_TRUST_DOMAIN: &str = "cluster.local";

/// Who a workload is: `spiffe://<trust domain>/ns/<namespace>/sa/<service account>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpiffeId {
    pub trust_domain: String,
    pub namespace: String,
    pub service_account: String,
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "spiffe://{}/ns/{}/sa/{}",
            self.trust_domain, self.namespace, self.service_account
        )
    }
}

#[cfg(test)]
mod tests;
