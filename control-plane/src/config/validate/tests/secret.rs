//! Secret checks: missing keys, bad PEM and a key that is not the certificate's, each an error on that Secret.

use super::*;
use crate::config::model::secret::testing::{TestCredential, secret_yaml};

#[test]
fn a_tls_secret_with_a_matching_key_and_ca_is_valid() {
    valid(&TestCredential::new("api.example.com").tls_secret("cred", "istio-system", true));
}

#[test]
fn a_key_of_another_certificate_is_an_error() {
    let mine = TestCredential::new("api.example.com");
    let other = TestCredential::new("api.example.com");
    let yaml = secret_yaml(
        "cred",
        "istio-system",
        "kubernetes.io/tls",
        &[("tls.crt", &mine.cert_pem), ("tls.key", &other.key_pem)],
    );
    one_error(
        &yaml,
        &[
            "Secret istio-system/cred: data.tls.key:",
            "does not match the certificate in tls.crt",
        ],
    );
}

#[test]
fn a_certificate_that_is_not_pem_is_an_error() {
    let credential = TestCredential::new("api.example.com");
    let yaml = secret_yaml(
        "cred",
        "ns",
        "kubernetes.io/tls",
        &[
            ("tls.crt", "not a certificate"),
            ("tls.key", &credential.key_pem),
        ],
    );
    one_error(
        &yaml,
        &["data.tls.crt:", "tls.crt holds no PEM certificate"],
    );
}

#[test]
fn a_ca_that_is_not_pem_is_an_error() {
    let credential = TestCredential::new("api.example.com");
    let yaml = secret_yaml(
        "cred",
        "ns",
        "kubernetes.io/tls",
        &[
            ("tls.crt", &credential.cert_pem),
            ("tls.key", &credential.key_pem),
            (
                "ca.crt",
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            ),
        ],
    );
    one_error(
        &yaml,
        &["data.ca.crt:", "certificate 1 in ca.crt is not X.509"],
    );
}

#[test]
fn a_tls_secret_without_its_key_is_an_error() {
    let credential = TestCredential::new("api.example.com");
    let yaml = secret_yaml(
        "cred",
        "ns",
        "kubernetes.io/tls",
        &[("tls.crt", &credential.cert_pem)],
    );
    one_error(
        &yaml,
        &[
            "Secret ns/cred: data:",
            "has neither \"cert\" and \"key\" nor",
        ],
    );
}

#[test]
fn a_cacert_secret_needs_a_ca() {
    let yaml = secret_yaml("cred-cacert", "ns", "Opaque", &[("other", "x")]);
    one_error(
        &yaml,
        &[
            "Secret ns/cred-cacert: data:",
            "has neither \"cacert\" nor \"ca.crt\"",
        ],
    );
    let credential = TestCredential::new("api.example.com");
    valid(&secret_yaml(
        "cred-cacert",
        "ns",
        "Opaque",
        &[("cacert", &credential.ca_pem)],
    ));
}

#[test]
fn secrets_that_are_not_credentials_are_not_checked() {
    valid(&secret_yaml(
        "token",
        "ns",
        "kubernetes.io/service-account-token",
        &[("token", "abc")],
    ));
    valid(&secret_yaml(
        "app-config",
        "ns",
        "Opaque",
        &[("password", "x")],
    ));
}

#[test]
fn a_secret_defined_twice_is_an_error() {
    let credential = TestCredential::new("api.example.com");
    let one = credential.tls_secret("cred", "ns", false);
    one_error(
        &format!("{one}---\n{one}"),
        &["Secret ns/cred is defined again"],
    );
}

const V1_CERT: &str = include_str!("../../../../tests/fixtures/x509-v1/cert.pem");
const V1_KEY: &str = include_str!("../../../../tests/fixtures/x509-v1/key.pem");
const OTHER_KEY: &str = include_str!("../../../../tests/fixtures/x509-v1/other-key.pem");

fn v1_secret(key: &str) -> String {
    secret_yaml(
        "client-credential",
        "istio-system",
        "kubernetes.io/tls",
        &[("tls.crt", V1_CERT), ("tls.key", key)],
    )
}

#[test]
fn an_x509_v1_certificate_with_its_key_is_valid() {
    valid(&v1_secret(V1_KEY));
}

#[test]
fn an_x509_v1_certificate_with_another_key_is_an_error() {
    one_error(
        &v1_secret(OTHER_KEY),
        &["data.tls.key:", "does not match the certificate in tls.crt"],
    );
}
