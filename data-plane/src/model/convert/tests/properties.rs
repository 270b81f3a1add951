//! Properties of the conversions: whatever bytes arrive as a resource (one
//! the control plane emits with some bytes changed, or any bytes at all),
//! applying them accepts the resource or rejects it with an error, never
//! panics, and a rejection leaves the config in force as it was.

use std::sync::{Arc, OnceLock};

use proptest::prelude::*;
use proptest::sample::Index;
use prost::Message;
use proto::pb::envoy::config::{cluster, endpoint, listener, route};
use proto::wkt::Any;
use serde_json::Value;
use shared::type_url;

use super::golden::{golden_dir, json_files, resources};
use crate::store::ConfigStore;

/// The types a resource can be sent as.
const TYPES: [&str; 5] = [
    type_url::LISTENER,
    type_url::CLUSTER,
    type_url::ROUTE,
    type_url::ENDPOINT,
    type_url::SECRET,
];

/// Every resource of every golden file, encoded, with its type URL.
fn golden_resources() -> &'static [(&'static str, Vec<u8>)] {
    static SEEDS: OnceLock<Vec<(&'static str, Vec<u8>)>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let mut files = Vec::new();
        json_files(&golden_dir(), &mut files);
        let mut seeds = Vec::new();
        for file in files {
            let text = std::fs::read_to_string(&file).expect("read a golden file");
            let golden: Value = serde_json::from_str(&text).expect("golden JSON");
            encode_all::<listener::v3::Listener>(
                &golden,
                "listeners",
                "envoy.config.listener.v3.Listener",
                type_url::LISTENER,
                &mut seeds,
            );
            encode_all::<cluster::v3::Cluster>(
                &golden,
                "clusters",
                "envoy.config.cluster.v3.Cluster",
                type_url::CLUSTER,
                &mut seeds,
            );
            encode_all::<route::v3::RouteConfiguration>(
                &golden,
                "routes",
                "envoy.config.route.v3.RouteConfiguration",
                type_url::ROUTE,
                &mut seeds,
            );
            encode_all::<endpoint::v3::ClusterLoadAssignment>(
                &golden,
                "endpoints",
                "envoy.config.endpoint.v3.ClusterLoadAssignment",
                type_url::ENDPOINT,
                &mut seeds,
            );
        }
        assert!(seeds.len() > 100, "only {} golden resources", seeds.len());
        seeds
    })
}

fn encode_all<M: Message + Default>(
    golden: &Value,
    key: &str,
    type_name: &str,
    type_url: &'static str,
    seeds: &mut Vec<(&'static str, Vec<u8>)>,
) {
    for resource in resources::<M>(golden, key, type_name) {
        seeds.push((type_url, resource.encode_to_vec()));
    }
}

/// One change to a resource's bytes.
#[derive(Debug, Clone)]
enum Mutation {
    /// XOR the byte at an index with a non-zero mask.
    Flip(Index, u8),
    /// Overwrite the byte at an index (a length, a tag, a wire type).
    Set(Index, u8),
    Insert(Index, Vec<u8>),
    Remove(Index, usize),
    Truncate(Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), 1u8..).prop_map(|(at, mask)| Mutation::Flip(at, mask)),
        (any::<Index>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Set(at, byte)),
        (any::<Index>(), prop::collection::vec(any::<u8>(), 1..12))
            .prop_map(|(at, bytes)| Mutation::Insert(at, bytes)),
        (any::<Index>(), 1usize..16).prop_map(|(at, n)| Mutation::Remove(at, n)),
        any::<Index>().prop_map(Mutation::Truncate),
    ]
}

fn mutate(bytes: &mut Vec<u8>, mutation: &Mutation) {
    let len = bytes.len();
    if len == 0 {
        return;
    }
    match mutation {
        Mutation::Flip(at, mask) => bytes[at.index(len)] ^= mask,
        Mutation::Set(at, byte) => bytes[at.index(len)] = *byte,
        Mutation::Insert(at, inserted) => {
            let at = at.index(len + 1);
            bytes.splice(at..at, inserted.iter().copied());
        }
        Mutation::Remove(at, n) => {
            let at = at.index(len);
            bytes.drain(at..(at + n).min(len));
        }
        Mutation::Truncate(at) => bytes.truncate(at.index(len)),
    }
}

/// Applies `bytes` as the one resource of `type_url` to a store that holds
/// one accepted listener; returns whether it was accepted, after checking
/// that a rejection left the store's config as it was.
fn apply(type_url: &str, bytes: &[u8]) -> bool {
    let store = ConfigStore::new(Box::new(|_| Ok(())));
    let (seed_type, seed) = &golden_resources()[0];
    store
        .update(
            seed_type,
            &[Any {
                type_url: seed_type.to_string(),
                value: seed.clone(),
            }],
        )
        .expect("a golden resource is accepted");
    let before = store.load();
    let resource = Any {
        type_url: type_url.to_string(),
        value: bytes.to_vec(),
    };
    match store.update(type_url, &[resource]) {
        Ok(()) => true,
        Err(error) => {
            assert!(!error.to_string().is_empty());
            assert!(
                Arc::ptr_eq(&before, &store.load()),
                "a rejected update replaced the config"
            );
            false
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    /// A resource the control plane emits, with a few bytes changed, is
    /// accepted or rejected, never a panic (and sometimes sent as another
    /// type, which must be rejected as cleanly).
    #[test]
    fn a_changed_golden_resource_is_accepted_or_rejected(
        seed in any::<Index>(),
        mutations in prop::collection::vec(mutation(), 1..6),
        retype in prop::option::weighted(0.1, 0..TYPES.len()),
    ) {
        let seeds = golden_resources();
        let (type_url, bytes) = &seeds[seed.index(seeds.len())];
        let mut bytes = bytes.clone();
        for mutation in &mutations {
            mutate(&mut bytes, mutation);
        }
        let type_url = retype.map_or(*type_url, |i| TYPES[i]);
        apply(type_url, &bytes);
    }

    /// Any bytes at all, as any type.
    #[test]
    fn any_bytes_are_accepted_or_rejected(
        kind in 0..TYPES.len(),
        bytes in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        apply(TYPES[kind], &bytes);
    }
}

/// Unchanged, every golden resource is accepted by the same path.
#[test]
fn every_golden_resource_is_accepted_as_sent() {
    for (type_url, bytes) in golden_resources() {
        assert!(apply(type_url, bytes), "{type_url} rejected");
    }
}
