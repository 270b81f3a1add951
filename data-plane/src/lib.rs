//! The agent: subscribes to the control plane over ADS and runs listeners,
//! routes and clusters in its own tokio proxy loops.

pub mod access_log_service;
pub mod admin;
pub mod capture;
pub mod dns;
pub mod identity;
pub mod model;
pub mod node;
pub mod proxy;
pub mod sds;
pub mod store;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod upstream;
pub mod xds;
