//! What a file that cannot be taken as it reads now keeps: an empty file,
//! a cut List, a cut last document, a file still changing.

use std::fs;
use std::path::Path;

use super::*;
use crate::config::load::read_dir;

fn entry(name: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata:\n  name: {name}\nspec:\n  hosts: [{name}.example.com]\n  ports: [{{number: 80, name: http, protocol: HTTP}}]\n  resolution: DNS\n"
    )
}

fn hosts(snapshot: &ConfigSnapshot) -> Vec<String> {
    snapshot
        .service_entries
        .iter()
        .flat_map(|entry| entry.spec.hosts.clone())
        .collect()
}

/// Loads `dir` after a load that read `first` from the same file.
fn after(dir: &Path, first: &str, now: &str, changing: &[PathBuf]) -> Reload {
    let file = dir.join("se.yaml");
    fs::write(&file, first).expect("write");
    let before = reload(read_dir(dir, None), &ConfigSnapshot::default(), &[]);
    assert!(before.errors.is_empty(), "{:?}", before.errors);
    fs::write(&file, now).expect("write");
    reload(read_dir(dir, None), &before.read, changing)
}

fn warned(reload: &Reload, text: &str) -> bool {
    reload
        .warnings
        .iter()
        .any(|warning| warning.to_string().contains(text))
}

#[test]
fn an_empty_file_keeps_what_it_held_with_a_warning() {
    let both = format!("{}---\n{}", entry("a"), entry("b"));
    for empty in ["", "\n\n", "# being written\n", "---\n"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let now = after(dir.path(), &both, empty, &[]);
        assert_eq!(
            hosts(&now.served),
            ["a.example.com", "b.example.com"],
            "{empty:?}"
        );
        assert!(now.errors.is_empty(), "{:?}", now.errors);
        assert!(warned(&now, "delete the file to remove its config"));
    }
}

#[test]
fn an_empty_file_that_held_nothing_is_just_empty() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join("se.yaml"), "").expect("write");
    let now = reload(read_dir(dir.path(), None), &ConfigSnapshot::default(), &[]);
    assert!(now.served.service_entries.is_empty());
    assert!(now.warnings.is_empty(), "{:?}", now.warnings);
}

#[test]
fn a_cut_kubectl_list_keeps_the_whole_file() {
    // `kubectl get -o yaml` prints `kind: List` after the items.
    let indent = |text: String| text.replace('\n', "\n  ");
    let list = format!(
        "apiVersion: v1\nitems:\n- {}\n- {}\nkind: List\nmetadata:\n  resourceVersion: \"\"\n",
        indent(entry("a")),
        indent(entry("b"))
    );
    // Cut at a line, after the first item: valid YAML without a kind.
    let cut = &list[..list.rfind("- apiVersion").expect("second item")];
    let dir = tempfile::tempdir().expect("tempdir");
    let now = after(dir.path(), &list, cut, &[]);
    assert_eq!(hosts(&now.served), ["a.example.com", "b.example.com"]);
    assert!(!now.errors.is_empty(), "the cut is reported");
    assert!(warned(&now, "last document is cut short or invalid"));
}

#[test]
fn a_cut_last_document_keeps_the_whole_file() {
    let both = format!("{}---\n{}", entry("a"), entry("b"));
    // Cut after the second document's metadata: a ServiceEntry without hosts.
    let cut = &both[..both.rfind("spec:").expect("spec")];
    let dir = tempfile::tempdir().expect("tempdir");
    let now = after(dir.path(), &both, cut, &[]);
    assert_eq!(hosts(&now.served), ["a.example.com", "b.example.com"]);
    assert!(
        now.errors
            .iter()
            .any(|error| error.location.document == Some(1)),
        "the cut document's error is reported: {:?}",
        now.errors
    );
    assert!(warned(&now, "last document is cut short or invalid"));
}

#[test]
fn an_error_before_the_last_document_leaves_out_that_resource_only() {
    let both = format!("{}---\n{}", entry("a"), entry("b"));
    let bad_first = format!(
        "{}---\n{}",
        entry("a").replace("hosts:", "hostz:"),
        entry("c")
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let now = after(dir.path(), &both, &bad_first, &[]);
    assert_eq!(hosts(&now.served), ["c.example.com"]);
    assert_eq!(now.errors.len(), 1, "{:?}", now.errors);
    assert!(now.warnings.is_empty(), "{:?}", now.warnings);
}

#[test]
fn a_file_still_changing_keeps_what_it_held() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("se.yaml");
    let now = after(dir.path(), &entry("a"), &entry("b"), &[file]);
    assert_eq!(hosts(&now.served), ["a.example.com"]);
    assert!(warned(&now, "still being written"));
}

#[test]
fn a_complete_rewrite_replaces_and_a_deleted_file_removes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let now = after(dir.path(), &entry("a"), &entry("b"), &[]);
    assert_eq!(hosts(&now.served), ["b.example.com"]);
    assert!(now.warnings.is_empty(), "{:?}", now.warnings);
    fs::remove_file(dir.path().join("se.yaml")).expect("remove");
    let gone = reload(read_dir(dir.path(), None), &now.read, &[]);
    assert!(gone.served.service_entries.is_empty());
}
