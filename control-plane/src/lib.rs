//! The control plane: Istio config in, Envoy v3 xDS out over ADS.

pub mod config;
pub mod metrics;
pub mod translate;
pub mod xds;
