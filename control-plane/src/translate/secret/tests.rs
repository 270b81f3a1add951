//! The `kubernetes://` secrets as istiod serves them: per namespace, the `-cacert` convention, and dumps without private keys.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use proto::pb::envoy::extensions::transport_sockets::tls::v3::{Secret, secret};
use shared::node::{NodeId, NodeType};
use shared::type_url;

use super::*;
use crate::config::load::load_str;
use crate::config::model::secret::testing::{TestCredential, secret_yaml};
use crate::translate::Proxy;

fn snapshot(yaml: &str) -> ConfigSnapshot {
    load_str(Path::new("secrets.yaml"), yaml).unwrap_or_else(|errors| panic!("loads: {errors}"))
}

fn names(secrets: &[Secret]) -> Vec<&str> {
    secrets.iter().map(|s| s.name.as_str()).collect()
}

fn inline_bytes(source: Option<&DataSource>) -> &[u8] {
    match source.and_then(|s| s.specifier.as_ref()) {
        Some(data_source::Specifier::InlineBytes(bytes)) => bytes,
        other => panic!("inline bytes expected, got {other:?}"),
    }
}

#[test]
fn a_tls_secret_with_a_ca_gives_its_key_pair_and_its_cacert() {
    let credential = TestCredential::new("api.example.com");
    let snapshot = snapshot(&credential.tls_secret("client-cred", "istio-system", true));
    let secrets = build_credential_secrets(&snapshot, "istio-system");
    assert_eq!(
        names(&secrets),
        [
            "kubernetes://client-cred",
            "kubernetes://client-cred-cacert"
        ]
    );
    let Some(secret::Type::TlsCertificate(cert)) = &secrets[0].r#type else {
        panic!("a TLS certificate");
    };
    assert_eq!(
        inline_bytes(cert.certificate_chain.as_ref()),
        credential.cert_pem.as_bytes()
    );
    assert_eq!(
        inline_bytes(cert.private_key.as_ref()),
        credential.key_pem.as_bytes()
    );
    let Some(secret::Type::ValidationContext(ca)) = &secrets[1].r#type else {
        panic!("a validation context");
    };
    assert_eq!(
        inline_bytes(ca.trusted_ca.as_ref()),
        credential.ca_pem.as_bytes()
    );
}

#[test]
fn only_the_secrets_of_the_proxys_namespace_are_its() {
    let credential = TestCredential::new("api.example.com");
    let yaml = format!(
        "{}---\n{}",
        credential.tls_secret("cred", "istio-system", false),
        credential.tls_secret("other", "team-a", false)
    );
    let snapshot = snapshot(&yaml);
    assert_eq!(
        names(&build_credential_secrets(&snapshot, "istio-system")),
        ["kubernetes://cred"]
    );
    assert_eq!(
        names(&build_credential_secrets(&snapshot, "team-a")),
        ["kubernetes://other"]
    );
    assert!(build_credential_secrets(&snapshot, "default").is_empty());
}

#[test]
fn a_cacert_secret_is_the_ca_of_its_credential_over_the_credentials_own_ca() {
    let credential = TestCredential::new("api.example.com");
    let other_ca = TestCredential::new("ca.example.com").ca_pem;
    let yaml = format!(
        "{}---\n{}",
        credential.tls_secret("cred", "ns", true),
        secret_yaml("cred-cacert", "ns", "Opaque", &[("cacert", &other_ca)])
    );
    let secrets = build_credential_secrets(&snapshot(&yaml), "ns");
    assert_eq!(
        names(&secrets),
        ["kubernetes://cred", "kubernetes://cred-cacert"]
    );
    let Some(secret::Type::ValidationContext(ca)) = &secrets[1].r#type else {
        panic!("a validation context");
    };
    assert_eq!(inline_bytes(ca.trusted_ca.as_ref()), other_ca.as_bytes());
}

#[test]
fn a_ca_only_secret_gives_only_its_cacert() {
    let credential = TestCredential::new("api.example.com");
    let yaml = secret_yaml("ca", "ns", "Opaque", &[("ca.crt", &credential.ca_pem)]);
    assert_eq!(
        names(&build_credential_secrets(&snapshot(&yaml), "ns")),
        ["kubernetes://ca-cacert"]
    );
}

#[test]
fn secrets_of_other_types_are_never_served() {
    let yaml = secret_yaml(
        "token",
        "ns",
        "kubernetes.io/service-account-token",
        &[("tls.crt", "x"), ("tls.key", "y")],
    );
    assert!(build_credential_secrets(&snapshot(&yaml), "ns").is_empty());
}

#[test]
fn a_reference_over_ads_is_istiods() {
    let sds = sds_over_ads(credential_ca_name("cred"));
    assert_eq!(sds.name, "kubernetes://cred-cacert");
    let source = sds.sds_config.expect("a config source");
    assert!(matches!(
        source.config_source_specifier,
        Some(config_source::ConfigSourceSpecifier::Ads(_))
    ));
    assert_eq!(source.resource_api_version, ApiVersion::V3 as i32);
}

