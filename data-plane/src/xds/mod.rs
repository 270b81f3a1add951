//! The ADS client: one stream to the control plane, subscriptions, ACK and
//! NACK, reconnect with backoff. It knows the protocol only; what the
//! resources mean is the [`ConfigSink`]'s business.

pub(crate) mod backoff;
pub mod client;
pub mod connection;
pub mod stats;

pub use client::AdsClient;
pub use connection::{AuthorizedChannel, ControlPlane, TlsSettings, TokenError};
pub use stats::{UpdateResult, XdsStats};

use std::fmt::Write;

use proto::wkt::Any;

/// Why an ADS stream could not be opened or ended.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid control plane address {address:?}: {reason}")]
    InvalidAddress { address: String, reason: String },
    #[error("cannot connect to the control plane at {address} ({hint}): {reason}")]
    Connect {
        address: String,
        reason: String,
        hint: &'static str,
    },
    #[error("the control plane root {path} cannot be used: {reason} (check --ca-root)")]
    CaRoot {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("the ADS stream failed: {}", refusal(.0))]
    Stream(#[from] tonic::Status),
    #[error("the control plane closed the ADS stream")]
    Closed,
}

/// A status from the control plane as one line: its code and message, and
/// what to check when the control plane refused this proxy's credentials.
pub fn refusal(status: &tonic::Status) -> String {
    let hint = match status.code() {
        tonic::Code::Unauthenticated => {
            " (the control plane did not accept this proxy's token: check --token, its expiry and issuer)"
        }
        tonic::Code::PermissionDenied => {
            " (the token's identity does not allow this: check --namespace and --service-account against the token, and --trust-domain against the control plane's)"
        }
        _ => "",
    };
    format!("{:?}: {}{hint}", status.code(), status.message())
}

/// Why a sink rejected an update; it formats to one line, the NACK's
/// error_detail. The sink's own error type is behind it.
pub type Rejection = Box<dyn std::error::Error + Send + Sync>;

/// Where received resources go. Implemented by the config store.
pub trait ConfigSink: Send + Sync + 'static {
    /// Applies the complete set (state of the world) of `type_url`
    /// resources. On `Err` the previous config stays in force.
    fn apply(&self, type_url: &str, resources: &[Any]) -> Result<(), Rejection>;

    /// The resource names to request for `type_url` given what is applied
    /// now (RDS: the route configs listeners use; EDS: the EDS clusters'
    /// service names). `None` means a wildcard subscription (CDS, LDS).
    fn wanted_names(&self, type_url: &str) -> Option<Vec<String>>;

    /// Whether the client subscribes to `type_url` at all: every type it
    /// knows but the name table (NDS), which only a sink that answers DNS
    /// takes.
    fn subscribes(&self, type_url: &str) -> bool {
        type_url != shared::type_url::NAME_TABLE
    }
}

/// What to check when connecting failed with `error`: the names and roots
/// when the control plane's certificate was refused, the port when the TLS
/// handshake failed otherwise, and whether it is up for anything else
/// (refused, timed out, unresolvable).
pub(crate) fn connect_hint(error: &(dyn std::error::Error + 'static)) -> &'static str {
    let tls_error = std::iter::successors(Some(error), |e| e.source()).find_map(|cause| {
        cause.downcast_ref::<rustls::Error>().or_else(|| {
            cause
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        })
    });
    match tls_error {
        Some(rustls::Error::InvalidCertificate(_)) => {
            "its certificate was refused: check --xds-server-name against its certificate's names and --ca-root against its root"
        }
        Some(_) => {
            "the TLS handshake failed: is this its TLS port? (--plaintext for a plaintext one)"
        }
        None => "is it running and reachable?",
    }
}

/// An error and its sources, joined by `: `. A source that repeats the
/// message before it (hyper's connect errors do) is written once.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut previous = text.clone();
    let mut source = error.source();
    while let Some(cause) = source {
        let message = cause.to_string();
        if message != previous {
            // Writing to a String cannot fail.
            let _ = write!(text, ": {message}");
        }
        previous = message;
        source = cause.source();
    }
    text
}
