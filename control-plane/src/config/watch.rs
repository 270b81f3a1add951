//! Hot reload: watch the config directory and the mesh file, and publish a
//! new snapshot when what they say changes.
//!
//! Changes are debounced ([`DEBOUNCE`] of quiet, so an editor's or
//! `kubectl cp`'s several writes make one reload), then the whole directory
//! is loaded and validated again. A valid config that differs from the one
//! being served is published with the next version; an invalid one is
//! rejected as a whole: the last good snapshot stays, each error is logged,
//! counted and kept for [`ConfigWatcher::last_errors`].

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use prometheus_client::metrics::counter::Counter;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use super::error::{ConfigError, ConfigErrors, WatchError};
use super::load::load_validated;
use super::{ConfigSnapshot, SharedSnapshot};

/// How long the files must stay unchanged before a reload.
pub const DEBOUNCE: Duration = Duration::from_millis(50);

/// The longest a reload waits for quiet while files keep changing.
pub const MAX_DEBOUNCE: Duration = Duration::from_secs(1);

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
    errors_total: Counter,
    last_errors: Mutex<Vec<ConfigError>>,
    changed: Notify,
}

impl ConfigWatcher {
    /// Loads and validates `dir` and `mesh_file`, then watches them
    /// (the directory recursively). The receiver holds the first snapshot,
    /// version 1, and each accepted change after it with the next version.
    /// `errors_total` counts the reloads rejected because the config was
    /// invalid. Fails if the first load does. Must be called within a Tokio
    /// runtime.
    pub fn start(
        dir: PathBuf,
        mesh_file: Option<PathBuf>,
        errors_total: Counter,
    ) -> Result<(Self, watch::Receiver<SharedSnapshot>), WatchError> {
        let absolute = |path: PathBuf| std::path::absolute(&path).unwrap_or(path);
        let dir = absolute(dir);
        let mesh_file = mesh_file.map(absolute);
        let mut first = load_validated(&dir, mesh_file.as_deref()).inspect_err(|_| {
            errors_total.inc();
        })?;
        first.version = 1;
        let (publish, receiver) = watch::channel(Arc::new(first));
        let state = Arc::new(State {
            dir,
            mesh_file,
            publish,
            errors_total,
            last_errors: Mutex::new(Vec::new()),
            changed: Notify::new(),
        });
        let handler_state = Arc::clone(&state);
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
                Ok(event) if handler_state.is_relevant(&event) => {
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

    /// The errors that made the last reload fail; empty once a reload succeeds.
    pub fn last_errors(&self) -> Vec<ConfigError> {
        self.state
            .last_errors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for ConfigWatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl State {
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

    fn reject(&self, errors: ConfigErrors) {
        tracing::warn!(
            errors = errors.len(),
            "config rejected; still serving the last good snapshot"
        );
        for error in &errors {
            tracing::warn!("{error}");
        }
        self.errors_total.inc();
        *self
            .last_errors
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = errors.0;
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
        let dir = state.dir.clone();
        let mesh_file = state.mesh_file.clone();
        match tokio::task::spawn_blocking(move || load_validated(&dir, mesh_file.as_deref())).await
        {
            Ok(Ok(snapshot)) => {
                state
                    .last_errors
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clear();
                state.publish(snapshot);
            }
            Ok(Err(errors)) => state.reject(errors),
            Err(error) => tracing::error!(%error, "config reload failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::config::model::OutboundMode;

    const ENTRY: &str = "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata:\n  name: httpbin\nspec:\n  hosts: [httpbin.org]\n  ports: [{number: 80, name: http, protocol: HTTP}]\n  resolution: DNS\n";

    /// Waits for the next published snapshot.
    async fn next(receiver: &mut watch::Receiver<SharedSnapshot>) -> SharedSnapshot {
        tokio::time::timeout(Duration::from_secs(10), receiver.changed())
            .await
            .expect("a snapshot within 10s")
            .expect("sender alive");
        Arc::clone(&receiver.borrow_and_update())
    }

    /// Asserts nothing is published for a while (longer than a debounce and reload).
    async fn nothing(receiver: &mut watch::Receiver<SharedSnapshot>) {
        let waited = tokio::time::timeout(Duration::from_millis(500), receiver.changed()).await;
        assert!(
            waited.is_err(),
            "unexpected snapshot {:?}",
            receiver.borrow()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn publishes_changes_keeps_the_last_good_snapshot_and_reports_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("config");
        fs::create_dir(&config).expect("mkdir");
        let mesh_file = dir.path().join("mesh.yaml");
        fs::write(&mesh_file, "outboundTrafficPolicy:\n  mode: ALLOW_ANY\n").expect("write");
        let errors_total = Counter::default();
        let (watcher, mut receiver) = ConfigWatcher::start(
            config.clone(),
            Some(mesh_file.clone()),
            errors_total.clone(),
        )
        .expect("start");
        assert_eq!(receiver.borrow_and_update().version, 1);
        nothing(&mut receiver).await;

        fs::write(config.join("se.yaml"), ENTRY).expect("write");
        let snapshot = next(&mut receiver).await;
        assert_eq!(snapshot.version, 2);
        assert_eq!(snapshot.service_entries[0].spec.hosts, ["httpbin.org"]);

        fs::write(config.join("se.yaml"), ENTRY.replace("hosts:", "hostz:")).expect("write");
        nothing(&mut receiver).await;
        assert_eq!(receiver.borrow().version, 2, "the last good snapshot stays");
        let errors = watcher.last_errors();
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].to_string().contains("spec.hostz: unknown field"),
            "{}",
            errors[0]
        );
        assert!(errors_total.get() >= 1);

        fs::write(config.join("se.yaml"), ENTRY).expect("write");
        nothing(&mut receiver).await;
        assert!(
            watcher.last_errors().is_empty(),
            "a good reload clears the errors"
        );
        assert_eq!(
            receiver.borrow().version,
            2,
            "the same content is not published again"
        );

        fs::write(
            &mesh_file,
            "outboundTrafficPolicy:\n  mode: REGISTRY_ONLY\n",
        )
        .expect("write");
        let snapshot = next(&mut receiver).await;
        assert_eq!(snapshot.version, 3);
        assert_eq!(
            snapshot.mesh.outbound_traffic_policy.mode,
            OutboundMode::RegistryOnly
        );

        fs::remove_file(config.join("se.yaml")).expect("remove");
        let snapshot = next(&mut receiver).await;
        assert_eq!(snapshot.version, 4);
        assert!(snapshot.service_entries.is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_burst_of_writes_is_coalesced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_watcher, mut receiver) =
            ConfigWatcher::start(dir.path().to_path_buf(), None, Counter::default())
                .expect("start");
        nothing(&mut receiver).await;
        for index in 0..20 {
            let entry = ENTRY.replace("httpbin", &format!("entry-{index}"));
            fs::write(dir.path().join(format!("{index}.yaml")), entry).expect("write");
        }
        // One snapshot normally; a slow machine may split the burst, but
        // never into a snapshot per write.
        let mut published = 0;
        loop {
            let snapshot = next(&mut receiver).await;
            published += 1;
            assert_eq!(snapshot.version, 1 + published);
            if snapshot.service_entries.len() == 20 {
                break;
            }
        }
        assert!(published <= 3, "{published} snapshots for one burst");
        nothing(&mut receiver).await;
    }

    #[tokio::test]
    async fn start_fails_on_an_invalid_config_and_counts_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(
            dir.path().join("se.yaml"),
            ENTRY.replace("number: 80", "number: 0"),
        )
        .expect("write");
        let errors_total = Counter::default();
        let error = ConfigWatcher::start(dir.path().to_path_buf(), None, errors_total.clone())
            .err()
            .expect("port 0");
        assert!(matches!(error, WatchError::Config(_)));
        assert!(
            error
                .to_string()
                .contains("spec.ports[0].number: port 0 is out of range"),
            "{error}"
        );
        assert_eq!(errors_total.get(), 1);
        let missing = ConfigWatcher::start(dir.path().join("missing"), None, Counter::default())
            .err()
            .expect("missing dir");
        assert!(missing.to_string().contains("cannot read"), "{missing}");
    }
}
