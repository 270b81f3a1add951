//! Why the certificate authority could not start, sign a CSR or issue a
//! certificate.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}; check that the CA directory is writable", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{} has {present} but not {missing}: put both files there to use your root, or neither to have one generated",
        dir.display()
    )]
    IncompleteDir {
        dir: PathBuf,
        present: &'static str,
        missing: &'static str,
    },
    #[error("{}: {reason}", path.display())]
    InvalidCert { path: PathBuf, reason: String },
    #[error(
        "{} is not a usable private key ({source}); it must be unencrypted PKCS#8 PEM (`BEGIN PRIVATE KEY`), e.g. `openssl pkcs8 -topk8 -nocrypt -in old.pem -out {}`",
        path.display(),
        path.display()
    )]
    InvalidKey { path: PathBuf, source: rcgen::Error },
    #[error("{} is not the private key of {}: use the key the root was made with", key.display(), cert.display())]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    #[error(
        "the root expired on {at}; replace ca-cert.pem/ca-key.pem in the CA directory with a valid root (or empty it to have a new one generated) and restart"
    )]
    RootExpired { at: String },
    #[error("cannot generate a root certificate: {0}")]
    Generate(rcgen::Error),
    #[error("cannot issue a certificate for {identity}: {source}")]
    Issue {
        identity: String,
        source: rcgen::Error,
    },
    #[error("cannot draw a random serial number: {0}")]
    Random(getrandom::Error),
}

/// Why a certificate signing request was not signed.
#[derive(Debug, thiserror::Error)]
pub enum CsrError {
    /// Not a PEM PKCS#10 request whose signature verifies with its key, or
    /// one asking for what this CA does not issue.
    #[error("{0}")]
    Invalid(String),
    /// The request names another identity than the one it is signed for:
    /// `requested` lists its other SANs, each value quoted.
    #[error("{requested}")]
    IdentityMismatch { requested: String },
    #[error(transparent)]
    Issue(#[from] CaError),
}
