//! Loading Istio resources from a directory of YAML files, and the mesh
//! config from its own file.
//!
//! Every `*.yaml` / `*.yml` file under the directory is read (recursively,
//! in path order, skipping names that start with `.`, such as the `..data`
//! directories of a mounted ConfigMap). Each file may hold several documents
//! separated by `---`; empty documents are skipped. Documents of API groups
//! other than `networking.istio.io` are skipped too, so Kubernetes objects
//! can live in the same directory. A Kubernetes `List` (what
//! `kubectl get ... -o yaml` prints for several objects) is read item by item.

mod document;
mod errors;
mod mesh;

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use super::ConfigSnapshot;
use super::error::{ConfigError, ConfigErrors};
use super::model::MeshConfig;
use super::validate::validate;
use document::add_file;
use errors::io_error;
pub use mesh::{load_mesh_file, parse_mesh};

/// The API group of the resources this control plane reads.
pub const ISTIO_GROUP: &str = "networking.istio.io";

/// The versions of [`ISTIO_GROUP`] accepted; they share one schema.
pub const ISTIO_VERSIONS: [&str; 3] = ["v1alpha3", "v1beta1", "v1"];

/// Loads every Istio resource under `dir` (or in `dir`, if it is a single
/// file), and the mesh config from `mesh_file` (Istio's defaults when
/// `None`). The snapshot's version is 0; the caller sets it. All problems
/// found are returned together.
pub fn load_dir(dir: &Path, mesh_file: Option<&Path>) -> Result<ConfigSnapshot, ConfigErrors> {
    let mut errors = Vec::new();
    let mesh = match mesh_file {
        Some(path) => load_mesh_file(path).unwrap_or_else(|mesh_errors| {
            errors.extend(mesh_errors);
            MeshConfig::default()
        }),
        None => MeshConfig::default(),
    };
    let mut snapshot = ConfigSnapshot {
        mesh,
        ..ConfigSnapshot::default()
    };
    let skip = mesh_file.and_then(|path| fs::canonicalize(path).ok());
    for file in yaml_files(dir, skip.as_deref(), &mut errors) {
        match fs::read_to_string(&file) {
            Ok(text) => add_file(&file, &text, &mut snapshot, &mut errors),
            Err(error) => errors.push(io_error(&file, &error)),
        }
    }
    if errors.is_empty() {
        Ok(snapshot)
    } else {
        Err(ConfigErrors(errors))
    }
}

/// Loads `dir` (and `mesh_file`) and validates the result: what the CLI's
/// `validate` and `dump` commands and the watcher accept. The version is 0.
pub fn load_validated(
    dir: &Path,
    mesh_file: Option<&Path>,
) -> Result<ConfigSnapshot, ConfigErrors> {
    let snapshot = load_dir(dir, mesh_file)?;
    let errors = validate(&snapshot);
    if errors.is_empty() {
        Ok(snapshot)
    } else {
        Err(ConfigErrors(errors))
    }
}

/// Loads the resources of one YAML text as if it were the only file, named
/// `file` in errors and origins. The mesh config is Istio's default.
pub fn load_str(file: &Path, text: &str) -> Result<ConfigSnapshot, ConfigErrors> {
    let mut snapshot = ConfigSnapshot::default();
    let mut errors = Vec::new();
    add_file(file, text, &mut snapshot, &mut errors);
    if errors.is_empty() {
        Ok(snapshot)
    } else {
        Err(ConfigErrors(errors))
    }
}

/// The YAML files under `dir`, sorted by path; `dir` itself if it is a file.
fn yaml_files(dir: &Path, skip: Option<&Path>, errors: &mut Vec<ConfigError>) -> Vec<PathBuf> {
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
                errors.push(io_error(&current, &error));
                continue;
            }
        };
        for entry in entries {
            let path = match entry {
                Ok(entry) => entry.path(),
                Err(error) => {
                    errors.push(io_error(&current, &error));
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
                Err(error) => errors.push(io_error(&path, &error)),
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
mod tests;
