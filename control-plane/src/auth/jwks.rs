//! Kubernetes projected service-account tokens: the cluster's issuer and
//! its signing keys, read from a JWKS file (`kubectl get --raw
//! /openid/v1/jwks`), RS256 or ES256.

use std::fmt;
use std::path::{Path, PathBuf};

use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey, Header};

use super::claims::ISSUER;
use super::error::AuthError;

/// Why the JWKS file, or the issuer given for its tokens, cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error(
        "--jwt-issuer {ISSUER:?} is the issuer of this control plane's own tokens, so cluster tokens would never be checked against the JWKS file; pass the cluster's issuer (its `issuer` in `kubectl get --raw /.well-known/openid-configuration`, e.g. https://kubernetes.default.svc.cluster.local)"
    )]
    OwnIssuer,
    #[error("cannot read the JWKS file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{} is not a JWKS document ({source}); save the cluster's keys with `kubectl get --raw /openid/v1/jwks`",
        path.display()
    )]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error(
        "{} holds no RS256 or ES256 (P-256) signing key; service-account tokens are signed with one of those",
        path.display()
    )]
    NoUsableKey { path: PathBuf },
}

/// One signing key of the cluster.
struct ClusterKey {
    id: Option<String>,
    algorithm: Algorithm,
    key: DecodingKey,
}

/// The issuer of a cluster's service-account tokens and its keys.
pub struct KubernetesTokens {
    issuer: String,
    path: PathBuf,
    keys: Vec<ClusterKey>,
}

impl fmt::Debug for KubernetesTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KubernetesTokens")
            .field("issuer", &self.issuer)
            .field("path", &self.path)
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl KubernetesTokens {
    /// The keys in the JWKS file at `path`, for tokens of `issuer`. Keys
    /// for encryption, or of other algorithms, are skipped.
    /// The control plane's own issuer is refused: its tokens are verified
    /// with the control plane's key alone.
    pub fn load(path: &Path, issuer: &str) -> Result<Self, JwksError> {
        if issuer == ISSUER {
            return Err(JwksError::OwnIssuer);
        }
        let text = std::fs::read_to_string(path).map_err(|source| JwksError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_json(&text, path, issuer)
    }

    fn from_json(text: &str, path: &Path, issuer: &str) -> Result<Self, JwksError> {
        let set: JwkSet = serde_json::from_str(text).map_err(|source| JwksError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
        let keys: Vec<ClusterKey> = set.keys.iter().filter_map(cluster_key).collect();
        if keys.is_empty() {
            return Err(JwksError::NoUsableKey {
                path: path.to_path_buf(),
            });
        }
        Ok(Self {
            issuer: issuer.to_string(),
            path: path.to_path_buf(),
            keys,
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The keys that may have signed a token with `header`: the one its
    /// `kid` names, or, without a `kid`, every key of its algorithm.
    pub(super) fn candidates(
        &self,
        header: &Header,
    ) -> Result<Vec<(&DecodingKey, Algorithm)>, AuthError> {
        let keys: Vec<_> = self
            .keys
            .iter()
            .filter(|k| header.kid.is_none() || k.id == header.kid)
            .filter(|k| k.algorithm == header.alg)
            .map(|k| (&k.key, k.algorithm))
            .collect();
        if keys.is_empty() {
            let signed_with = match &header.kid {
                Some(kid) => format!("{:?} key {kid:?}", header.alg),
                None => format!("an {:?} key", header.alg),
            };
            return Err(AuthError::BadSignature(format!(
                "it is signed with {signed_with}, which {} does not hold (refresh it with `kubectl get --raw /openid/v1/jwks`)",
                self.path.display()
            )));
        }
        Ok(keys)
    }
}

/// A key usable for RS256 or ES256 signatures.
fn cluster_key(jwk: &Jwk) -> Option<ClusterKey> {
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return None;
    }
    let algorithm = match (&jwk.algorithm, jwk.common.key_algorithm) {
        (AlgorithmParameters::RSA(_), None | Some(KeyAlgorithm::RS256)) => Algorithm::RS256,
        (AlgorithmParameters::EllipticCurve(ec), None | Some(KeyAlgorithm::ES256))
            if ec.curve == EllipticCurve::P256 =>
        {
            Algorithm::ES256
        }
        _ => return None,
    };
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some(ClusterKey {
        id: jwk.common.key_id.clone(),
        algorithm,
        key,
    })
}
