//! Secrets as `kubectl get secret -o yaml` prints them: loading, the keys istiod reads, and what `Debug` shows.

use std::path::Path;

use super::testing::{TestCredential, secret_yaml};
use super::*;
use crate::config::load::load_str;

fn load(yaml: &str) -> Vec<crate::config::Resource<Secret>> {
    load_str(Path::new("secrets.yaml"), yaml)
        .unwrap_or_else(|errors| panic!("loads: {errors}"))
        .secrets
}

#[test]
fn a_tls_secret_loads_with_its_data_decoded_from_base64() {
    let credential = TestCredential::new("api.example.com");
    let secrets = load(&credential.tls_secret("egress-cred", "istio-system", true));
    assert_eq!(secrets.len(), 1);
    let secret = &secrets[0];
    assert_eq!(secret.meta.name, "egress-cred");
    assert_eq!(secret.meta.namespace, "istio-system");
    assert_eq!(secret.spec.secret_type, TLS_TYPE);
    let pair = secret.spec.key_pair().expect("a key pair");
    assert_eq!(pair.certificate, credential.cert_pem.as_bytes());
    assert_eq!(pair.private_key, credential.key_pem.as_bytes());
    assert_eq!(
        secret.spec.ca_certificate(),
        Ok((TLS_CA, credential.ca_pem.as_bytes()))
    );
}

#[test]
fn generic_keys_are_read_before_the_tls_ones_and_string_data_over_data() {
    let yaml = "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n\
                data: {tls.crt: dGxz, tls.key: dGxz, cacert: b2xk}\n\
                stringData: {cert: generic-cert, key: generic-key, cacert: new-ca}\n";
    let secrets = load(yaml);
    let spec = &secrets[0].spec;
    let pair = spec.key_pair().expect("pair");
    assert_eq!(
        (pair.certificate_key, pair.certificate),
        (GENERIC_CERT, &b"generic-cert"[..])
    );
    assert_eq!(spec.ca_certificate(), Ok((GENERIC_CA, &b"new-ca"[..])));
    assert_eq!(secrets[0].meta.namespace, "default");
}

#[test]
fn missing_or_empty_keys_are_named_as_istiod_names_them() {
    let secrets = load(&secret_yaml(
        "s",
        "ns",
        "Opaque",
        &[("tls.crt", ""), ("tls.key", "")],
    ));
    let spec = &secrets[0].spec;
    assert_eq!(
        spec.key_pair().err().map(|e| e.to_string()).as_deref(),
        Some("found keys \"tls.crt\" and \"tls.key\", but they were empty")
    );
    let error = spec.ca_certificate().expect_err("no CA").to_string();
    assert!(error.contains("found: tls.crt, tls.key"), "{error}");
}

#[test]
fn data_that_is_not_base64_is_an_error_naming_the_key() {
    let yaml = "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {tls.crt: '***'}\n";
    let errors = load_str(Path::new("secrets.yaml"), yaml).expect_err("bad base64");
    let text = errors.to_string();
    assert!(text.contains("Secret default/s"), "{text}");
    assert!(text.contains("data.tls.crt is not base64"), "{text}");
}

#[test]
fn secrets_in_a_list_load_and_other_core_kinds_are_skipped() {
    let credential = TestCredential::new("a.example.com");
    let item = credential
        .tls_secret("a", "ns", false)
        .lines()
        .map(|line| format!("  {line}"))
        .collect::<Vec<_>>()
        .join("\n");
    let yaml = format!(
        "apiVersion: v1\nkind: List\nitems:\n- {}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c}}\n",
        item.trim_start()
    );
    let secrets = load(&yaml);
    assert_eq!(secrets.len(), 1);
    assert_eq!(secrets[0].meta.name, "a");
}

#[test]
fn debug_names_the_keys_and_never_the_values() {
    let credential = TestCredential::new("api.example.com");
    let secrets = load(&credential.tls_secret("s", "ns", true));
    let shown = format!("{:?}", secrets[0]);
    assert!(shown.contains("tls.key"), "{shown}");
    assert!(!shown.contains("PRIVATE KEY"), "{shown}");
    let body: String = credential.key_pem.lines().nth(1).unwrap_or_default().into();
    assert!(!shown.contains(&body), "{shown}");
}
