//! Hot reload: watch the config directory and the mesh file, and publish a
//! new snapshot when what they say changes.
//!
//! Changes are debounced ([`DEBOUNCE`] of quiet, so an editor's or
//! `kubectl cp`'s several writes make one reload), then each changed file
//! must stop changing (its size and modification time kept for
//! [`settle::SETTLE`]) before the whole directory is loaded and each
//! resource validated again, as istiod validates each resource alone: a
//! resource with an error is left out, everything else is served. A file
//! that cannot be read or parsed, is still changing, holds no document, or
//! ends in a cut or invalid document keeps what it held at the last load
//! ([`reload`]); an invalid mesh file keeps the last mesh config. Deleting
//! a file removes its config; emptying it does not. Each new error or
//! warning is logged once, each new error counted by kind; the current
//! ones are kept for [`ConfigWatcher::last_errors`] and
//! [`ConfigWatcher::last_warnings`].

mod reload;
mod settle;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use super::error::{ConfigError, ConfigErrors, WatchError};
use super::load::{NotHandled, NotUsed, read_dir};
use super::{ConfigSnapshot, SharedSnapshot};
use reload::{Reload, reload};
use settle::settle;

/// How long the files must stay unchanged before a reload.
pub const DEBOUNCE: Duration = Duration::from_millis(50);

/// The longest a reload waits for quiet while files keep changing.
pub const MAX_DEBOUNCE: Duration = Duration::from_secs(1);

/// Config errors counted by the kind of resource they leave out (`kind`
/// label; `File` for a file that cannot be read or parsed).
pub type ErrorCounter = Family<Vec<(&'static str, String)>, Counter>;

/// Watches a config directory and publishes each accepted change. Stops
/// watching when dropped.
pub struct ConfigWatcher {
    state: Arc<State>,
    task: JoinHandle<()>,
    _watcher: RecommendedWatcher,
}

struct State {
    dir: PathBuf,
    mesh_file: Option<PathBuf>,
    publish: watch::Sender<SharedSnapshot>,
    errors_total: ErrorCounter,
    last: Mutex<LastLoad>,
    changed: Notify,
    /// The paths changed since the last load began.
    touched: Mutex<HashSet<PathBuf>>,
}

/// What the last load read and found.
#[derive(Default)]
struct LastLoad {
    /// Every resource read, before validation: what an unreadable file
    /// keeps at the next load.
    read: ConfigSnapshot,
    errors: Vec<ConfigError>,
    warnings: Vec<ConfigError>,
    not_handled: Vec<NotHandled>,
    not_used: Vec<NotUsed>,
}

impl ConfigWatcher {
    /// Loads `dir` and `mesh_file`, then watches them (the directory
    /// recursively). The receiver holds the first snapshot, version 1, and
    /// each change after it with the next version. `errors_total` counts
    /// each config error when it is first found, by kind. Fails if the
    /// directory or the mesh file cannot be loaded at all. Must be called
    /// within a Tokio runtime.
    pub fn start(
        dir: PathBuf,
        mesh_file: Option<PathBuf>,
        errors_total: ErrorCounter,
    ) -> Result<(Self, watch::Receiver<SharedSnapshot>), WatchError> {
        let absolute = |path: PathBuf| std::path::absolute(&path).unwrap_or(path);
        let dir = absolute(dir);
        let mesh_file = mesh_file.map(absolute);
        let loaded = read_dir(&dir, mesh_file.as_deref());
        if loaded.mesh_failed || loaded.unreadable.contains(&dir) {
            count(&errors_total, &loaded.errors);
            return Err(WatchError::Config(ConfigErrors(loaded.errors)));
        }
        let first = reload(loaded, &ConfigSnapshot::default(), &[]);
        let mut served = first.served.clone();
        served.version = 1;
        let (publish, receiver) = watch::channel(Arc::new(served));
        let state = Arc::new(State {
            dir,
            mesh_file,
            publish,
            errors_total,
            last: Mutex::new(LastLoad::default()),
            changed: Notify::new(),
            touched: Mutex::new(HashSet::new()),
        });
        state.record(first);
        let handler_state = Arc::clone(&state);
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
                Ok(event) if handler_state.is_relevant(&event) => {
                    handler_state.touch(event.paths);
                    handler_state.changed.notify_one()
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "config watch error; reloading to be safe");
                    handler_state.changed.notify_one();
                }
            })
            .map_err(|error| WatchError::Notify {
                path: state.dir.clone(),
                error,
            })?;
        let watch = |watcher: &mut RecommendedWatcher, path: &Path, mode| {
            watcher
                .watch(path, mode)
                .map_err(|error| WatchError::Notify {
                    path: path.to_path_buf(),
                    error,
                })
        };
        watch(&mut watcher, &state.dir, RecursiveMode::Recursive)?;
        // The mesh file's directory, not the file: editors and ConfigMap
        // mounts replace the file, which would end a watch on the file
        // itself. Not again if the directory watch covers it already.
        if let Some(parent) = state.mesh_file.as_deref().and_then(Path::parent)
            && !parent.starts_with(&state.dir)
        {
            watch(&mut watcher, parent, RecursiveMode::NonRecursive)?;
        }
        // A change made between the first load and the watch is not missed.
        state.changed.notify_one();
        let task = tokio::spawn(run(Arc::clone(&state)));
        tracing::info!(dir = %state.dir.display(), mesh_file = ?state.mesh_file, "watching config");
        let watcher = Self {
            state,
            task,
            _watcher: watcher,
        };
        Ok((watcher, receiver))
    }

    /// The errors of the last load: resources left out, files that could
    /// not be read. Empty when everything was served.
    pub fn last_errors(&self) -> Vec<ConfigError> {
        self.state.last().errors.clone()
    }

    /// The warnings of the last load (about resources served anyway).
    pub fn last_warnings(&self) -> Vec<ConfigError> {
        self.state.last().warnings.clone()
    }
}

