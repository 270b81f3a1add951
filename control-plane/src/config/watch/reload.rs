//! One reload of the directory: what was read, completed with what the
//! files that cannot be taken as they read now held before, and validated.
//!
//! A file keeps what it held at the last load (its resources as they were,
//! validated again) when it cannot be read or parsed, when it has not
//! stopped changing, when it holds no document (0 bytes, blank lines or
//! comments: what a shell's `> file` leaves until the writer starts), and
//! when its last document is cut short or invalid (a writer paused mid-way:
//! `kubectl get ... -o yaml` ends a List with `kind: List`, so a cut List
//! has no kind). The file's errors are reported as usual, with a warning
//! that it keeps its last good content. Deleting a file removes its config.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::config::ConfigSnapshot;
use crate::config::error::{ConfigError, Location, Problem};
use crate::config::load::{Loaded, NotHandled, NotUsed, keep_unreadable};
use crate::config::validate::check;

/// One load of the directory: what was read, what is served, what was found.
pub(super) struct Reload {
    /// Every resource read, before validation (with what kept files held).
    pub read: ConfigSnapshot,
    pub served: ConfigSnapshot,
    pub errors: Vec<ConfigError>,
    pub warnings: Vec<ConfigError>,
    pub not_handled: Vec<NotHandled>,
    pub not_used: Vec<NotUsed>,
}

/// Completes what was read with what `last` held for the files that
/// cannot be taken as they read now (`changing`: files that have not
/// stopped changing), and validates each resource.
pub(super) fn reload(mut loaded: Loaded, last: &ConfigSnapshot, changing: &[PathBuf]) -> Reload {
    let held = files_of(last);
    let mut warnings = Vec::new();
    for file in changing {
        if held.contains(file) {
            warnings.push(kept(file, Problem::ChangingFileKept));
        }
        loaded.unreadable.push(file.clone());
    }
    let mut empty: Vec<&PathBuf> = loaded
        .last_documents
        .iter()
        .filter(|(file, last)| last.is_none() && held.contains(*file))
        .map(|(file, _)| file)
        .collect();
    empty.sort();
    for file in empty {
        warnings.push(kept(file, Problem::EmptyFileKept));
        loaded.unreadable.push(file.clone());
    }
    keep_unreadable(&mut loaded, last);
    let mut checked = check(loaded.snapshot.clone());
    let cut = cut_files(&loaded, &checked.errors, &held);
    // The errors that make a file keep its last content are reported as
    // usual; validating again leaves them out with the file's new resources.
    let mut cut_errors = Vec::new();
    if !cut.is_empty() {
        for file in &cut {
            warnings.push(kept(file, Problem::IncompleteFileKept));
            loaded.unreadable.push(file.clone());
        }
        cut_errors = checked
            .errors
            .into_iter()
            .filter(|error| {
                error
                    .location
                    .file
                    .as_ref()
                    .is_some_and(|f| cut.contains(f))
            })
            .collect();
        keep_unreadable(&mut loaded, last);
        checked = check(loaded.snapshot.clone());
    }
    let read = loaded.snapshot;
    let mut errors = loaded.errors;
    errors.extend(cut_errors);
    errors.extend(checked.errors);
    warnings.extend(checked.warnings);
    Reload {
        read,
        served: checked.snapshot,
        errors,
        warnings,
        not_handled: loaded.not_handled,
        not_used: loaded.not_used,
    }
}

/// The files that held resources at the last load.
fn files_of(snapshot: &ConfigSnapshot) -> HashSet<PathBuf> {
    let mut files = HashSet::new();
    let mut add = |file: &Path| {
        if !files.contains(file) {
            files.insert(file.to_path_buf());
        }
    };
    snapshot
        .service_entries
        .iter()
        .for_each(|r| add(&r.origin.file));
    snapshot
        .virtual_services
        .iter()
        .for_each(|r| add(&r.origin.file));
    snapshot
        .destination_rules
        .iter()
        .for_each(|r| add(&r.origin.file));
    snapshot.gateways.iter().for_each(|r| add(&r.origin.file));
    snapshot.sidecars.iter().for_each(|r| add(&r.origin.file));
    snapshot
        .workload_entries
        .iter()
        .for_each(|r| add(&r.origin.file));
    snapshot
        .workload_groups
        .iter()
        .for_each(|r| add(&r.origin.file));
    snapshot.secrets.iter().for_each(|r| add(&r.origin.file));
    snapshot.services.iter().for_each(|r| add(&r.origin.file));
    snapshot.endpoints.iter().for_each(|r| add(&r.origin.file));
    snapshot
        .endpoint_slices
        .iter()
        .for_each(|r| add(&r.origin.file));
    let api = &snapshot.gateway_api;
    api.gateways.iter().for_each(|r| add(&r.origin.file));
    api.http_routes.iter().for_each(|r| add(&r.origin.file));
    api.tls_routes.iter().for_each(|r| add(&r.origin.file));
    api.tcp_routes.iter().for_each(|r| add(&r.origin.file));
    api.reference_grants
        .iter()
        .for_each(|r| add(&r.origin.file));
    files
}

/// The files that held resources before and whose last document now has
/// an error (it does not decode, is not an object, or is invalid).
fn cut_files(loaded: &Loaded, checked: &[ConfigError], held: &HashSet<PathBuf>) -> Vec<PathBuf> {
    let mut cut: Vec<PathBuf> = loaded
        .last_documents
        .iter()
        .filter(|(file, _)| held.contains(*file) && !loaded.unreadable.contains(file))
        .filter_map(|(file, last)| Some((file, (*last)?)))
        .filter(|(file, last)| {
            loaded.errors.iter().chain(checked).any(|error| {
                error.location.file.as_deref() == Some(file.as_path())
                    && error.location.document == Some(*last)
            })
        })
        .map(|(file, _)| file.clone())
        .collect();
    cut.sort();
    cut
}

fn kept(file: &Path, problem: Problem) -> ConfigError {
    ConfigError::new(Location::file(file), problem)
}

#[cfg(test)]
mod tests;
