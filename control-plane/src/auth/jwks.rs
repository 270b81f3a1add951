//! Kubernetes projected service-account tokens: the cluster's issuer and
//! its signing keys, read from a JWKS file (`kubectl get --raw
//! /openid/v1/jwks`), RS256 or ES256, and read again when it changes.

use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey, Header};
use parking_lot::Mutex;

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

/// How often, at most, the JWKS file is looked at for a change.
const RECHECK_INTERVAL: Duration = Duration::from_secs(1);

/// One signing key of the cluster.
struct ClusterKey {
    id: Option<String>,
    algorithm: Algorithm,
    key: DecodingKey,
}

/// What tells one version of the JWKS file from the next: its inode (a
/// file moved over it, as a Kubernetes volume's symlink swap), its
/// modification time and its length.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    inode: u64,
    modified: Option<SystemTime>,
    len: u64,
}

impl FileStamp {
    fn of(path: &Path) -> Option<Self> {
        let metadata = std::fs::metadata(path).ok()?;
        Some(Self {
            inode: metadata.ino(),
            modified: metadata.modified().ok(),
            len: metadata.len(),
        })
    }
}

/// The keys last read, the file version they came from, and when the file
/// was last looked at.
struct KeySet {
    keys: Arc<[ClusterKey]>,
    stamp: Option<FileStamp>,
    checked_at: Instant,
}

/// The issuer of a cluster's service-account tokens and its keys, re-read
/// from the JWKS file when it changes (the cluster rotates its keys).
pub struct KubernetesTokens {
    issuer: String,
    path: PathBuf,
    recheck_interval: Duration,
    state: Mutex<KeySet>,
}

impl fmt::Debug for KubernetesTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KubernetesTokens")
            .field("issuer", &self.issuer)
            .field("path", &self.path)
            .field("keys", &self.state.lock().keys.len())
            .finish()
    }
}

impl KubernetesTokens {
    /// The keys in the JWKS file at `path`, for tokens of `issuer`. Keys
    /// for encryption, or of other algorithms, are skipped. The control
    /// plane's own issuer is refused: its tokens are verified with the
    /// control plane's key alone.
    pub fn load(path: &Path, issuer: &str) -> Result<Self, JwksError> {
        if issuer == ISSUER {
            return Err(JwksError::OwnIssuer);
        }
        let stamp = FileStamp::of(path);
        let keys = read_keys(path)?;
        Ok(Self {
            issuer: issuer.to_string(),
            path: path.to_path_buf(),
            recheck_interval: RECHECK_INTERVAL,
            state: Mutex::new(KeySet {
                keys: keys.into(),
                stamp,
                checked_at: Instant::now(),
            }),
        })
    }

    /// Looks at the file at every verification (for tests of its changes).
    #[cfg(test)]
    pub(super) fn rechecked_every_time(mut self) -> Self {
        self.recheck_interval = Duration::ZERO;
        self
    }

    /// The current keys: when the file changed since it was last looked at
    /// (at most once per [`RECHECK_INTERVAL`]), it is read again; when the
    /// new version cannot be used, the last good keys stay, with one
    /// warning.
    fn keys(&self) -> Arc<[ClusterKey]> {
        let mut state = self.state.lock();
        let now = Instant::now();
        if now.saturating_duration_since(state.checked_at) >= self.recheck_interval {
            state.checked_at = now;
            let stamp = FileStamp::of(&self.path);
            if stamp != state.stamp {
                state.stamp = stamp;
                match read_keys(&self.path) {
                    Ok(keys) => {
                        tracing::info!(
                            path = %self.path.display(),
                            keys = keys.len(),
                            "re-read the JWKS file"
                        );
                        state.keys = keys.into();
                    }
                    Err(error) => tracing::warn!(
                        "{error}; still using the {} keys read before",
                        state.keys.len()
                    ),
                }
            }
        }
        state.keys.clone()
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The keys that may have signed a token with `header`: the one its
    /// `kid` names, or, without a `kid`, every key of its algorithm.
    pub(super) fn candidates(
        &self,
        header: &Header,
    ) -> Result<Vec<(DecodingKey, Algorithm)>, AuthError> {
        let keys: Vec<_> = self
            .keys()
            .iter()
            .filter(|k| header.kid.is_none() || k.id == header.kid)
            .filter(|k| k.algorithm == header.alg)
            .map(|k| (k.key.clone(), k.algorithm))
            .collect();
        if keys.is_empty() {
            let signed_with = match &header.kid {
                Some(kid) => format!("{:?} key {kid:?}", header.alg),
                None => format!("an {:?} key", header.alg),
            };
            return Err(AuthError::BadSignature(format!(
                "it is signed with {signed_with}, which {} does not hold (refresh it with `kubectl get --raw /openid/v1/jwks`; it is read again when it changes)",
                self.path.display()
            )));
        }
        Ok(keys)
    }
}

/// The usable keys of the JWKS file at `path`.
fn read_keys(path: &Path) -> Result<Vec<ClusterKey>, JwksError> {
    let text = std::fs::read_to_string(path).map_err(|source| JwksError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let set: JwkSet = serde_json::from_str(&text).map_err(|source| JwksError::Parse {
        path: path.to_path_buf(),
        source,
    })?;
    let keys: Vec<ClusterKey> = set.keys.iter().filter_map(cluster_key).collect();
    if keys.is_empty() {
        return Err(JwksError::NoUsableKey {
            path: path.to_path_buf(),
        });
    }
    Ok(keys)
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
