//! Hot reload: watch the config directory and the mesh file, and publish a
//! new snapshot when what they say changes.
//!
//! Changes are debounced ([`DEBOUNCE`] of quiet, so an editor's or
//! `kubectl cp`'s several writes make one reload), then the whole directory
//! is loaded and each resource validated again, as istiod validates each
//! resource alone: a resource with an error is left out, everything else is
//! served. A file that cannot be read or parsed keeps what it held at the
//! last load, and an invalid mesh file the last mesh config. Each new error
//! or warning is logged once, each new error counted by kind; the current
//! ones are kept for [`ConfigWatcher::last_errors`] and
//! [`ConfigWatcher::last_warnings`].

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
use super::load::{Loaded, NotHandled, keep_unreadable, read_dir};
use super::validate::check;
use super::{ConfigSnapshot, SharedSnapshot};

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
}

/// One load of the directory: what was read, what is served, what was found.
struct Reload {
    read: ConfigSnapshot,
    served: ConfigSnapshot,
    errors: Vec<ConfigError>,
    warnings: Vec<ConfigError>,
    not_handled: Vec<NotHandled>,
}

/// Completes what was read with what `last` held for what cannot be read,
/// and validates each resource.
fn reload(mut loaded: Loaded, last: &ConfigSnapshot) -> Reload {
    keep_unreadable(&mut loaded, last);
    let read = loaded.snapshot.clone();
    let checked = check(loaded.snapshot);
    let mut errors = loaded.errors;
    errors.extend(checked.errors);
    Reload {
        read,
        served: checked.snapshot,
        errors,
        warnings: checked.warnings,
        not_handled: loaded.not_handled,
    }
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
        let first = reload(loaded, &ConfigSnapshot::default());
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
        });
        state.record(first);
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
        let dir = state.dir.clone();
        let mesh_file = state.mesh_file.clone();
        let last = state.last().read.clone();
        match tokio::task::spawn_blocking(move || {
            reload(read_dir(&dir, mesh_file.as_deref()), &last)
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

    fn errors_of(counter: &ErrorCounter, kind: &str) -> u64 {
        counter
            .get_or_create(&vec![("kind", kind.to_string())])
            .get()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn publishes_changes_leaves_out_bad_resources_and_keeps_unparsable_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("config");
        fs::create_dir(&config).expect("mkdir");
        let mesh_file = dir.path().join("mesh.yaml");
        fs::write(&mesh_file, "outboundTrafficPolicy:\n  mode: ALLOW_ANY\n").expect("write");
        let errors_total = ErrorCounter::default();
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

        // One misspelt resource is left out; the others in its file and
        // directory are still served.
        let other = ENTRY.replace("httpbin", "other");
        fs::write(
            config.join("se.yaml"),
            format!("{}---\n{other}", ENTRY.replace("hosts:", "hostz:")),
        )
        .expect("write");
        let snapshot = next(&mut receiver).await;
        assert_eq!(snapshot.version, 3);
        let names: Vec<&str> = snapshot
            .service_entries
            .iter()
            .map(|entry| entry.meta.name.as_str())
            .collect();
        assert_eq!(names, ["other"]);
        let errors = watcher.last_errors();
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].to_string().contains("spec.hostz: unknown field"),
            "{}",
            errors[0]
        );
        assert_eq!(errors_of(&errors_total, "ServiceEntry"), 1);

        // A file that no longer parses keeps serving what it held.
        fs::write(config.join("se.yaml"), "hosts: [unclosed\n").expect("write");
        nothing(&mut receiver).await;
        assert_eq!(
            receiver.borrow().version,
            3,
            "the file's last resources stay"
        );
        assert!(
            watcher.last_errors()[0]
                .to_string()
                .contains("YAML syntax error"),
            "{:?}",
            watcher.last_errors()
        );
        assert_eq!(errors_of(&errors_total, "File"), 1);

        fs::write(config.join("se.yaml"), ENTRY).expect("write");
        let snapshot = next(&mut receiver).await;
        assert_eq!(snapshot.version, 4);
        assert_eq!(snapshot.service_entries.len(), 1);
        assert!(
            watcher.last_errors().is_empty(),
            "a good reload clears the errors"
        );
        assert_eq!(
            errors_of(&errors_total, "ServiceEntry"),
            1,
            "an error is counted when found, not at every reload"
        );

        fs::write(
            &mesh_file,
            "outboundTrafficPolicy:\n  mode: REGISTRY_ONLY\n",
        )
        .expect("write");
        let snapshot = next(&mut receiver).await;
        assert_eq!(snapshot.version, 5);
        assert_eq!(
            snapshot.mesh.outbound_traffic_policy.mode,
            OutboundMode::RegistryOnly
        );
        fs::write(&mesh_file, "outboundTrafficPolicy: [\n").expect("write");
        nothing(&mut receiver).await;
        assert_eq!(
            receiver.borrow().mesh.outbound_traffic_policy.mode,
            OutboundMode::RegistryOnly,
            "an invalid mesh file keeps the last mesh config"
        );

        fs::remove_file(config.join("se.yaml")).expect("remove");
        let snapshot = next(&mut receiver).await;
        assert_eq!(snapshot.version, 6);
        assert!(snapshot.service_entries.is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dangling_reference_is_a_warning_and_is_served() {
        let dir = tempfile::tempdir().expect("tempdir");
        let route = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: vs\nspec:\n  hosts: [httpbin.org]\n  http:\n  - route:\n    - destination: {host: httpbin.org, subset: v1}\n";
        fs::write(dir.path().join("vs.yaml"), route).expect("write");
        let errors_total = ErrorCounter::default();
        let (watcher, receiver) =
            ConfigWatcher::start(dir.path().to_path_buf(), None, errors_total.clone())
                .expect("start");
        assert_eq!(receiver.borrow().virtual_services.len(), 1);
        assert!(watcher.last_errors().is_empty());
        let warnings = watcher.last_warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].to_string().contains("subset \"v1\""),
            "{}",
            warnings[0]
        );
        assert_eq!(errors_of(&errors_total, "VirtualService"), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_burst_of_writes_is_coalesced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_watcher, mut receiver) =
            ConfigWatcher::start(dir.path().to_path_buf(), None, ErrorCounter::default())
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
    async fn start_serves_the_valid_resources_and_fails_only_without_a_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(
            dir.path().join("se.yaml"),
            format!(
                "{}---\n{}",
                ENTRY.replace("number: 80", "number: 0"),
                ENTRY.replace("httpbin", "other")
            ),
        )
        .expect("write");
        let errors_total = ErrorCounter::default();
        let (watcher, receiver) =
            ConfigWatcher::start(dir.path().to_path_buf(), None, errors_total.clone())
                .expect("starts with what is valid");
        assert_eq!(receiver.borrow().service_entries.len(), 1);
        assert_eq!(receiver.borrow().service_entries[0].meta.name, "other");
        let errors = watcher.last_errors();
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0]
                .to_string()
                .contains("spec.ports[0].number: port 0 is out of range"),
            "{}",
            errors[0]
        );
        assert_eq!(errors_of(&errors_total, "ServiceEntry"), 1);
        let missing =
            ConfigWatcher::start(dir.path().join("missing"), None, ErrorCounter::default())
                .err()
                .expect("missing dir");
        assert!(matches!(missing, WatchError::Config(_)));
        assert!(missing.to_string().contains("cannot read"), "{missing}");
        let bad_mesh = dir.path().join("mesh.yaml");
        fs::write(&bad_mesh, "outboundTrafficPolicy: [\n").expect("write");
        let error = ConfigWatcher::start(
            dir.path().to_path_buf(),
            Some(bad_mesh),
            ErrorCounter::default(),
        )
        .err()
        .expect("invalid mesh file");
        assert!(matches!(error, WatchError::Config(_)));
    }
}
