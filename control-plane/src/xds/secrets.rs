//! Secrets per proxy identity: `default` (the workload certificate and its
//! key) and `ROOTCA` (the mesh root). Secrets depend on the identity
//! (trust domain, namespace, service account), not on what translation
//! depends on, so they are cached apart: every proxy of one identity shares
//! one certificate, re-issued once 80% of its lifetime has passed.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;

use crate::ca::{CertificateAuthority, Identity, WorkloadCertificate};
use crate::translate::secret;

use super::XdsContext;
use super::cache::{ByName, VersionedResource, content_version};

/// The secrets of one identity, ready to send.
#[derive(Debug)]
pub struct IdentitySecrets {
    /// When the certificate should be replaced.
    pub rotate_at: SystemTime,
    pub not_after: SystemTime,
    /// `default` and `ROOTCA`, by name.
    pub resources: ByName,
}

impl IdentitySecrets {
    fn new(certificate: &WorkloadCertificate, root_pem: &str) -> Self {
        // Versions hash the certificates only, never the key.
        let secrets = [
            (
                secret::workload_secret(&certificate.chain_pem, certificate.private_key_pem()),
                content_version(certificate.chain_pem.as_bytes()),
            ),
            (
                secret::root_secret(root_pem),
                content_version(root_pem.as_bytes()),
            ),
        ];
        let resources = secrets
            .into_iter()
            .map(|(secret, version)| {
                let versioned = Arc::new(VersionedResource {
                    name: secret.name.as_str().into(),
                    version: version.into(),
                    any: secret::pack(&secret),
                });
                (versioned.name.clone(), versioned)
            })
            .collect();
        Self {
            rotate_at: certificate.rotate_at,
            not_after: certificate.not_after,
            resources,
        }
    }
}

/// Certificates issued by the mesh CA, by identity.
pub struct SecretCache {
    ca: Arc<CertificateAuthority>,
    by_identity: DashMap<Identity, Arc<IdentitySecrets>>,
}

impl SecretCache {
    pub fn new(ca: Arc<CertificateAuthority>) -> Self {
        Self {
            ca,
            by_identity: DashMap::new(),
        }
    }

    pub fn ca(&self) -> &CertificateAuthority {
        &self.ca
    }

    /// The secrets of `identity`: the cached ones until their rotation
    /// instant, then newly issued ones. `None` when the CA cannot issue a
    /// certificate for it (logged).
    pub fn get(&self, identity: &Identity) -> Option<Arc<IdentitySecrets>> {
        let now = SystemTime::now();
        if let Some(hit) = self.by_identity.get(identity).filter(|s| now < s.rotate_at) {
            return Some(hit.clone());
        }
        match self.by_identity.entry(identity.clone()) {
            Entry::Occupied(entry) if now < entry.get().rotate_at => Some(entry.get().clone()),
            entry => match self.ca.issue(identity) {
                Ok(certificate) => {
                    tracing::info!(
                        identity = %identity,
                        not_after = %humantime::format_rfc3339_seconds(certificate.not_after),
                        rotate_at = %humantime::format_rfc3339_seconds(certificate.rotate_at),
                        "issued workload certificate"
                    );
                    let secrets = Arc::new(IdentitySecrets::new(&certificate, self.ca.root_pem()));
                    entry.insert(secrets.clone());
                    Some(secrets)
                }
                Err(error) => {
                    tracing::error!(identity = %identity, %error, "cannot issue a workload certificate");
                    None
                }
            },
        }
    }

    /// The earliest instant a cached certificate is due for rotation.
    pub fn next_rotation(&self) -> Option<SystemTime> {
        self.by_identity.iter().map(|e| e.rotate_at).min()
    }

    /// Forgets the certificates due for rotation at `now`, so that the next
    /// [`get`](Self::get) issues new ones and identities no proxy uses any
    /// more are dropped. Returns how many were forgotten.
    pub fn expire(&self, now: SystemTime) -> usize {
        let before = self.by_identity.len();
        self.by_identity.retain(|_, s| now < s.rotate_at);
        before - self.by_identity.len()
    }
}

/// Rotates workload certificates for as long as the server runs: sleeps
/// until the earliest rotation instant, forgets the certificates due, and
/// wakes every stream so that each re-reads its identity's secrets. A
/// stream sends only the secrets that changed; connections stay up.
pub async fn rotate_certificates(context: Arc<XdsContext>) {
    let idle = context.secrets.ca().workload_ttl() * 4 / 5;
    loop {
        let wait = context.secrets.next_rotation().map_or(idle, |at| {
            at.duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO)
        });
        tokio::time::sleep(wait).await;
        let rotated = context.secrets.expire(SystemTime::now());
        if rotated > 0 {
            tracing::info!(identities = rotated, "rotating workload certificates");
            context.publisher.refresh();
        }
    }
}
