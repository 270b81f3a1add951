//! The inventory file: a round trip, written atomically and owner-only, a torn file refused and left as it is, and the live inventory reloaded from it.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use super::{destination, limits, observation, source};
use crate::egress::{
    Decision, FileError, INVENTORY_FILE, Inventory, InventoryFile, LiveInventory, Protocol, load,
    save,
};
use crate::metrics::Metrics;

fn two_records() -> InventoryFile {
    let mut inventory = Inventory::new(limits(1));
    let sleep = source("default", "sleep");
    for (host, protocol) in [
        ("httpbin.org", Protocol::Http),
        ("www.baidu.com", Protocol::Tls),
    ] {
        inventory.observe(observation(
            &sleep,
            destination(host, 443, protocol),
            "PassthroughCluster",
            Decision::WouldBlock,
            1_700_000_000,
        ));
    }
    InventoryFile::of(&inventory)
}

#[test]
fn what_is_saved_is_loaded_back_from_an_owner_only_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert!(load(dir.path()).expect("no file is no error").is_none());
    let file = two_records();
    assert!(
        file.records.iter().any(|r| r.is_other()),
        "the other record is saved too"
    );
    save(dir.path(), &file).expect("saved");
    assert_eq!(load(dir.path()).expect("loaded"), Some(file));
    let mode = std::fs::metadata(dir.path().join(INVENTORY_FILE))
        .expect("the file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("list")
        .map(|entry| entry.expect("entry").file_name())
        .collect();
    assert_eq!(
        leftovers,
        [INVENTORY_FILE],
        "the temporary file was renamed"
    );
}

#[test]
fn a_torn_file_is_refused_and_left_as_it_is() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(INVENTORY_FILE);
    let whole = serde_json::to_string(&two_records()).expect("JSON");
    let torn = &whole[..whole.len() / 2];
    std::fs::write(&path, torn).expect("write");
    let error = load(dir.path()).expect_err("a torn file");
    assert!(matches!(error, FileError::Invalid { .. }), "{error}");
    assert!(error.to_string().contains("move it away"), "{error}");
    let refused = LiveInventory::open(limits(10), Some(dir.path()), Arc::new(Metrics::default()));
    assert!(refused.is_err(), "the control plane does not start over it");
    assert_eq!(
        std::fs::read_to_string(&path).expect("read"),
        torn,
        "not overwritten"
    );
}

#[test]
fn an_interrupted_write_leaves_the_old_inventory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let old = two_records();
    save(dir.path(), &old).expect("saved");
    std::fs::write(dir.path().join(format!(".{INVENTORY_FILE}.tmp")), "{\"vers").expect("write");
    assert_eq!(load(dir.path()).expect("the old file"), Some(old.clone()));
    save(dir.path(), &old).expect("a later write is not stopped by the leftover");
    assert_eq!(load(dir.path()).expect("loaded"), Some(old));
}

#[test]
fn a_symlink_at_the_temporary_or_the_inventory_path_is_not_followed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outside = tempfile::tempdir().expect("tempdir");
    let target = outside.path().join("target");
    std::fs::write(&target, "untouched").expect("write");
    for name in [
        format!(".{INVENTORY_FILE}.tmp"),
        format!(".{INVENTORY_FILE}."),
        INVENTORY_FILE.to_string(),
    ] {
        std::os::unix::fs::symlink(&target, dir.path().join(name)).expect("symlink");
    }
    save(dir.path(), &two_records()).expect("saved");
    assert_eq!(std::fs::read_to_string(&target).expect("read"), "untouched");
    assert_eq!(load(dir.path()).expect("loaded"), Some(two_records()));
    let link = std::fs::symlink_metadata(dir.path().join(INVENTORY_FILE)).expect("the file");
    assert!(link.file_type().is_file(), "a new file, renamed into place");
}

#[test]
fn the_live_inventory_starts_from_the_file_and_writes_only_when_changed() {
    let dir = tempfile::tempdir().expect("tempdir");
    save(dir.path(), &two_records()).expect("saved");
    let metrics = Arc::new(Metrics::default());
    let live = LiveInventory::open(limits(10), Some(dir.path()), metrics.clone()).expect("opened");
    assert_eq!(live.contents(), two_records());
    assert!(metrics.render().contains("egress_inventory_records 2\n"));
    std::fs::remove_file(dir.path().join(INVENTORY_FILE)).expect("remove");
    live.write_if_changed(dir.path()).expect("nothing to write");
    assert!(
        load(dir.path()).expect("read").is_none(),
        "unchanged: not written"
    );
    live.observe(observation(
        &source("default", "sleep"),
        destination("example.com", 80, Protocol::Http),
        "PassthroughCluster",
        Decision::Allowed,
        1_700_000_100,
    ));
    live.write_if_changed(dir.path()).expect("written");
    let saved = load(dir.path()).expect("read").expect("written");
    assert_eq!(saved.records.len(), 3);
    assert!(metrics.render().contains(
        "egress_destination_connections_total{source_namespace=\"default\",source_workload=\"sleep\",destination=\"example.com\",port=\"80\",protocol=\"HTTP\",handled_by=\"PassthroughCluster\",decision=\"allowed\"} 1\n"
    ));
}

#[test]
fn an_observation_folded_past_the_bound_is_counted_as_other() {
    let metrics = Arc::new(Metrics::default());
    let live = LiveInventory::open(limits(0), None, metrics.clone()).expect("opened");
    live.observe(observation(
        &source("default", "sleep"),
        destination("example.com", 80, Protocol::Http),
        "PassthroughCluster",
        Decision::Allowed,
        1,
    ));
    let text = metrics.render();
    assert!(text.contains("egress_inventory_folded_total 1\n"), "{text}");
    assert!(
        text.contains("destination=\"other\",port=\"\",protocol=\"\""),
        "{text}"
    );
}

#[tokio::test]
async fn the_serving_inventory_is_written_soon_after_a_change() {
    let dir = tempfile::tempdir().expect("tempdir");
    let live = Arc::new(
        LiveInventory::open(limits(10), Some(dir.path()), Arc::new(Metrics::default()))
            .expect("opened"),
    );
    let writer = tokio::spawn(live.clone().keep_written(dir.path().to_path_buf()));
    live.observe(observation(
        &source("default", "sleep"),
        destination("example.com", 80, Protocol::Http),
        "PassthroughCluster",
        Decision::Allowed,
        1,
    ));
    let written = async {
        loop {
            if let Ok(Some(file)) = load(dir.path()) {
                return file;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    };
    let file = tokio::time::timeout(std::time::Duration::from_secs(10), written)
        .await
        .expect("written");
    writer.abort();
    assert_eq!(file, live.contents());
}
