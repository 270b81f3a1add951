//! The proxy's workload identity, as Istio's pilot-agent keeps it: a key
//! generated here and never sent anywhere, a CSR for the proxy's SPIFFE id
//! signed by the control plane's CA over the authenticated channel, the
//! certificate kept in memory and rotated at half its life.

mod certificate;
mod csr;
mod rotation;

pub use certificate::{ChainError, WorkloadCertificate, serial_number, x509_time};
pub use rotation::{CertificateAuthority, IdentityError};

pub use shared::identity::SpiffeId;

#[cfg(test)]
mod tests;
