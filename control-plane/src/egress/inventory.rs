//! The inventory itself: one record per source workload and destination, bounded overall and per source namespace; past a bound a source's new destinations fold into its one `other` record, and past the bound on those into its namespace's.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::observation::{Decision, Destination, Observation, ResponseCodes, SourceWorkload};

/// The default bound on destination records (`--egress-inventory-max`).
pub const DEFAULT_MAX_RECORDS: usize = 10_000;
/// The default bound on one source namespace's destination records
/// (`--egress-inventory-max-per-namespace`).
pub const DEFAULT_MAX_RECORDS_PER_NAMESPACE: usize = 1000;
/// The bound on workloads' `other` records; past it a workload's folded
/// traffic goes to its namespace's `other` record (workload `other`).
pub const MAX_OTHER_RECORDS: usize = 1000;

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
    /// The ServiceEntry or Service `namespace/name`, `PassthroughCluster`,
    /// `BlackHoleCluster` or `unknown` that handled it last.
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
            source: Arc::unwrap_or_clone(observation.source),
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
    /// Into its source's `other` record: a bound was reached.
    Folded,
    /// Into its namespace's `other` record (workload `other`): workloads'
    /// `other` records were at their bound too.
    FoldedIntoNamespace,
}

/// The bounds on the records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Destination records in all.
    pub records: usize,
    /// Destination records of one source namespace.
    pub per_namespace: usize,
    /// `other` records of single workloads.
    pub other_records: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            records: DEFAULT_MAX_RECORDS,
            per_namespace: DEFAULT_MAX_RECORDS_PER_NAMESPACE,
            other_records: MAX_OTHER_RECORDS,
        }
    }
}

/// A source's records, by destination (`None`: its `other` record).
type Destinations = BTreeMap<Option<Destination>, Record>;

/// The records, by source workload then destination.
#[derive(Debug, Clone)]
pub struct Inventory {
    limits: Limits,
    records: BTreeMap<SourceWorkload, Destinations>,
    /// Records of a destination (not `other`).
    destination_records: usize,
    /// Records of a destination, by source namespace.
    namespace_records: HashMap<String, usize>,
    /// `other` records of single workloads (not of a namespace).
    other_records: usize,
    /// Every record.
    len: usize,
}

impl Inventory {
    /// An empty inventory within `limits`.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            records: BTreeMap::new(),
            destination_records: 0,
            namespace_records: HashMap::new(),
            other_records: 0,
            len: 0,
        }
    }

    /// Records one observation: into its record when there is one, with
    /// no copy of its source.
    pub fn observe(&mut self, observation: Observation) -> Placement {
        let destination = Some(observation.destination.clone());
        if let Some(existing) = self.record_mut(&observation.source, &destination) {
            existing.merge(Record::from_observation(observation));
            return Placement::Own;
        }
        self.merge(Record::from_observation(observation))
    }

    /// Adds a record (an observation, or one loaded from a file) to the
    /// record of its key, or makes it a new one; a new destination past a
    /// bound goes to an `other` record instead.
    pub fn merge(&mut self, record: Record) -> Placement {
        if let Some(existing) = self.record_mut(&record.source, &record.destination) {
            existing.merge(record);
            return Placement::Own;
        }
        if record.destination.is_some() && self.has_room(&record.source.namespace) {
            self.destination_records += 1;
            *self
                .namespace_records
                .entry(record.source.namespace.clone())
                .or_default() += 1;
            self.insert(record);
            return Placement::Own;
        }
        self.fold(Record {
            destination: None,
            ..record
        })
    }

    /// Every record, by source workload then destination (`other` first).
    pub fn records(&self) -> impl Iterator<Item = &Record> {
        self.records.values().flat_map(BTreeMap::values)
    }

    /// How many records there are, `other` records included.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn has_room(&self, namespace: &str) -> bool {
        self.destination_records < self.limits.records
            && self.namespace_records.get(namespace).copied().unwrap_or(0)
                < self.limits.per_namespace
    }

    /// Adds `other` to its source's `other` record, or to its namespace's
    /// when workloads' `other` records are at their bound.
    fn fold(&mut self, other: Record) -> Placement {
        if let Some(existing) = self.record_mut(&other.source, &None) {
            existing.merge(other);
            return Placement::Folded;
        }
        if self.other_records < self.limits.other_records {
            self.other_records += 1;
            self.insert(other);
            return Placement::Folded;
        }
        let namespace = SourceWorkload::namespace_other(&other.source.namespace);
        match self.record_mut(&namespace, &None) {
            Some(existing) => existing.merge(other),
            None => self.insert(Record {
                source: namespace,
                ..other
            }),
        }
        Placement::FoldedIntoNamespace
    }

    fn record_mut(
        &mut self,
        source: &SourceWorkload,
        destination: &Option<Destination>,
    ) -> Option<&mut Record> {
        self.records.get_mut(source)?.get_mut(destination)
    }

    fn insert(&mut self, record: Record) {
        self.len += 1;
        self.records
            .entry(record.source.clone())
            .or_default()
            .insert(record.destination.clone(), record);
    }
}
