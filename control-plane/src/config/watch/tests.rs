//! Hot reload as a user meets it: edits, bad resources, unparsable files, bursts.

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
        ConfigWatcher::start(dir.path().to_path_buf(), None, errors_total.clone()).expect("start");
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
    let missing = ConfigWatcher::start(dir.path().join("missing"), None, ErrorCounter::default())
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

/// Every snapshot published until `stop`, checked by `check` as it comes.
fn watch_all(
    mut receiver: watch::Receiver<SharedSnapshot>,
    check: impl Fn(&ConfigSnapshot) + Send + 'static,
) -> JoinHandle<usize> {
    tokio::spawn(async move {
        let mut seen = 0;
        while receiver.changed().await.is_ok() {
            let snapshot = Arc::clone(&receiver.borrow_and_update());
            check(&snapshot);
            seen += 1;
        }
        seen
    })
}

fn se_hosts(snapshot: &ConfigSnapshot) -> Vec<String> {
    snapshot
        .service_entries
        .iter()
        .flat_map(|entry| entry.spec.hosts.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_or_emptied_file_never_publishes_fewer_hosts() {
    use std::io::Write;
    let entries = |names: &[&str]| -> String {
        names
            .iter()
            .map(|name| ENTRY.replace("httpbin", name))
            .collect::<Vec<_>>()
            .join("---\n")
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("se.yaml");
    fs::write(&file, entries(&["a", "b"])).expect("write");
    let (watcher, receiver) =
        ConfigWatcher::start(dir.path().to_path_buf(), None, ErrorCounter::default())
            .expect("start");
    assert_eq!(se_hosts(&receiver.borrow()), ["a.org", "b.org"]);
    let mut latest = receiver.clone();
    let every = watch_all(receiver, |snapshot| {
        let hosts = se_hosts(snapshot);
        for host in ["a.org", "b.org"] {
            assert!(
                hosts.iter().any(|h| h == host),
                "snapshot {} lacks {host}: {hosts:?}",
                snapshot.version
            );
        }
    });

    // A writer that pauses mid-way, at a line: the first half is valid
    // YAML whose last document has no spec.
    let full = entries(&["a", "b", "c"]);
    let half = full.rfind("spec:").expect("spec");
    let mut writer = fs::File::create(&file).expect("create");
    writer.write_all(&full.as_bytes()[..half]).expect("write");
    writer.flush().expect("flush");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    writer.write_all(&full.as_bytes()[half..]).expect("write");
    drop(writer);
    let snapshot = next(&mut latest).await;
    assert_eq!(se_hosts(&snapshot), ["a.org", "b.org", "c.org"]);

    // Truncated to 0 bytes, as `> file` leaves it until the writer starts.
    fs::File::create(&file).expect("truncate");
    nothing(&mut latest).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        watcher
            .last_warnings()
            .iter()
            .any(|warning| warning.to_string().contains("holds no document")),
        "{:?}",
        watcher.last_warnings()
    );

    // An atomic rename over the file is read at once, whole.
    let staged = dir.path().join(".se.yaml.tmp");
    fs::write(&staged, entries(&["a", "b", "d"])).expect("write");
    fs::rename(&staged, &file).expect("rename");
    let snapshot = next(&mut latest).await;
    assert_eq!(se_hosts(&snapshot), ["a.org", "b.org", "d.org"]);
    assert!(watcher.last_warnings().is_empty());

    drop(watcher);
    let seen = tokio::time::timeout(Duration::from_secs(10), every)
        .await
        .expect("the check task ends with the watcher")
        .expect("no snapshot lacked a host");
    assert!(seen >= 2, "{seen} snapshots");
    eprintln!("a half-written then emptied file: {seen} snapshots published, none lacking a host");
}
