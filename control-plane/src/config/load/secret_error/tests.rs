//! A Secret that does not decode is named by file, field and line, and its error never quotes a value: neither the PEM armour nor any part of the key.

use std::path::Path;

use crate::config::load::load_str;
use crate::config::model::secret::testing::TestCredential;

/// The one error loading `yaml` gives, as the user reads it (validate's
/// output and the watcher's log line print this text).
fn only_error(yaml: &str) -> String {
    let errors = load_str(Path::new("secrets.yaml"), yaml).expect_err("does not decode");
    assert_eq!(errors.len(), 1, "{errors}");
    errors.0[0].to_string()
}

/// `key_pem` indented as a YAML block scalar's lines.
fn block(key_pem: &str) -> String {
    key_pem.lines().map(|line| format!("  {line}\n")).collect()
}

/// Fails if `error` holds the PEM armour or any line of `value`.
fn assert_quotes_nothing_of(error: &str, value: &str) {
    assert!(!error.contains("BEGIN"), "{error}");
    for line in value.lines().filter(|line| line.len() >= 4) {
        assert!(!error.contains(line), "quotes {line:?}: {error}");
    }
    for chunk in value.as_bytes().chunks(8).filter(|chunk| chunk.len() == 8) {
        let chunk = String::from_utf8_lossy(chunk);
        assert!(!error.contains(&*chunk), "quotes {chunk:?}: {error}");
    }
}

const HEAD: &str = "apiVersion: v1\nkind: Secret\nmetadata: {name: cred, namespace: istio-system}\ntype: kubernetes.io/tls\n";

#[test]
fn string_data_given_as_one_string_names_the_field_and_not_the_key() {
    let key = TestCredential::new("a.example.com").key_pem;
    let error = only_error(&format!("{HEAD}stringData: |\n{}", block(&key)));
    assert_quotes_nothing_of(&error, &key);
    assert!(error.contains("Secret istio-system/cred"), "{error}");
    assert!(error.contains("stringData"), "{error}");
    assert!(
        error.contains("stringData must be a map of key to text value"),
        "{error}"
    );
}

#[test]
fn data_given_as_one_string_names_the_field_and_not_the_key() {
    let key = TestCredential::new("a.example.com").key_pem;
    let error = only_error(&format!("{HEAD}data: |\n{}", block(&key)));
    assert_quotes_nothing_of(&error, &key);
    assert!(
        error.contains("data must be a map of key to base64-encoded value"),
        "{error}"
    );
}

#[test]
fn a_pem_value_under_data_names_its_key_and_not_its_bytes() {
    let key = TestCredential::new("a.example.com").key_pem;
    let error = only_error(&format!(
        "{HEAD}data:\n  tls.key: |\n{}",
        block(&block(&key))
    ));
    assert_quotes_nothing_of(&error, &key);
    assert!(error.contains("data.tls.key is not base64"), "{error}");
}

#[test]
fn a_value_of_the_wrong_type_is_not_quoted() {
    let error = only_error(&format!(
        "{HEAD}stringData: {{tls.key: x}}
immutable: s3cr3t-31415926535
"
    ));
    assert_quotes_nothing_of(&error, "s3cr3t-31415926535");
    assert!(error.contains("immutable must be true or false"), "{error}");
}

#[test]
fn metadata_of_the_wrong_shape_names_the_field_and_not_the_value() {
    let key = TestCredential::new("a.example.com").key_pem;
    let yaml = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: cred\n  labels: |\n{}stringData: {{tls.key: x}}\n",
        block(&block(&key))
    );
    let error = only_error(&yaml);
    assert_quotes_nothing_of(&error, &key);
    assert!(error.contains("metadata.labels"), "{error}");
}
