//! Per-proxy resources with content-hash versions. Proxies with the same
//! role, namespace, labels and DNS capture get the same resources, so one translation
//! serves all of them for a given mesh state.

use std::collections::BTreeMap;
use std::hash::Hash;
use std::sync::Arc;

use dashmap::DashMap;
use proto::wkt::Any;
use sha2::{Digest, Sha256};
use shared::node::NodeType;

use crate::config::model::Labels;
use crate::translate::{self, Proxy};

use super::limits::type_size;
use super::push::versions;
use super::state::MeshState;
use super::subscription::{Versions, is_wildcard_type};

/// One resource with the hash of its encoding, used as its delta version.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionedResource {
    pub name: Arc<str>,
    pub version: Arc<str>,
    pub any: Any,
}

/// Resources of one type by name (the name is the resource's own).
pub type ByName = BTreeMap<Arc<str>, Arc<VersionedResource>>;

/// Everything one proxy gets, by type URL then name.
#[derive(Debug, Default)]
pub struct ProxySnapshot {
    pub generation: u64,
    pub by_type: BTreeMap<&'static str, ByName>,
    /// Per wildcard type (CDS, LDS), what a wildcard subscriber is sent,
    /// computed once for all the proxies that share this snapshot.
    pub wholes: BTreeMap<&'static str, WholeType>,
    /// Per type, the bytes its resources take in a response.
    pub sizes: BTreeMap<&'static str, usize>,
}

/// Every resource of one type, as a state-of-the-world response has it.
#[derive(Debug)]
pub struct WholeType {
    pub version: String,
    pub versions: Versions,
}

impl ProxySnapshot {
    /// The resources of `type_url`; none for a type translation does not
    /// produce (secrets: proxies get theirs from their own agent).
    pub fn resources(&self, type_url: &str) -> Option<&ByName> {
        self.by_type.get(type_url)
    }

    /// Every resource of a wildcard type, summed up.
    pub fn whole(&self, type_url: &str) -> Option<&WholeType> {
        self.wholes.get(type_url)
    }
}

/// What translation depends on besides the mesh state.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ProxyKey {
    node_type: NodeType,
    namespace: String,
    labels: Labels,
    dns_capture: bool,
}

impl ProxyKey {
    fn of(proxy: &Proxy) -> Self {
        Self {
            node_type: proxy.node_type,
            namespace: proxy.namespace.clone(),
            labels: proxy.labels.clone(),
            dns_capture: proxy.dns_capture,
        }
    }
}

/// Translations shared between proxies with the same key, per generation.
#[derive(Default)]
pub struct SnapshotCache {
    entries: DashMap<ProxyKey, Arc<ProxySnapshot>>,
}

impl SnapshotCache {
    /// The resources for `proxy` in `state`, translated at most once per key
    /// and generation.
    pub fn get(&self, state: &MeshState, proxy: &Proxy) -> Arc<ProxySnapshot> {
        let key = ProxyKey::of(proxy);
        if let Some(hit) = self
            .entries
            .get(&key)
            .filter(|e| e.generation == state.generation)
        {
            return hit.clone();
        }
        let resources = translate::translate(&state.snapshot, &state.workloads, proxy).into_typed();
        let by_type: BTreeMap<&'static str, ByName> = resources
            .into_iter()
            .map(|(type_url, by_name)| {
                let versioned = by_name
                    .into_iter()
                    .map(|(name, any)| {
                        let resource = Arc::new(VersionedResource {
                            name: name.into(),
                            version: content_version(&any.value).into(),
                            any,
                        });
                        (resource.name.clone(), resource)
                    })
                    .collect();
                (type_url, versioned)
            })
            .collect();
        let wholes = by_type
            .iter()
            .filter(|(type_url, _)| is_wildcard_type(type_url))
            .map(|(type_url, by_name)| {
                let whole = WholeType {
                    version: set_version(by_name.values().map(|r| &**r)),
                    versions: versions(by_name.values().map(|r| &**r)),
                };
                (*type_url, whole)
            })
            .collect();
        let sizes = by_type
            .iter()
            .map(|(type_url, by_name)| (*type_url, type_size(by_name)))
            .collect();
        let snapshot = Arc::new(ProxySnapshot {
            generation: state.generation,
            by_type,
            wholes,
            sizes,
        });
        let mut entry = self.entries.entry(key).or_insert_with(|| snapshot.clone());
        if entry.generation < snapshot.generation {
            *entry = snapshot.clone();
        }
        entry.clone()
    }

    /// Forgets translations of generations older than `generation`.
    pub fn evict_older_than(&self, generation: u64) {
        self.entries.retain(|_, v| v.generation >= generation);
    }
}

/// A short, stable hash of a resource's encoding.
pub fn content_version(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// The version of a set of resources sent together (state of the world).
pub fn set_version<'a>(resources: impl Iterator<Item = &'a VersionedResource>) -> String {
    let mut hasher = Sha256::new();
    for r in resources {
        hasher.update(r.name.as_bytes());
        hasher.update([0]);
        hasher.update(r.version.as_bytes());
        hasher.update([0]);
    }
    hasher.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
