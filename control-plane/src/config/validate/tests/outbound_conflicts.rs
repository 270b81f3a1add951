//! A TCP or TLS service that an HTTP service hides on the wildcard sidecar
//! listener of their port is a warning naming both resources; services
//! with addresses of their own are not hidden.

use super::*;
use crate::test_yaml::external_service_entry;

/// A MESH_EXTERNAL ServiceEntry with one port 8000 of `protocol`.
fn entry(name: &str, host: &str, addresses: &str, protocol: &str) -> String {
    external_service_entry(name, host, addresses, 8000, protocol)
}

fn warnings(text: &str) -> Vec<ConfigError> {
    let snapshot =
        load_str(Path::new("cfg.yaml"), text).unwrap_or_else(|errors| panic!("loads: {errors}"));
    let checked = check(snapshot);
    assert!(checked.errors.is_empty(), "{:?}", checked.errors);
    assert_eq!(
        checked.snapshot.service_entries.len(),
        text.matches("kind: ServiceEntry").count(),
        "warnings leave every resource served"
    );
    checked.warnings
}

#[test]
fn a_tcp_service_without_addresses_hidden_by_http_is_a_warning_naming_both() {
    let text =
        entry("web", "web.example.com", "[]", "HTTP") + &entry("db", "db.example.com", "[]", "TCP");
    let warnings = warnings(&text);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].severity(), Severity::Warning);
    let line = warnings[0].to_string();
    for part in [
        "ServiceEntry default/db",
        "spec.ports[0]",
        "host \"db.example.com\" port 8000",
        "0.0.0.0_8000",
        "HTTP host \"web.example.com\" of ServiceEntry default/web",
        "is not served",
        "give this ServiceEntry an address",
    ] {
        assert!(line.contains(part), "{part:?} not in {line:?}");
    }
    let snapshot = load_str(Path::new("cfg.yaml"), &text).unwrap();
    assert_eq!(tcp_over_http_count(&snapshot), 1);
}

#[test]
fn tls_and_ranges_are_on_the_wildcard_too() {
    let text = entry("web", "web.example.com", "[]", "HTTP")
        + &entry("api", "api.example.com", "[]", "TLS")
        + &entry("ledger", "ledger.example.com", "[10.1.0.0/16]", "TCP");
    let hidden: Vec<String> = warnings(&text).iter().map(|w| w.to_string()).collect();
    assert_eq!(hidden.len(), 2, "{hidden:#?}");
    assert!(hidden[0].contains("\"api.example.com\""), "{hidden:?}");
    assert!(hidden[1].contains("\"ledger.example.com\""), "{hidden:?}");
}

#[test]
fn services_with_an_address_of_their_own_are_not_hidden() {
    let text = entry("web", "web.example.com", "[]", "HTTP")
        + &entry("db", "db.example.com", "[10.0.0.7]", "TCP")
        + &entry("mongo", "mongo.example.com", "[10.0.0.8/32]", "MONGO")
        + &entry("api", "api.example.com", "[10.0.0.9]", "TLS")
        + &entry("grpc", "grpc.example.com", "[]", "GRPC");
    assert!(warnings(&text).is_empty());
    let snapshot = load_str(Path::new("cfg.yaml"), &text).unwrap();
    assert_eq!(tcp_over_http_count(&snapshot), 0);
}

#[test]
fn without_an_http_service_on_the_port_nothing_is_hidden() {
    let text =
        entry("db", "db.example.com", "[]", "TCP") + &entry("api", "api.example.com", "[]", "TLS");
    assert!(warnings(&text).is_empty());
}
