//! What one stream knows about one resource type: what the proxy asked for,
//! what was sent (version, nonce, per-resource versions), what it ACKed and
//! its last NACK. CSDS reports exactly this.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use tokio::time::Instant;

/// Name → version of the resources a proxy holds. The names and versions
/// are those of the translated resources, shared by every proxy that holds
/// them, and one set is shared by the states it describes (sent, waiting
/// for an answer, ACKed): a connected proxy costs pointers, not copies.
pub type Versions = Arc<BTreeMap<Arc<str>, Arc<str>>>;

/// A rejected response, as the proxy reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nack {
    pub version: String,
    pub nonce: String,
    pub error: String,
}

#[derive(Debug, Clone)]
pub struct Subscription {
    /// Every resource of the type (LDS/CDS without names, or `*`).
    pub wildcard: bool,
    pub names: BTreeSet<String>,
    pub last_sent_version: String,
    pub last_sent_nonce: String,
    /// Name → version of what the proxy holds (sent, or declared on a delta reconnect).
    pub sent: Versions,
    pub acked_version: Option<String>,
    /// Per-resource versions as of the last ACK.
    pub acked: Versions,
    pub nack: Option<Nack>,
    pub last_updated: Option<Instant>,
    /// Versions of sent responses still waiting for an answer, by nonce.
    pending: BTreeMap<String, Versions>,
}

impl Subscription {
    pub fn new(wildcard: bool) -> Self {
        Self {
            wildcard,
            names: BTreeSet::new(),
            last_sent_version: String::new(),
            last_sent_nonce: String::new(),
            sent: Versions::default(),
            acked_version: None,
            acked: Versions::default(),
            nack: None,
            last_updated: None,
            pending: BTreeMap::new(),
        }
    }

    /// Whether the proxy wants resource `name`.
    pub fn wants(&self, name: &str) -> bool {
        self.wildcard || self.names.contains(name)
    }

    /// Records a response just sent; `holds` is every resource the proxy
    /// has after applying it (name → version).
    pub fn record_sent(&mut self, version: String, nonce: String, holds: Versions) {
        self.last_sent_version = version;
        self.last_sent_nonce = nonce.clone();
        self.sent = holds.clone();
        self.pending.insert(nonce, holds);
        self.last_updated = Some(Instant::now());
    }

    /// Records an ACK of the response with `nonce`.
    pub fn record_ack(&mut self, version: String, nonce: &str) {
        self.acked_version = Some(version);
        if let Some(acked) = self.pending.remove(nonce) {
            self.acked = acked;
        }
        let acked_nonce = nonce.parse::<u64>().ok();
        self.pending
            .retain(|n, _| n.parse::<u64>().ok() > acked_nonce);
        self.nack = None;
    }

    /// Records a NACK of the response with `nonce`.
    pub fn record_nack(&mut self, nonce: &str, error: String) {
        self.pending.remove(nonce);
        self.nack = Some(Nack {
            version: self.last_sent_version.clone(),
            nonce: nonce.to_string(),
            error,
        });
    }

    /// Whether the proxy answered the latest response (ACK or NACK).
    pub fn settled(&self) -> bool {
        !self.pending.contains_key(&self.last_sent_nonce)
    }
}
