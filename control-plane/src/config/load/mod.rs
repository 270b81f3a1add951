//! Loading Istio resources from a directory of YAML files, and the mesh
//! config from its own file.
//!
//! Every `*.yaml` / `*.yml` file under the directory is read (recursively,
//! in path order, skipping names that start with `.`, such as the `..data`
//! directories of a mounted ConfigMap). Each file may hold several documents
//! separated by `---`; empty documents are skipped. Documents of kinds this
//! control plane does not handle (Kubernetes Services, the Gateway API,
//! security policies, ...) are read past and named ([`NotHandled`]), so
//! Kubernetes objects can live in the same directory. A Kubernetes `List`
//! (what `kubectl get ... -o yaml` prints for several objects) is read item
//! by item. A text nested deeper than [`depth::MAX_DEPTH`] is refused
//! before it is parsed, in time linear in its length.

mod carry;
mod depth;
mod document;
mod errors;
mod mesh;
mod not_handled;
mod not_used;
mod secret_error;

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use super::ConfigSnapshot;
use super::error::{ConfigError, ConfigErrors};
use super::validate::{Checked, check};
pub use carry::keep_unreadable;
use document::add_file;
use errors::io_error;
pub use mesh::{load_mesh_file, parse_mesh};
pub use not_handled::NotHandled;
pub use not_used::NotUsed;

/// The API group of the resources this control plane reads.
pub const ISTIO_GROUP: &str = "networking.istio.io";

/// The versions of [`ISTIO_GROUP`] accepted; they share one schema.
pub const ISTIO_VERSIONS: [&str; 3] = ["v1alpha3", "v1beta1", "v1"];

/// A directory as read, before validation: every resource decoded, and what
/// could not be read.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// The resources decoded, and the mesh config (Istio's defaults when
    /// the mesh file failed). Version 0.
    pub snapshot: ConfigSnapshot,
    /// Files that could not be read or parsed, and documents that do not
    /// decode.
    pub errors: Vec<ConfigError>,
    /// Files and directories that could not be read or parsed as YAML:
    /// nothing of theirs is in the snapshot.
    pub unreadable: Vec<PathBuf>,
    /// Whether the mesh file could not be loaded.
    pub mesh_failed: bool,
    /// The documents of kinds this control plane does not handle.
    pub not_handled: Vec<NotHandled>,
    /// The fields of the Kubernetes objects read that are not used.
    pub not_used: Vec<NotUsed>,
    /// Each file parsed, with the index of its last document that is not
    /// empty; `None` for a file that holds no document (0 bytes, blank
    /// lines, comments), such as a file being rewritten that is still empty.
    pub last_documents: HashMap<PathBuf, Option<usize>>,
}

/// Reads every Istio resource under `dir` (or in `dir`, if it is a single
/// file), and the mesh config from `mesh_file` (Istio's defaults when
/// `None`), going on past every problem.
pub fn read_dir(dir: &Path, mesh_file: Option<&Path>) -> Loaded {
    let mut loaded = Loaded::default();
    if let Some(path) = mesh_file {
        match load_mesh_file(path) {
            Ok(mesh) => loaded.snapshot.mesh = mesh,
            Err(mesh_errors) => {
                loaded.errors.extend(mesh_errors);
                loaded.mesh_failed = true;
            }
        }
    }
    let skip = mesh_file.and_then(|path| fs::canonicalize(path).ok());
    for file in yaml_files(dir, skip.as_deref(), &mut loaded) {
        let parsed = match fs::read_to_string(&file) {
            Ok(text) => add_file(&file, &text, &mut loaded),
            Err(error) => {
                loaded.errors.push(io_error(&file, &error));
                false
            }
        };
        if !parsed {
            loaded.unreadable.push(file);
        }
    }
    loaded
}

