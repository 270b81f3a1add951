//! The ADS client: one stream to the control plane, subscriptions, ACK and
//! NACK, reconnect with backoff. It knows the protocol only; what the
//! resources mean is the [`ConfigSink`]'s business.

mod backoff;
pub mod client;
pub mod stats;

pub use client::AdsClient;
pub use stats::{UpdateResult, XdsStats};

use proto::wkt::Any;

/// Why an ADS stream could not be opened or ended.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid control plane address {address:?}: {reason}")]
    InvalidAddress { address: String, reason: String },
    #[error(
        "cannot connect to the control plane at {address} (is it running and reachable?): {reason}"
    )]
    Connect { address: String, reason: String },
    #[error("the ADS stream failed: {}: {}", .0.code(), .0.message())]
    Stream(#[from] tonic::Status),
    #[error("the control plane closed the ADS stream")]
    Closed,
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
}
