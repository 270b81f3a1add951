//! The inventory the control plane serves from: shared by the access log streams, counted on the metrics port, and kept written to the state directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

use super::file::{self, FileError, InventoryFile};
use super::inventory::{Inventory, Limits, OTHER, Placement};
use super::observation::Observation;
use crate::metrics::Metrics;

/// How often a changed inventory is written, at most.
pub const WRITE_INTERVAL: Duration = Duration::from_secs(1);

/// The control plane's egress inventory.
pub struct LiveInventory {
    inventory: Mutex<Inventory>,
    metrics: Arc<Metrics>,
    /// Increases with every change.
    changes: AtomicU64,
    /// The change last written.
    written: AtomicU64,
}

impl LiveInventory {
    /// An inventory within `limits`, starting from what `dir` holds
    /// (nothing without a state directory).
    pub fn open(
        limits: Limits,
        dir: Option<&Path>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, FileError> {
        let mut inventory = Inventory::new(limits);
        if let Some(loaded) = dir.map(file::load).transpose()?.flatten() {
            for record in loaded.records {
                inventory.merge(record);
            }
        }
        metrics.egress_records.set(gauge(inventory.len()));
        Ok(Self {
            inventory: Mutex::new(inventory),
            metrics,
            changes: AtomicU64::new(0),
            written: AtomicU64::new(0),
        })
    }

    /// Records one observation and counts it.
    pub fn observe(&self, observation: Observation) {
        let mut labels = labels(&observation);
        let (placement, records) = {
            let mut inventory = self.inventory.lock();
            let placement = inventory.observe(observation);
            (placement, inventory.len())
        };
        self.changes.fetch_add(1, Ordering::Release);
        self.metrics.egress_records.set(gauge(records));
        if placement != Placement::Own {
            self.metrics.egress_folded.inc();
            fold(&mut labels, placement);
        }
        self.metrics.egress_connections.get_or_create(&labels).inc();
    }

    /// What the inventory holds now, as its file would.
    pub fn contents(&self) -> InventoryFile {
        InventoryFile::of(&self.inventory.lock())
    }

    /// Writes the inventory into `dir` if it changed since the last write.
    pub fn write_if_changed(&self, dir: &Path) -> Result<(), FileError> {
        let changes = self.changes.load(Ordering::Acquire);
        if changes == self.written.load(Ordering::Acquire) {
            return Ok(());
        }
        file::save(dir, &self.contents())?;
        self.written.store(changes, Ordering::Release);
        Ok(())
    }

    /// Keeps `dir` holding the inventory, written at most every
    /// [`WRITE_INTERVAL`], until the task is dropped. A failure is logged
    /// once, until a write succeeds again.
    pub async fn keep_written(self: Arc<Self>, dir: PathBuf) {
        let mut interval = tokio::time::interval(WRITE_INTERVAL);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            interval.tick().await;
            let inventory = self.clone();
            let target = dir.clone();
            let written = tokio::task::spawn_blocking(move || inventory.write_if_changed(&target))
                .await
                .unwrap_or_else(|error| Err(FileError::Writer(error.to_string())));
            match written {
                Ok(()) if failing => {
                    failing = false;
                    tracing::info!(dir = %dir.display(), "egress inventory saved again");
                }
                Ok(()) => {}
                Err(error) if !failing => {
                    failing = true;
                    tracing::warn!("egress inventory not saved (retried every second): {error}");
                }
                Err(_) => {}
            }
        }
    }
}

/// The labels of `egress_destination_connections_total` for an
/// observation counted in its own record.
fn labels(observation: &Observation) -> Vec<(&'static str, String)> {
    let source = &observation.source;
    let destination = &observation.destination;
    vec![
        ("source_namespace", source.namespace.clone()),
        ("source_workload", source.name().to_string()),
        ("destination", destination.host.clone()),
        ("port", destination.port.to_string()),
        ("protocol", destination.protocol.to_string()),
        ("handled_by", observation.handled_by.clone()),
        ("decision", observation.decision.to_string()),
    ]
}

/// `labels` for an observation folded as `placement` says: destination
/// `other` without port or protocol, and workload `other` in its
/// namespace's record.
fn fold(labels: &mut [(&'static str, String)], placement: Placement) {
    for (name, value) in labels {
        match *name {
            "destination" => *value = OTHER.to_string(),
            "port" | "protocol" => value.clear(),
            "source_workload" if placement == Placement::FoldedIntoNamespace => {
                *value = OTHER.to_string();
            }
            _ => {}
        }
    }
}

fn gauge(count: usize) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}
