//! Who is calling: bearer tokens (the control plane's own, minted by
//! `control-plane token create`, and Kubernetes projected service-account
//! tokens checked against a JWKS file) verified into the service account
//! they prove, and the typed reasons a caller is refused.

mod account;
mod claims;
mod error;
mod jwks;
mod signing;
mod verify;

#[cfg(test)]
mod tests;

pub use account::{AccountError, ServiceAccount};
pub use claims::{AUDIENCE, ISSUER};
pub use error::AuthError;
pub use jwks::{JwksError, KubernetesTokens};
pub use signing::{SigningKeyError, TokenSigningKey};
pub use verify::{Authenticator, bearer_token};