fn proxy(node_type: NodeType, namespace: &str, labels: &[(&str, &str)]) -> Proxy {
    Proxy {
        id: NodeId::new(node_type, "10.0.0.1", "pod-1", namespace).to_string(),
        node_type,
        namespace: namespace.into(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ips: vec!["10.0.0.1".into()],
        service_account: "sa".into(),
        dns_capture: false,
    }
}

fn egress_gateway() -> Proxy {
    proxy(
        NodeType::Router,
        "istio-system",
        &[("istio", "egressgateway")],
    )
}

/// A Gateway in `istio-system` selecting `selector`, with one MUTUAL HTTPS
/// server of `credentialName: <credential>`, and a VirtualService bound to it.
fn mutual_gateway(selector: &str, credential: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {{name: gw, namespace: istio-system}}\n\
         spec:\n  selector: {{istio: {selector}}}\n  servers:\n\
         \x20 - port: {{number: 443, name: https, protocol: HTTPS}}\n    hosts: [api.example.com]\n    tls: {{mode: MUTUAL, credentialName: {credential}}}\n---\n\
         apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: vs, namespace: istio-system}}\n\
         spec:\n  hosts: [api.example.com]\n  gateways: [gw]\n  http:\n  - route:\n    - destination: {{host: api.example.com, port: {{number: 80}}}}\n---\n{SERVICE_ENTRY}"
    )
}

const SERVICE_ENTRY: &str = "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: api, namespace: istio-system}\n\
    spec:\n  hosts: [api.example.com]\n  ports:\n  - {number: 80, name: http, protocol: HTTP}\n  resolution: DNS\n";

/// A DestinationRule in `team-a` originating mutual TLS with
/// `credentialName: client-cred`, applying to the proxies `selector` matches.
fn originating_rule(selector: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: api, namespace: team-a}}\n\
         spec:\n  host: api.example.com\n{selector}  trafficPolicy:\n    tls: {{mode: MUTUAL, credentialName: client-cred, sni: api.example.com}}\n---\n{SERVICE_ENTRY}"
    )
}

fn served(yaml: &str, proxy: &Proxy) -> Vec<String> {
    let snapshot = snapshot(yaml);
    let errors = crate::config::validate::check(snapshot.clone()).errors;
    assert!(errors.is_empty(), "{errors:#?}");
    crate::translate::translate(&snapshot, &[], proxy)
        .secrets
        .into_iter()
        .map(|secret| secret.name)
        .collect()
}

#[test]
fn a_gateway_is_served_the_credential_of_a_server_that_selects_it_and_no_other() {
    let credential = TestCredential::new("api.example.com");
    let yaml = format!(
        "{}---\n{}---\n{}",
        credential.tls_secret("gw-cred", "istio-system", true),
        credential.tls_secret("unreferenced", "istio-system", true),
        mutual_gateway("egressgateway", "gw-cred")
    );
    assert_eq!(
        served(&yaml, &egress_gateway()),
        ["kubernetes://gw-cred", "kubernetes://gw-cred-cacert"]
    );
}

#[test]
fn a_gateway_no_server_selects_is_served_no_credential() {
    let credential = TestCredential::new("api.example.com");
    let yaml = format!(
        "{}---\n{}",
        credential.tls_secret("gw-cred", "istio-system", true),
        mutual_gateway("ingressgateway", "gw-cred")
    );
    assert!(served(&yaml, &egress_gateway()).is_empty());
}

#[test]
fn a_sidecar_is_served_the_credential_of_a_destination_rule_that_selects_it() {
    let credential = TestCredential::new("api.example.com");
    let secrets = format!(
        "{}---\n{}---\n",
        credential.tls_secret("client-cred", "team-a", false),
        credential.tls_secret("unreferenced", "team-a", false),
    );
    let sleep = proxy(NodeType::Sidecar, "team-a", &[("app", "sleep")]);
    let selects = "  workloadSelector:\n    matchLabels: {app: sleep}\n";
    let applies = format!("{secrets}{}", originating_rule(selects));
    assert_eq!(served(&applies, &sleep), ["kubernetes://client-cred"]);
    let selected = "  workloadSelector:\n    matchLabels: {app: other}\n";
    let elsewhere = format!("{secrets}{}", originating_rule(selected));
    assert!(served(&elsewhere, &sleep).is_empty());
    let for_every_proxy = format!("{secrets}{}", originating_rule(""));
    assert!(
        served(&for_every_proxy, &sleep).is_empty(),
        "istiod gives a sidecar no TLS for the credential of a rule without workloadSelector"
    );
}

#[test]
fn a_proxy_of_another_namespace_is_not_served_a_credential_its_config_names() {
    let credential = TestCredential::new("api.example.com");
    let yaml = format!(
        "{}---\n{}",
        credential.tls_secret("client-cred", "istio-system", false),
        originating_rule("")
    );
    let sleep = proxy(NodeType::Sidecar, "team-a", &[("app", "sleep")]);
    assert!(served(&yaml, &sleep).is_empty());
}

#[test]
fn a_dump_shows_the_certificate_and_redacts_the_private_key() {
    let credential = TestCredential::new("api.example.com");
    let yaml = format!(
        "{}---\n{}",
        credential.tls_secret("cred", "istio-system", true),
        mutual_gateway("egressgateway", "cred")
    );
    let typed = crate::translate::translate(&snapshot(&yaml), &[], &egress_gateway()).into_typed();
    let json = crate::translate::to_json(&typed, &[type_url::SECRET]).expect("JSON");
    let text = json.to_string();
    assert!(text.contains("kubernetes://cred"), "{text}");
    assert!(text.contains("[redacted]"), "{text}");
    assert!(
        text.contains(&STANDARD.encode(&credential.cert_pem)),
        "{text}"
    );
    assert!(
        !text.contains(&STANDARD.encode(&credential.key_pem)),
        "{text}"
    );
}
