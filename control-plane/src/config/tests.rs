//! The seed walkthrough's config, as the fixtures under `tests/fixtures/`
//! hold it: every step loads and validates, and broken copies of it give
//! error lines that say where and what.

use std::fs;
use std::path::{Path, PathBuf};

use super::model::OutboundMode;
use super::{ConfigSnapshot, load_checked, load_validated};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn seed_steps() -> Vec<PathBuf> {
    let mut steps: Vec<PathBuf> = fs::read_dir(fixtures().join("seed"))
        .expect("seed fixtures exist")
        .map(|entry| entry.expect("readable entry").path())
        .filter(|path| path.is_dir())
        .collect();
    steps.sort();
    steps
}

fn load_step(step: &str, mesh: &str) -> ConfigSnapshot {
    let dir = fixtures().join("seed").join(step);
    let mesh = fixtures().join("mesh").join(mesh);
    load_validated(&dir, Some(&mesh)).unwrap_or_else(|errors| panic!("{step}: {errors}"))
}

/// (ServiceEntry, VirtualService, DestinationRule, Gateway) counts.
fn counts(snapshot: &ConfigSnapshot) -> [usize; 4] {
    [
        snapshot.service_entries.len(),
        snapshot.virtual_services.len(),
        snapshot.destination_rules.len(),
        snapshot.gateways.len(),
    ]
}

#[test]
fn every_seed_step_validates_under_every_mesh_file() {
    let steps = seed_steps();
    assert_eq!(steps.len(), 9, "{steps:?}");
    for step in &steps {
        for mesh in [
            "allow-any.yaml",
            "registry-only.yaml",
            "configmap-registry-only.yaml",
        ] {
            let mesh_file = fixtures().join("mesh").join(mesh);
            if let Err(errors) = load_validated(step, Some(&mesh_file)) {
                panic!("{} with {mesh}:\n{errors}", step.display());
            }
        }
    }
}

#[test]
fn seed_steps_hold_what_the_walkthrough_applies() {
    let expected: [(&str, [usize; 4]); 9] = [
        ("01-httpbin-serviceentry", [1, 0, 0, 0]),
        ("02-baidu-https", [1, 0, 0, 0]),
        ("03-httpbin-timeout", [1, 1, 0, 0]),
        ("04-cnn-https-passthrough", [1, 1, 0, 0]),
        ("05-cnn-tls-origination", [1, 1, 1, 0]),
        ("06-egress-gateway-http", [2, 1, 1, 1]),
        ("07-egress-gateway-https", [2, 1, 1, 1]),
        ("08-test-egress-destinationrule", [2, 1, 2, 1]),
        ("09-egress-gateway-tls-origination", [2, 1, 2, 1]),
    ];
    for (step, counts_expected) in expected {
        assert_eq!(
            counts(&load_step(step, "registry-only.yaml")),
            counts_expected,
            "{step}"
        );
    }
}

#[test]
fn mesh_files_set_the_outbound_policy() {
    let mode = |mesh: &str| {
        load_step("01-httpbin-serviceentry", mesh)
            .mesh
            .outbound_traffic_policy
            .mode
    };
    assert_eq!(mode("allow-any.yaml"), OutboundMode::AllowAny);
    assert_eq!(mode("registry-only.yaml"), OutboundMode::RegistryOnly);
    assert_eq!(
        mode("configmap-registry-only.yaml"),
        OutboundMode::RegistryOnly
    );
    let without =
        load_validated(&fixtures().join("seed/01-httpbin-serviceentry"), None).expect("loads");
    assert_eq!(
        without.mesh.outbound_traffic_policy.mode,
        OutboundMode::AllowAny
    );
}

#[test]
fn namespaces_follow_kubectl() {
    let snapshot = load_step("08-test-egress-destinationrule", "registry-only.yaml");
    let rules: Vec<(&str, &str)> = snapshot
        .destination_rules
        .iter()
        .map(|rule| (rule.meta.namespace.as_str(), rule.meta.name.as_str()))
        .collect();
    assert_eq!(
        rules,
        [
            ("test-egress", "egressgateway-for-cnn"),
            ("default", "egressgateway-for-cnn")
        ]
    );
    let gateway_service = snapshot
        .service_entries
        .iter()
        .find(|entry| entry.meta.name == "istio-egressgateway")
        .expect("the gateway's service");
    assert_eq!(gateway_service.meta.namespace, "istio-system");
    assert_eq!(snapshot.virtual_services[0].meta.namespace, "default");
}

