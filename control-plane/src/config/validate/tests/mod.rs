//! Validation as a user meets it: YAML in, one error line per problem,
//! naming the file, document, resource and field. One module per kind.

mod destination_rule;
mod gateway;
mod http_policy;
mod outbound_conflicts;
mod secret;
mod served;
mod service_entry;
mod sidecar;
mod virtual_service;
mod workload_entry;
mod workload_group;

use std::path::Path;

use super::*;
use crate::config::error::Severity;
use crate::config::load::load_str;

/// The error lines `validate` gives for one file's YAML.
fn errors(text: &str) -> Vec<String> {
    let snapshot =
        load_str(Path::new("cfg.yaml"), text).unwrap_or_else(|errors| panic!("loads: {errors}"));
    validate(&snapshot)
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// The one error loading `text` gives (a decoding error: the resource is
/// never validated).
fn load_error(text: &str) -> String {
    let errors = load_str(Path::new("cfg.yaml"), text).expect_err("a decoding error");
    assert_eq!(errors.len(), 1, "{errors}");
    errors.0[0].to_string()
}

/// Asserts exactly one error, containing every one of `parts`.
fn one_error(text: &str, parts: &[&str]) {
    let lines = errors(text);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    for part in parts {
        assert!(lines[0].contains(part), "{part:?} not in {:?}", lines[0]);
    }
}

fn valid(text: &str) {
    let lines = errors(text);
    assert!(lines.is_empty(), "{lines:#?}");
}

fn service_entry(spec: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata:\n  name: se\nspec:\n{spec}"
    )
}

const SE_HTTP: &str = "  hosts: [httpbin.org]\n  ports:\n  - {number: 80, name: http, protocol: HTTP}\n  resolution: DNS\n";

fn virtual_service(spec: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: vs\nspec:\n{spec}"
    )
}

fn destination_rule(name: &str, namespace: &str, spec: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: {name}\n  namespace: {namespace}\nspec:\n{spec}"
    )
}

fn gateway(spec: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata:\n  name: gw\n  namespace: istio-system\nspec:\n{spec}"
    )
}

// --- metadata and duplicates, for every kind ---

#[test]
fn a_valid_service_entry_has_no_errors() {
    valid(&service_entry(SE_HTTP));
}

#[test]
fn missing_and_invalid_names_are_reported() {
    let text = service_entry(SE_HTTP).replace("  name: se\n", "  namespace: default\n");
    one_error(
        &text,
        &[
            "cfg.yaml: document 1: ServiceEntry default/<unnamed>: metadata.name: metadata.name is missing",
        ],
    );
    let text = service_entry(SE_HTTP).replace("name: se", "name: My_Entry");
    one_error(
        &text,
        &["metadata.name: name \"My_Entry\" is not a valid Kubernetes name"],
    );
    let text = service_entry(SE_HTTP).replace("name: se", "name: se\n  namespace: Test");
    one_error(
        &text,
        &["metadata.namespace: namespace \"Test\" is not a valid Kubernetes name"],
    );
}

#[test]
fn duplicates_across_documents_name_the_first() {
    let text = format!("{}---\n{}", service_entry(SE_HTTP), service_entry(SE_HTTP));
    one_error(
        &text,
        &[
            "cfg.yaml: document 2: ServiceEntry default/se: ServiceEntry default/se is defined again (first in cfg.yaml document 1)",
        ],
    );
    let other_namespace =
        service_entry(SE_HTTP).replace("name: se", "name: se\n  namespace: other");
    valid(&format!("{}---\n{other_namespace}", service_entry(SE_HTTP)));
}

#[test]
fn duplicates_across_files_are_reported() {
    let mut snapshot = load_str(Path::new("a.yaml"), &service_entry(SE_HTTP)).expect("loads");
    let second = load_str(Path::new("b.yaml"), &service_entry(SE_HTTP)).expect("loads");
    snapshot.service_entries.extend(second.service_entries);
    let lines: Vec<String> = validate(&snapshot)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        lines,
        [
            "b.yaml: document 1: ServiceEntry default/se: ServiceEntry default/se is defined again (first in a.yaml document 1); delete one or rename it"
        ]
    );
}

#[test]
fn every_line_is_one_line() {
    let text =
        service_entry("  hosts: []\n  ports: [{number: 0, protocol: BAD}]\n  resolution: STATIC\n");
    let lines = errors(&text);
    assert_eq!(lines.len(), 4, "{lines:#?}");
    assert!(lines.iter().all(|line| !line.contains('\n')
        && line.starts_with("cfg.yaml: document 1: ServiceEntry default/se: spec.")));
}