/// Loads every Istio resource under `dir` and the mesh config, as
/// [`read_dir`] does, failing with every problem found if there is one.
/// The snapshot's version is 0; the caller sets it.
pub fn load_dir(dir: &Path, mesh_file: Option<&Path>) -> Result<ConfigSnapshot, ConfigErrors> {
    let loaded = read_dir(dir, mesh_file);
    if loaded.errors.is_empty() {
        Ok(loaded.snapshot)
    } else {
        Err(ConfigErrors(loaded.errors))
    }
}

/// Loads `dir` (and `mesh_file`) and validates each resource: the
/// resources served, the errors (files that cannot be read, resources left
/// out) and the warnings. What `validate`, `dump` and the watcher's first
/// load see.
pub fn load_checked(dir: &Path, mesh_file: Option<&Path>) -> Checked {
    let loaded = read_dir(dir, mesh_file);
    let mut checked = check(loaded.snapshot);
    let mut errors = loaded.errors;
    errors.append(&mut checked.errors);
    checked.errors = errors;
    checked.not_handled = loaded.not_handled;
    checked.not_used = loaded.not_used;
    checked
}

/// Loads `dir` (and `mesh_file`), failing unless every file reads and every
/// resource is valid (warnings allowed). The version is 0.
pub fn load_validated(
    dir: &Path,
    mesh_file: Option<&Path>,
) -> Result<ConfigSnapshot, ConfigErrors> {
    let checked = load_checked(dir, mesh_file);
    if checked.errors.is_empty() {
        Ok(checked.snapshot)
    } else {
        Err(ConfigErrors(checked.errors))
    }
}

/// Loads the resources of one YAML text as if it were the only file, named
/// `file` in errors and origins. The mesh config is Istio's default.
pub fn load_str(file: &Path, text: &str) -> Result<ConfigSnapshot, ConfigErrors> {
    let mut loaded = Loaded::default();
    add_file(file, text, &mut loaded);
    if loaded.errors.is_empty() {
        Ok(loaded.snapshot)
    } else {
        Err(ConfigErrors(loaded.errors))
    }
}

/// The YAML files under `dir`, sorted by path; `dir` itself if it is a file.
fn yaml_files(dir: &Path, skip: Option<&Path>, loaded: &mut Loaded) -> Vec<PathBuf> {
    if fs::metadata(dir).is_ok_and(|meta| meta.is_file()) {
        return vec![dir.to_path_buf()];
    }
    let mut files = Vec::new();
    let mut visited = HashSet::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        // Following a symlink back to a directory already read would loop.
        if let Ok(real) = fs::canonicalize(&current)
            && !visited.insert(real)
        {
            continue;
        }
        let entries = match fs::read_dir(&current) {
            Ok(entries) => entries,
            Err(error) => {
                loaded.errors.push(io_error(&current, &error));
                loaded.unreadable.push(current);
                continue;
            }
        };
        for entry in entries {
            let path = match entry {
                Ok(entry) => entry.path(),
                Err(error) => {
                    loaded.errors.push(io_error(&current, &error));
                    loaded.unreadable.push(current.clone());
                    continue;
                }
            };
            let hidden = path
                .file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with('.'));
            if hidden {
                continue;
            }
            // `metadata` follows symlinks, as mounted ConfigMaps need.
            match fs::metadata(&path) {
                Ok(meta) if meta.is_dir() => pending.push(path),
                Ok(meta) if meta.is_file() && is_yaml(&path) => {
                    let is_mesh_file = skip
                        .is_some_and(|skip| fs::canonicalize(&path).is_ok_and(|real| real == skip));
                    if !is_mesh_file {
                        files.push(path);
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    loaded.errors.push(io_error(&path, &error));
                    loaded.unreadable.push(path);
                }
            }
        }
    }
    files.sort();
    files
}

fn is_yaml(path: &Path) -> bool {
    path.extension()
        .and_then(|ext| ext.to_str())
        .is_some_and(|ext| ext.eq_ignore_ascii_case("yaml") || ext.eq_ignore_ascii_case("yml"))
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
