//! The inventory on disk: `DIR/egress-inventory.json`, written atomically (a new 0600 temporary file renamed over it, the directory synced) and read back whole or refused.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::inventory::{Inventory, Record};

/// The file's name in the state directory.
pub const INVENTORY_FILE: &str = "egress-inventory.json";
/// The file's format version.
const FORMAT_VERSION: u32 = 1;

/// The file's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryFile {
    pub version: u32,
    pub records: Vec<Record>,
}

impl Default for InventoryFile {
    fn default() -> Self {
        Self {
            version: FORMAT_VERSION,
            records: Vec::new(),
        }
    }
}

impl InventoryFile {
    /// What `inventory` holds, to write.
    pub fn of(inventory: &Inventory) -> Self {
        Self {
            version: FORMAT_VERSION,
            records: inventory.records().cloned().collect(),
        }
    }
}

/// Why the inventory cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot read {path}: {error}")]
    Read { path: PathBuf, error: io::Error },
    #[error(
        "{path} is not an egress inventory ({error}); move it away to start with an empty inventory"
    )]
    Invalid {
        path: PathBuf,
        error: serde_json::Error,
    },
    #[error(
        "{path} has format version {found}, this control plane reads version {FORMAT_VERSION}; move it away to start with an empty inventory"
    )]
    Version { path: PathBuf, found: u32 },
    #[error("cannot write {path}: {error}")]
    Write { path: PathBuf, error: io::Error },
    #[error("the inventory writer stopped: {0}")]
    Writer(String),
}

/// The inventory file's path in `dir`.
pub fn path_in(dir: &Path) -> PathBuf {
    dir.join(INVENTORY_FILE)
}

/// Reads the inventory in `dir`: `None` when there is no file yet; an
/// error, leaving the file as it is, when it cannot be read whole.
pub fn load(dir: &Path) -> Result<Option<InventoryFile>, FileError> {
    let path = path_in(dir);
    let text = match fs::read(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(FileError::Read { path, error }),
    };
    let file: InventoryFile =
        serde_json::from_slice(&text).map_err(|error| FileError::Invalid {
            path: path.clone(),
            error,
        })?;
    if file.version != FORMAT_VERSION {
        return Err(FileError::Version {
            path,
            found: file.version,
        });
    }
    Ok(Some(file))
}

/// Writes `file` into `dir` atomically and durably: a reader sees the old
/// inventory or the new one, never a part. The temporary file is a new one
/// (`O_EXCL`, owner only, a random name), so nothing at its path is
/// followed or reused.
pub fn save(dir: &Path, file: &InventoryFile) -> Result<(), FileError> {
    let path = path_in(dir);
    let failed = |error| FileError::Write {
        path: path.clone(),
        error,
    };
    let json = serde_json::to_vec_pretty(file)
        .map_err(io::Error::from)
        .map_err(failed)?;
    let mut temporary = tempfile::Builder::new()
        .prefix(&format!(".{INVENTORY_FILE}."))
        .tempfile_in(dir)
        .map_err(failed)?;
    temporary.write_all(&json).map_err(failed)?;
    temporary.as_file().sync_all().map_err(failed)?;
    temporary
        .persist(&path)
        .map_err(|error| failed(error.error))?;
    File::open(dir)
        .and_then(|directory| directory.sync_all())
        .map_err(failed)
}
