//! The control plane: Istio config in, Envoy v3 xDS out over ADS to proxies
//! that prove their identity with a token, and the mesh certificate
//! authority that signs their CSRs.

pub mod analyze;
pub mod auth;
pub mod ca;
pub mod config;
pub mod egress;
pub mod metrics;
pub mod translate;
pub mod xds;

#[cfg(test)]
mod test_yaml;
