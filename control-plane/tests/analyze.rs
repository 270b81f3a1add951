//! `control-plane analyze`, run as a user runs it: on a fixture directory
//! with the mistakes `istioctl analyze` reports (its output a golden file,
//! its exit code istioctl's 79), and on istio.io's egress tasks as the docs
//! apply them, which analyze clean of errors.
//!
//! Run with `UPDATE_GOLDEN=1` to rewrite the golden output after a change.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `control-plane analyze <args>`, run in `dir`.
fn analyze(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_control-plane"))
        .arg("analyze")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("control-plane runs")
}

#[test]
fn the_fixture_reports_istios_codes_with_lines_and_exits_79() {
    let fixtures = manifest_dir().join("tests/fixtures/analyze");
    let output = analyze(&fixtures, &["broken"]);
    let stdout = String::from_utf8(output.stdout).expect("UTF-8");
    let golden = fixtures.join("broken.expected");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &stdout).expect("write the golden output");
    }
    let expected = std::fs::read_to_string(&golden)
        .unwrap_or_else(|e| panic!("{}: {e}; run with UPDATE_GOLDEN=1", golden.display()));
    assert_eq!(
        stdout, expected,
        "run with UPDATE_GOLDEN=1 and review the diff"
    );
    assert_eq!(output.status.code(), Some(79));
    let stderr = String::from_utf8(output.stderr).expect("UTF-8");
    assert!(
        stderr.starts_with("Error: Analyzers found issues when analyzing broken.\n"),
        "{stderr}"
    );
    // Below the failure threshold, the same directory passes.
    let warnings_only = analyze(
        &fixtures,
        &[
            "broken",
            "--output-threshold",
            "warning",
            "--failure-threshold",
            "Info",
        ],
    );
    assert_eq!(warnings_only.status.code(), Some(79));
    let json = analyze(&fixtures, &["broken", "-o", "json"]);
    assert_eq!(
        json.status.code(),
        Some(0),
        "istioctl sets no exit code for -o json"
    );
    let items: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON");
    assert_eq!(
        items.as_array().map(Vec::len),
        Some(expected.lines().count()),
        "one JSON message per line of the log output"
    );
}

/// The snippets `paths` of istio.io's egress tasks
/// (`integration-tests/fixtures/docs/<path>.yaml`), and the egress
/// gateway's Service, in a directory of their own.
fn task(paths: &[&str]) -> tempfile::TempDir {
    let docs = manifest_dir().join("../integration-tests/fixtures/docs");
    let dir = tempfile::tempdir().expect("tempdir");
    for path in paths {
        let from = docs.join(format!("{path}.yaml"));
        let name = path.replace('/', "-");
        std::fs::copy(&from, dir.path().join(format!("{name}.yaml")))
            .unwrap_or_else(|e| panic!("{}: {e}", from.display()));
    }
    std::fs::copy(
        manifest_dir().join("../examples/kubernetes/istio-egressgateway-service.yaml"),
        dir.path().join("egressgateway-service.yaml"),
    )
    .expect("the egress gateway's service");
    dir
}

#[test]
fn istios_egress_tasks_analyze_clean_of_errors() {
    let tasks: [&[&str]; 7] = [
        &[
            "egress-control/access_an_external_http_service_1",
            "egress-control/access_an_external_https_service_1",
            "egress-control/manage_traffic_to_external_services_2",
        ],
        &[
            "egress-gateway/egress_gateway_for_http_traffic_1",
            "egress-gateway/egress_gateway_for_http_traffic_3",
            "egress-gateway/egress_gateway_for_http_traffic_5",
        ],
        &[
            "egress-gateway/egress_gateway_for_http_traffic_1",
            "egress-gateway/gateway-api/egress_gateway_for_http_traffic_4",
            "egress-gateway/gateway-api/egress_gateway_for_http_traffic_6",
        ],
        &[
            "egress-gateway/egress_gateway_for_https_traffic_1",
            "egress-gateway/egress_gateway_for_https_traffic_3",
        ],
        &[
            "egress-gateway-tls-origination/perform_tls_origination_with_an_egress_gateway_1",
            "egress-gateway-tls-origination/perform_tls_origination_with_an_egress_gateway_3",
            "egress-gateway-tls-origination/perform_tls_origination_with_an_egress_gateway_4",
        ],
        &[
            "wildcard-egress-hosts/configure_egress_gateway_traffic_to_a_wildcard_host_1",
            "wildcard-egress-hosts/configure_egress_gateway_traffic_to_a_wildcard_host_3",
        ],
        &[
            "egress-kubernetes-services/kubernetes_externalname_service_to_access_an_external_service_1",
            "egress-kubernetes-services/kubernetes_externalname_service_to_access_an_external_service_4",
            "egress-kubernetes-services/use_a_kubernetes_service_with_endpoints_to_access_an_external_service_1",
            "egress-kubernetes-services/use_a_kubernetes_service_with_endpoints_to_access_an_external_service_2",
            "egress-kubernetes-services/use_a_kubernetes_service_with_endpoints_to_access_an_external_service_5",
        ],
    ];
    for paths in tasks {
        let dir = task(paths);
        let output = analyze(dir.path(), &["."]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            !stdout.lines().any(|line| line.starts_with("Error")),
            "{paths:?}:\n{stdout}"
        );
        assert_eq!(output.status.code(), Some(0), "{paths:?}:\n{stdout}");
    }
}
