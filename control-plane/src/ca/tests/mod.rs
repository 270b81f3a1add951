//! The mesh CA as its users rely on it: a root that persists and is
//! checked, the files proxies and `token create` read, CSRs signed only for
//! the caller's identity, and the control plane's serving certificate.

mod csr;
mod root;
mod server;

use std::time::{Duration, SystemTime};

use x509_parser::certificate::X509Certificate;
use x509_parser::pem::Pem;

use super::*;

/// A CA with a new root, made in a directory removed at once.
fn new_ca(workload_ttl: Duration) -> CertificateAuthority {
    let dir = tempfile::tempdir().expect("tempdir");
    CertificateAuthority::load_or_create(dir.path(), "cluster.local", workload_ttl)
        .expect("a new root")
}

fn sleep_identity() -> SpiffeId {
    SpiffeId {
        trust_domain: "cluster.local".to_string(),
        namespace: "default".to_string(),
        service_account: "sleep".to_string(),
    }
}

fn pem(text: &str) -> Pem {
    x509_parser::pem::parse_x509_pem(text.as_bytes())
        .expect("PEM certificate")
        .1
}

fn time_of(x509: &X509Certificate<'_>, not_after: bool) -> SystemTime {
    let validity = x509.validity();
    let t = if not_after {
        validity.not_after
    } else {
        validity.not_before
    };
    SystemTime::from(t.to_datetime())
}
