//! The inventory itself: one record per source workload and destination, at most a given number of them; past it a source's new destinations fold into its one `other` record.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::observation::{Decision, Destination, Observation, ResponseCodes, SourceWorkload};

/// The default bound on destination records (`--egress-inventory-max`).
pub const DEFAULT_MAX_RECORDS: usize = 10_000;

/// How the `other` records' destination is shown.
pub const OTHER: &str = "other";

/// What the inventory knows about one source workload's traffic to one
/// destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub source: SourceWorkload,
    /// `None` for the source's `other` record: the destinations that came
    /// once the inventory was full.
    pub destination: Option<Destination>,
    /// The ServiceEntry `namespace/name`, `PassthroughCluster` or
    /// `BlackHoleCluster` that handled it last.
    pub handled_by: String,
    /// The latest decision.
    pub decision: Decision,
    /// Seconds since the Unix epoch.
    pub first_seen: u64,
    pub last_seen: u64,
    /// Requests (HTTP) or connections (TCP, TLS).
    pub count: u64,
    /// Bytes from the workload (requests).
    pub received_bytes: u64,
    /// Bytes to the workload (responses).
    pub sent_bytes: u64,
    /// HTTP response codes and how often each was seen.
    #[serde(default)]
    pub response_codes: ResponseCodes,
}

impl Record {
    fn from_observation(observation: Observation) -> Self {
        Self {
            source: observation.source,
            destination: Some(observation.destination),
            handled_by: observation.handled_by,
            decision: observation.decision,
            first_seen: observation.at,
            last_seen: observation.at,
            count: 1,
            received_bytes: observation.received_bytes,
            sent_bytes: observation.sent_bytes,
            response_codes: observation
                .response_code
                .map(|code| ResponseCodes::from([(code, 1)]))
                .unwrap_or_default(),
        }
    }

    /// Adds `other`'s traffic to this record: counts, bytes and codes add
    /// up, the seen times widen, and the later record's handler and
    /// decision win (a ServiceEntry added since changes them).
    pub fn merge(&mut self, other: Record) {
        if other.last_seen >= self.last_seen {
            self.handled_by = other.handled_by;
            self.decision = other.decision;
        }
        self.first_seen = self.first_seen.min(other.first_seen);
        self.last_seen = self.last_seen.max(other.last_seen);
        self.count = self.count.saturating_add(other.count);
        self.received_bytes = self.received_bytes.saturating_add(other.received_bytes);
        self.sent_bytes = self.sent_bytes.saturating_add(other.sent_bytes);
        for (code, count) in other.response_codes {
            let seen = self.response_codes.entry(code).or_default();
            *seen = seen.saturating_add(count);
        }
    }

    /// Whether this is a source's `other` record.
    pub fn is_other(&self) -> bool {
        self.destination.is_none()
    }
}

/// Where a record or an observation went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Into the record of its own destination (new or not).
    Own,
    /// Into its source's `other` record: the inventory was full.
    Folded,
}

type Key = (SourceWorkload, Option<Destination>);

/// The records, keyed by source workload and destination.
#[derive(Debug, Clone)]
pub struct Inventory {
    max_records: usize,
    records: BTreeMap<Key, Record>,
    /// Records of a destination (not `other`).
    destination_records: usize,
}

impl Inventory {
    /// An empty inventory of at most `max_records` destination records.
    pub fn new(max_records: usize) -> Self {
        Self {
            max_records,
            records: BTreeMap::new(),
            destination_records: 0,
        }
    }

    /// Records one observation.
    pub fn observe(&mut self, observation: Observation) -> Placement {
        self.merge(Record::from_observation(observation))
    }

    /// Adds a record (an observation, or one loaded from a file) to the
    /// record of its key, or makes it a new one; a new destination past
    /// the bound goes to its source's `other` record instead.
    pub fn merge(&mut self, record: Record) -> Placement {
        let key = (record.source.clone(), record.destination.clone());
        if let Some(existing) = self.records.get_mut(&key) {
            existing.merge(record);
            return Placement::Own;
        }
        if record.is_other() || self.destination_records < self.max_records {
            if !record.is_other() {
                self.destination_records += 1;
            }
            self.records.insert(key, record);
            return Placement::Own;
        }
        let other_key = (record.source.clone(), None);
        let folded = Record {
            destination: None,
            ..record
        };
        match self.records.get_mut(&other_key) {
            Some(other) => other.merge(folded),
            None => {
                self.records.insert(other_key, folded);
            }
        }
        Placement::Folded
    }

    /// Every record, by source workload then destination (`other` first).
    pub fn records(&self) -> impl Iterator<Item = &Record> {
        self.records.values()
    }

    /// How many records there are, `other` records included.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}
