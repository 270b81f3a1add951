//! The egress inventory: what each source workload reached outside, which resource handled it and what the outbound policy decided, bounded, persisted in the state directory, listed as a table and turned into suggested ServiceEntries.

mod file;
mod handling;
mod inventory;
mod live;
mod observation;
pub mod suggest;
pub mod table;

#[cfg(test)]
mod tests;

pub use file::{FileError, INVENTORY_FILE, InventoryFile, load, path_in, save};
pub use handling::{UNKNOWN, decide, handled_by, is_unregistered};
pub use inventory::{
    DEFAULT_MAX_RECORDS, DEFAULT_MAX_RECORDS_PER_NAMESPACE, Inventory, Limits, MAX_OTHER_RECORDS,
    OTHER, Placement, Record,
};
pub use live::{LiveInventory, WRITE_INTERVAL};
pub use observation::{
    Decision, Destination, Observation, Protocol, ResponseCodes, SourceWorkload,
};
