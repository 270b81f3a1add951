//! `/certs` in Envoy's shape: the certificates in use, each with its serial
//! number, subject alt names and validity — the proxy's own identity first
//! (`default` and `ROOTCA`), then the secrets the control plane sent.
//! Certificates only; keys never appear here.

use std::time::SystemTime;

use serde_json::{Value, json};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::identity::{serial_number, x509_time};
use crate::model::secret::{Secret, Secrets};
use crate::store::ConfigStore;
use shared::naming::{SDS_ROOT_CA, SDS_WORKLOAD_CERTIFICATE};

/// `{"certificates": [{"ca_cert": [...], "cert_chain": [...]}, ...]}`.
pub fn render(store: &ConfigStore, now: SystemTime) -> Value {
    let config = store.load();
    let mut certificates = Vec::new();
    if !config.secrets.local.is_empty() {
        certificates.push(context(
            config.secrets.local.get(SDS_ROOT_CA).map(|s| &**s),
            config
                .secrets
                .local
                .get(SDS_WORKLOAD_CERTIFICATE)
                .map(|s| &**s),
            now,
        ));
    }
    certificates.extend(
        sorted(&config.secrets.ads)
            .into_iter()
            .map(|secret| match secret {
                Secret::Validation(_) => context(Some(secret), None, now),
                Secret::Certificate(_) => context(None, Some(secret), now),
            }),
    );
    json!({ "certificates": certificates })
}

fn sorted(secrets: &Secrets) -> Vec<&Secret> {
    let mut named: Vec<_> = secrets.iter().collect();
    named.sort_by(|a, b| a.0.cmp(b.0));
    named.into_iter().map(|(_, secret)| &**secret).collect()
}

/// One TLS context: its roots and its certificate chain.
fn context(roots: Option<&Secret>, chain: Option<&Secret>, now: SystemTime) -> Value {
    let details = |ders: &[Vec<u8>]| -> Vec<Value> {
        ders.iter().filter_map(|der| details(der, now)).collect()
    };
    let ca_cert = match roots {
        Some(Secret::Validation(roots)) => details(roots),
        _ => Vec::new(),
    };
    let cert_chain = match chain {
        Some(Secret::Certificate(cert)) => details(&cert.chain),
        _ => Vec::new(),
    };
    json!({ "ca_cert": ca_cert, "cert_chain": cert_chain })
}

/// Envoy's `CertificateDetails` of one certificate.
fn details(der: &[u8], now: SystemTime) -> Option<Value> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let validity = cert.validity();
    let not_before = x509_time(validity.not_before);
    let not_after = x509_time(validity.not_after);
    let days_left = not_after
        .duration_since(now)
        .map_or(0, |left| left.as_secs() / 86_400);
    let subject_alt_names: Vec<Value> = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|sans| {
            sans.value
                .general_names
                .iter()
                .filter_map(|name| match name {
                    GeneralName::URI(uri) => Some(json!({ "uri": uri })),
                    GeneralName::DNSName(dns) => Some(json!({ "dns": dns })),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    Some(json!({
        "path": "<inline>",
        "serial_number": serial_number(cert.raw_serial()),
        "subject_alt_names": subject_alt_names,
        "days_until_expiration": days_left.to_string(),
        "valid_from": humantime::format_rfc3339_seconds(not_before).to_string(),
        "expiration_time": humantime::format_rfc3339_seconds(not_after).to_string(),
    }))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::identity::SpiffeId;
    use crate::testing::fake_ca::TestCa;

    #[test]
    fn shows_the_proxy_certificate_and_root_as_envoy_does() {
        let store = ConfigStore::new(Box::new(|_| Ok(())));
        assert_eq!(
            render(&store, SystemTime::now()),
            json!({ "certificates": [] })
        );
        let id = SpiffeId {
            trust_domain: "cluster.local".into(),
            namespace: "default".into(),
            service_account: "sleep".into(),
        };
        let certificate =
            TestCa::default().workload_certificate(&id, Duration::from_secs(3 * 86_400));
        store.set_identity(&certificate).unwrap();
        let certs = render(&store, SystemTime::now());
        let context = &certs["certificates"][0];
        let leaf = &context["cert_chain"][0];
        assert_eq!(leaf["serial_number"], certificate.serial());
        assert_eq!(
            leaf["subject_alt_names"],
            json!([{ "uri": "spiffe://cluster.local/ns/default/sa/sleep" }])
        );
        assert_eq!(
            leaf["days_until_expiration"], "2",
            "whole days left, as Envoy counts"
        );
        assert_eq!(context["ca_cert"].as_array().map(Vec::len), Some(1));
        assert!(!certs.to_string().contains("PRIVATE"));
    }
}
