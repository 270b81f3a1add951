//! A credentialName that verifies peers without a CA anywhere in its namespace is a warning naming the `-cacert` the proxy waits for; with the CA in the Secret or in `<name>-cacert`, or when nothing is verified, there is none.

use std::path::Path;

use crate::config::error::Severity;
use crate::config::load::load_str;
use crate::config::model::secret::testing::{TestCredential, secret_yaml};
use crate::config::validate::check;

/// The warnings and errors of `yaml`, which must have no error.
fn warnings(yaml: &str) -> Vec<String> {
    let snapshot = load_str(Path::new("cfg.yaml"), yaml).unwrap_or_else(|e| panic!("loads: {e}"));
    let checked = check(snapshot);
    assert!(checked.errors.is_empty(), "{:#?}", checked.errors);
    assert!(
        checked
            .warnings
            .iter()
            .all(|warning| warning.severity() == Severity::Warning)
    );
    checked.warnings.iter().map(ToString::to_string).collect()
}

fn gateway(mode: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {{name: gw, namespace: istio-system}}\n\
         spec:\n  selector: {{istio: egressgateway}}\n  servers:\n\
         \x20 - port: {{number: 443, name: https, protocol: HTTPS}}\n    hosts: ['*']\n    tls: {{mode: {mode}, credentialName: cred}}\n"
    )
}

fn destination_rule(tls: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: api, namespace: istio-system}}\n\
         spec:\n  host: api.example.com\n  trafficPolicy:\n    portLevelSettings:\n    - port: {{number: 443}}\n      tls: {tls}\n"
    )
}

/// The Secret `cred` of `namespace`, with its CA when `with_ca`.
fn credential(namespace: &str, with_ca: bool) -> String {
    TestCredential::new("api.example.com").tls_secret("cred", namespace, with_ca)
}

#[test]
fn a_mutual_gateway_server_without_a_ca_warns_naming_the_cacert_to_add() {
    let warnings = warnings(&format!(
        "{}---\n{}",
        gateway("MUTUAL"),
        credential("istio-system", false)
    ));
    let [warning] = warnings.as_slice() else {
        panic!("one warning expected: {warnings:#?}");
    };
    assert!(
        warning.contains("spec.servers[0].tls.credentialName"),
        "{warning}"
    );
    assert!(
        warning.contains("no CA for credentialName cred"),
        "{warning}"
    );
    assert!(warning.contains("kubernetes://cred-cacert"), "{warning}");
    assert!(warning.contains("create cred-cacert"), "{warning}");
}

#[test]
fn a_ca_in_the_secret_or_in_a_cacert_secret_of_the_namespace_is_enough() {
    let in_secret = format!(
        "{}---\n{}",
        gateway("MUTUAL"),
        credential("istio-system", true)
    );
    assert_eq!(warnings(&in_secret), Vec::<String>::new());
    let ca = TestCredential::new("ca.example.com").ca_pem;
    let apart = format!(
        "{}---\n{}---\n{}",
        gateway("OPTIONAL_MUTUAL"),
        credential("istio-system", false),
        secret_yaml("cred-cacert", "istio-system", "Opaque", &[("cacert", &ca)])
    );
    assert_eq!(warnings(&apart), Vec::<String>::new());
}

#[test]
fn a_ca_of_another_namespace_does_not_count() {
    let warnings = warnings(&format!(
        "{}---\n{}",
        gateway("MUTUAL"),
        credential("team-a", true)
    ));
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
}

#[test]
fn a_simple_gateway_server_verifies_no_client_and_needs_no_ca() {
    let yaml = format!(
        "{}---\n{}",
        gateway("SIMPLE"),
        credential("istio-system", false)
    );
    assert_eq!(warnings(&yaml), Vec::<String>::new());
}

#[test]
fn tls_origination_with_a_credential_without_a_ca_warns_unless_it_skips_verification() {
    for mode in ["SIMPLE", "MUTUAL"] {
        let rule = destination_rule(&format!("{{mode: {mode}, credentialName: cred}}"));
        let warnings = warnings(&format!("{rule}---\n{}", credential("istio-system", false)));
        let [warning] = warnings.as_slice() else {
            panic!("one warning expected for {mode}: {warnings:#?}");
        };
        assert!(
            warning.contains("spec.trafficPolicy.portLevelSettings[0].tls.credentialName"),
            "{warning}"
        );
        assert!(warning.contains("kubernetes://cred-cacert"), "{warning}");
    }
    let skips = destination_rule("{mode: SIMPLE, credentialName: cred, insecureSkipVerify: true}");
    let yaml = format!("{skips}---\n{}", credential("istio-system", false));
    assert_eq!(warnings(&yaml), Vec::<String>::new());
}
