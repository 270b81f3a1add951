//! The name table as istiod builds it: which hosts, with which addresses, for which proxies.

use std::path::Path;

use proto::nds::NameTable;

use super::super::registry::MeshView;
use super::super::test_proxies::{egress_gateway, sidecar_with};
use super::super::{Proxy, translate};
use super::build_name_table;
use crate::config::ConfigSnapshot;
use crate::config::load::load_str;

fn snapshot(yaml: &str) -> ConfigSnapshot {
    load_str(Path::new("cfg.yaml"), yaml).unwrap_or_else(|errors| panic!("loads: {errors}"))
}

fn capturing_sidecar() -> Proxy {
    Proxy {
        dns_capture: true,
        ..sidecar_with(&[("app", "sleep")])
    }
}

fn table(yaml: &str, proxy: &Proxy) -> Option<NameTable> {
    let snapshot = snapshot(yaml);
    build_name_table(&MeshView::new(&snapshot, &[], proxy))
}

/// The table a sidecar that captures DNS gets for `yaml`.
fn capturing_table(yaml: &str) -> NameTable {
    table(yaml, &capturing_sidecar()).expect("a capturing sidecar gets a table")
}

/// `host` → its IPs, for compact assertions.
fn ips(table: &NameTable) -> Vec<(&str, Vec<&str>)> {
    table
        .table
        .iter()
        .map(|(host, info)| (host.as_str(), info.ips.iter().map(String::as_str).collect()))
        .collect()
}

fn entry(name: &str, namespace: &str, body: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: {name}
  namespace: {namespace}
spec:
{body}---
"
    )
}

#[test]
fn hosts_with_addresses_answer_with_their_ips_from_the_external_registry() {
    let yaml = entry(
        "db",
        "default",
        "  hosts: [db.example.com, db-alias.example.com]
  addresses: [240.0.0.1, 2001:db8::1, 240.0.0.2/32]
  ports: [{number: 5432, name: tcp, protocol: TCP}]
  resolution: DNS
",
    );
    let table = capturing_table(&yaml);
    let all = vec!["240.0.0.1", "2001:db8::1", "240.0.0.2"];
    assert_eq!(
        ips(&table),
        vec![
            ("db-alias.example.com", all.clone()),
            ("db.example.com", all)
        ]
    );
    let info = &table.table["db.example.com"];
    assert_eq!(info.registry, "External");
    assert_eq!((info.shortname.as_str(), info.namespace.as_str()), ("", ""));
}

#[test]
fn dns_hosts_without_addresses_and_cidr_ranges_are_left_to_upstream_dns() {
    let yaml = entry(
        "httpbin",
        "default",
        "  hosts: [httpbin.org]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: DNS
",
    ) + &entry(
        "range",
        "default",
        "  hosts: [range.example.com]
  addresses: [10.20.0.0/16]
  ports: [{number: 443, name: tls, protocol: TLS}]
  resolution: NONE
",
    ) + &entry(
        "fixed",
        "default",
        "  hosts: [fixed.example.com]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 10.9.0.1}]
",
    );
    let table = capturing_table(&yaml);
    assert!(table.table.is_empty(), "{:?}", table.table);
}

#[test]
fn passthrough_hosts_without_addresses_answer_with_their_endpoint_ips() {
    let yaml = entry(
        "legacy",
        "default",
        "  hosts: [legacy.example.com]
  ports: [{number: 80, name: http, protocol: HTTP}, {number: 8080, name: alt, protocol: HTTP}]
  resolution: NONE
  endpoints: [{address: 10.9.0.2}, {address: 10.9.0.1}, {address: not-an-ip.example.com}]
",
    );
    let table = capturing_table(&yaml);
    assert_eq!(
        ips(&table),
        vec![("legacy.example.com", vec!["10.9.0.1", "10.9.0.2"])]
    );
}

#[test]
fn entries_of_one_host_merge_their_ips_and_invisible_ones_are_left_out() {
    let yaml = entry(
        "api-a",
        "default",
        "  hosts: [api.example.com]
  addresses: [240.0.0.10]
  ports: [{number: 80, name: http, protocol: HTTP}]
",
    ) + &entry(
        "api-b",
        "default",
        "  hosts: [api.example.com]
  addresses: [240.0.0.11]
  ports: [{number: 8080, name: http, protocol: HTTP}]
",
    ) + &entry(
        "private",
        "other",
        "  hosts: [private.example.com]
  addresses: [240.0.0.12]
  exportTo: ['.']
  ports: [{number: 80, name: http, protocol: HTTP}]
",
    );
    let table = capturing_table(&yaml);
    assert_eq!(
        ips(&table),
        vec![("api.example.com", vec!["240.0.0.10", "240.0.0.11"])]
    );
}

#[test]
fn only_sidecars_that_capture_dns_get_a_table() {
    let yaml = entry(
        "db",
        "default",
        "  hosts: [db.example.com]
  addresses: [240.0.0.1]
  ports: [{number: 5432, name: tcp, protocol: TCP}]
",
    );
    assert_eq!(table(&yaml, &sidecar_with(&[("app", "sleep")])), None);
    let gateway = Proxy {
        dns_capture: true,
        ..egress_gateway()
    };
    assert_eq!(table(&yaml, &gateway), None);
    let typed = translate(&snapshot(&yaml), &[], &capturing_sidecar()).into_typed();
    let served = &typed[shared::type_url::NAME_TABLE];
    assert_eq!(served.keys().collect::<Vec<_>>(), vec![""]);
}

#[test]
fn dns_capture_is_read_from_node_metadata_as_istiod_reads_a_boolean() {
    let node = capturing_sidecar().to_node();
    assert!(Proxy::from_node(&node).expect("parses").dns_capture);
    let mut node = sidecar_with(&[]).to_node();
    assert!(!Proxy::from_node(&node).expect("parses").dns_capture);
    for (value, capture) in [
        ("True", true),
        ("1", true),
        ("false", false),
        ("yes", false),
    ] {
        let metadata = node.metadata.get_or_insert_with(Default::default);
        metadata.fields.insert(
            shared::node::META_DNS_CAPTURE.to_string(),
            proto::wkt::Value {
                kind: Some(proto::wkt::value::Kind::StringValue(value.to_string())),
            },
        );
        assert_eq!(
            Proxy::from_node(&node).expect("parses").dns_capture,
            capture,
            "{value}"
        );
    }
}