#[test]
fn the_walkthrough_yaml_keeps_its_comments_and_values() {
    let snapshot = load_step("06-egress-gateway-http", "registry-only.yaml");
    let route = &snapshot.virtual_services[0].spec.http[0];
    assert_eq!(route.matches[0].gateways, ["mesh"]);
    assert_eq!(route.route[0].destination.subset, "cnn");
    let text =
        fs::read_to_string(fixtures().join("seed/06-egress-gateway-http/virtualservice.yaml"))
            .expect("read");
    assert!(text.contains("#对于DestinationRule中的subset名"));
}

/// A copy of a seed step in a temporary directory, with `file` rewritten.
fn broken_step(
    step: &str,
    file: &str,
    edit: impl Fn(&str) -> String,
) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    for entry in fs::read_dir(fixtures().join("seed").join(step)).expect("step exists") {
        let path = entry.expect("readable entry").path();
        fs::copy(&path, dir.path().join(path.file_name().expect("file name"))).expect("copy");
    }
    let path = dir.path().join(file);
    let text = fs::read_to_string(&path).expect("read");
    let edited = edit(&text);
    assert_ne!(edited, text, "the edit changes {file}");
    fs::write(&path, edited).expect("write");
    (dir, path)
}

fn only_error(dir: &Path) -> String {
    let errors = load_validated(dir, None).expect_err("broken config");
    assert_eq!(errors.len(), 1, "{errors}");
    errors.0[0].to_string()
}

#[test]
fn a_dangling_subset_is_a_warning_naming_file_document_resource_and_field() {
    let (dir, file) = broken_step("06-egress-gateway-http", "virtualservice.yaml", |text| {
        text.replace("subset: cnn", "subset: cnn-gateway")
    });
    let checked = load_checked(dir.path(), None);
    assert!(checked.errors.is_empty(), "{:?}", checked.errors);
    assert_eq!(
        checked.snapshot.virtual_services.len(),
        1,
        "istiod serves a route to an undefined subset"
    );
    let warnings: Vec<String> = checked.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [format!(
            "{}: document 1: VirtualService default/direct-cnn-through-egress-gateway: \
             spec.http[0].route[0].destination.subset: subset \"cnn-gateway\" of host \
             \"istio-egressgateway.istio-system.svc.cluster.local\" is not defined by any DestinationRule \
             visible here; add it to the subsets of a DestinationRule for \
             \"istio-egressgateway.istio-system.svc.cluster.local\" or fix the name",
            file.display()
        )]
    );
}

#[test]
fn a_bad_port_names_file_document_resource_and_field() {
    let (dir, file) = broken_step("05-cnn-tls-origination", "edition-cnn-com.yaml", |text| {
        text.replace("- number: 443\n", "- number: 70443\n")
    });
    assert_eq!(
        only_error(dir.path()),
        format!(
            "{}: document 1: ServiceEntry default/edition-cnn-com: spec.ports[1].number: \
             port 70443 is out of range; use a port between 1 and 65535",
            file.display()
        )
    );
}

#[test]
fn an_unknown_field_names_file_line_document_resource_and_field() {
    let (dir, file) = broken_step("05-cnn-tls-origination", "edition-cnn-com.yaml", |text| {
        text.replace("  subsets:\n", "  subset:\n")
    });
    let line = only_error(dir.path());
    let expected = format!(
        "{}:40: document 3: DestinationRule default/edition-cnn-com: spec.subset: unknown field `subset`; did you mean `subsets`?",
        file.display()
    );
    assert!(line.starts_with(&expected), "{line}");
}

#[test]
fn a_syntax_error_names_file_line_and_document() {
    let (dir, file) = broken_step("04-cnn-https-passthrough", "edition-cnn-com.yaml", |text| {
        text.replace("  tls:\n  - match:", "  tls:\n - match:")
    });
    let line = only_error(dir.path());
    let expected = format!("{}:25: document 2: YAML syntax error: ", file.display());
    assert!(line.starts_with(&expected), "{line}");
}
