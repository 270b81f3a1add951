//! Test doubles for the agent's control plane, for this crate's tests and,
//! behind the `testing` feature, for the end-to-end tests: a fake ADS
//! server the test scripts stream by stream, one that answers by itself,
//! and the resources they serve; for this crate's tests only, a fake CA and
//! a fake access log service.

pub mod auto_ads;
pub mod fake_ads;
#[cfg(test)]
pub mod fake_als;
#[cfg(test)]
pub mod fake_ca;
pub mod resources;
