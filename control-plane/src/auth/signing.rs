//! The control plane's own token key (ECDSA P-256, ES256): minting tokens
//! for `token create` and the public half that verifies them.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};

use super::account::ServiceAccount;
use super::claims::MintedClaims;

/// Why the token key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SigningKeyError {
    #[error(
        "the token key is not an ECDSA P-256 PKCS#8 PEM key ({0}); remove token-key.pem to have a new one generated (tokens signed by the old key stop working)"
    )]
    InvalidKey(String),
    #[error("cannot sign the token: {0}")]
    Sign(jsonwebtoken::errors::Error),
}

/// The key tokens are signed and verified with. Prints without the key.
pub struct TokenSigningKey {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl fmt::Debug for TokenSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSigningKey").finish_non_exhaustive()
    }
}

impl TokenSigningKey {
    /// The key from its PKCS#8 PEM (`token-key.pem`).
    pub fn from_pem(pem: &str) -> Result<Self, SigningKeyError> {
        let invalid = |e: &dyn fmt::Display| SigningKeyError::InvalidKey(e.to_string());
        let key_pair = rcgen::KeyPair::from_pem(pem).map_err(|e| invalid(&e))?;
        if !key_pair.is_compatible(&rcgen::PKCS_ECDSA_P256_SHA256) {
            return Err(invalid(&"it is not a P-256 key"));
        }
        let encoding = EncodingKey::from_ec_pem(pem.as_bytes()).map_err(|e| invalid(&e))?;
        let decoding = DecodingKey::from_ec_der(key_pair.public_key_raw());
        Ok(Self { encoding, decoding })
    }

    /// A token for `account`, valid from `now` for `ttl`.
    pub fn mint(
        &self,
        account: &ServiceAccount,
        now: SystemTime,
        ttl: Duration,
    ) -> Result<String, SigningKeyError> {
        let issued_at = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let claims = MintedClaims::new(account, issued_at, issued_at + ttl.as_secs().max(1));
        jsonwebtoken::encode(&Header::new(Algorithm::ES256), &claims, &self.encoding)
            .map_err(SigningKeyError::Sign)
    }

    /// What verifies the tokens this key signed.
    pub(super) fn verifying_key(&self) -> &DecodingKey {
        &self.decoding
    }
}
