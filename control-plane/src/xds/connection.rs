//! A connected proxy: its identity and, per type URL, its subscription.
//! Shared between its stream task and CSDS.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;
use parking_lot::Mutex;
use proto::pb::envoy::config::core::v3::Node;

use crate::translate::Proxy;

use super::subscription::Subscriptions;

/// One ADS stream's proxy and protocol state.
pub struct Connection {
    pub id: u64,
    pub node: Node,
    pub proxy: Proxy,
    pub delta: bool,
    /// The caller proved its identity (a verified token on the secure
    /// port); only then may it be sent secrets.
    pub verified: bool,
    pub subscriptions: Mutex<Subscriptions>,
    nonce: AtomicU64,
}

impl Connection {
    pub fn new(id: u64, node: Node, proxy: Proxy, delta: bool, verified: bool) -> Self {
        Self {
            id,
            node,
            proxy,
            delta,
            verified,
            subscriptions: Mutex::default(),
            nonce: AtomicU64::new(0),
        }
    }

    /// A stream-wide increasing nonce.
    pub fn next_nonce(&self) -> String {
        (self.nonce.fetch_add(1, Ordering::Relaxed) + 1).to_string()
    }
}

/// All connected proxies, by connection id.
#[derive(Default)]
pub struct Connections {
    next_id: AtomicU64,
    by_id: DashMap<u64, Arc<Connection>>,
}

impl Connections {
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub fn insert(&self, connection: Arc<Connection>) {
        self.by_id.insert(connection.id, connection);
    }

    pub fn remove(&self, id: u64) {
        self.by_id.remove(&id);
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// A consistent list, sorted by connection id.
    pub fn list(&self) -> Vec<Arc<Connection>> {
        let mut all: Vec<_> = self.by_id.iter().map(|e| e.value().clone()).collect();
        all.sort_by_key(|c| c.id);
        all
    }
}