impl Drop for ConfigWatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Counts `errors` by the kind of resource each is about.
fn count(errors_total: &ErrorCounter, errors: &[ConfigError]) {
    for error in errors {
        let kind = error
            .location
            .resource
            .as_ref()
            .map_or_else(|| "File".to_string(), |resource| resource.kind.clone());
        errors_total.get_or_create(&vec![("kind", kind)]).inc();
    }
}

impl State {
    fn last(&self) -> std::sync::MutexGuard<'_, LastLoad> {
        self.last.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Notes paths an event changed, for the next load to wait on.
    fn touch(&self, paths: Vec<PathBuf>) {
        self.touched
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(paths);
    }

    fn take_touched(&self) -> HashSet<PathBuf> {
        std::mem::take(&mut *self.touched.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Whether an event may change the config: anything under the directory
    /// or on the mesh file (or, for a mounted ConfigMap, the `..data` links
    /// beside it) other than a read.
    fn is_relevant(&self, event: &notify::Event) -> bool {
        if let EventKind::Access(access) = event.kind
            && access != AccessKind::Close(AccessMode::Write)
        {
            return false;
        }
        event.paths.iter().any(|path| {
            if path.starts_with(&self.dir) {
                return true;
            }
            let Some(mesh_file) = &self.mesh_file else {
                return false;
            };
            let mounted = path.parent() == mesh_file.parent()
                && path
                    .file_name()
                    .and_then(|name| name.to_str())
                    .is_some_and(|name| name.starts_with(".."));
            path == mesh_file || mounted
        })
    }

    /// Logs and counts what this load found that the last did not, and
    /// keeps it as the last load.
    fn record(&self, reload: Reload) {
        let mut last = self.last();
        let new_errors: Vec<ConfigError> = reload
            .errors
            .iter()
            .filter(|error| !last.errors.contains(error))
            .cloned()
            .collect();
        for error in &new_errors {
            tracing::warn!("config error, left out of the served config: {error}");
        }
        count(&self.errors_total, &new_errors);
        for warning in &reload.warnings {
            if !last.warnings.contains(warning) {
                tracing::warn!("config warning: {warning}");
            }
        }
        for document in &reload.not_handled {
            if !last.not_handled.contains(document) {
                tracing::warn!("{document}");
            }
        }
        for object in &reload.not_used {
            if !last.not_used.contains(object) {
                tracing::info!("{object}");
            }
        }
        if !reload.errors.is_empty() {
            tracing::warn!(
                errors = reload.errors.len(),
                "config has errors; serving every resource without one"
            );
        }
        *last = LastLoad {
            read: reload.read,
            errors: reload.errors,
            warnings: reload.warnings,
            not_handled: reload.not_handled,
            not_used: reload.not_used,
        };
    }

    /// Publishes `snapshot` unless it says what the current one says.
    fn publish(&self, mut snapshot: ConfigSnapshot) {
        let mut published = None;
        self.publish.send_if_modified(|current| {
            snapshot.version = current.version;
            if snapshot == **current {
                return false;
            }
            snapshot.version = current.version + 1;
            published = Some(snapshot.version);
            *current = Arc::new(snapshot);
            true
        });
        match published {
            Some(version) => tracing::info!(version, "config changed; published a new snapshot"),
            None => tracing::debug!("config reloaded; nothing changed"),
        }
    }
}

async fn run(state: Arc<State>) {
    loop {
        state.changed.notified().await;
        let started = Instant::now();
        while started.elapsed() < MAX_DEBOUNCE
            && tokio::time::timeout(DEBOUNCE, state.changed.notified())
                .await
                .is_ok()
        {}
        let changing = settle(state.take_touched(), || state.take_touched()).await;
        if !changing.is_empty() {
            // Read again once they stop.
            state.touch(changing.clone());
            state.changed.notify_one();
        }
        let dir = state.dir.clone();
        let mesh_file = state.mesh_file.clone();
        let last = state.last().read.clone();
        match tokio::task::spawn_blocking(move || {
            reload(read_dir(&dir, mesh_file.as_deref()), &last, &changing)
        })
        .await
        {
            Ok(reload) => {
                let served = reload.served.clone();
                state.record(reload);
                state.publish(served);
            }
            Err(error) => tracing::error!(%error, "config reload failed"),
        }
    }
}

#[cfg(test)]
mod tests;
