//! The control plane: Istio config in, Envoy v3 xDS out over ADS, and the
//! mesh certificate authority whose certificates it serves over SDS.

pub mod auth;
pub mod ca;
pub mod config;
pub mod metrics;
pub mod translate;
pub mod xds;
