//! `egress suggest`: one ServiceEntry per source namespace and unregistered host, that the control plane loads, validates and serves to that namespace instead of the fall-through clusters.

use serde_json::Value;
use shared::type_url;

use super::handling::snapshot;
use super::{destination, limits, observation, source};
use crate::egress::suggest::{dns_label, render, suggestions};
use crate::egress::{Decision, Destination, Inventory, InventoryFile, Protocol, Record};
use crate::translate::{self, test_proxies::sidecar_in};

/// What `default` and `jobs` reached: registered, passed through and
/// blocked, by name, by SNI and by address.
fn seen() -> Vec<(&'static str, Destination, &'static str)> {
    vec![
        (
            "default",
            destination("httpbin.org", 80, Protocol::Http),
            "PassthroughCluster",
        ),
        (
            "default",
            destination("httpbin.org", 443, Protocol::Tls),
            "PassthroughCluster",
        ),
        (
            "default",
            destination("www.baidu.com", 443, Protocol::Tls),
            "BlackHoleCluster",
        ),
        (
            "default",
            destination("203.0.113.7", 27017, Protocol::Tcp),
            "PassthroughCluster",
        ),
        (
            "default",
            destination("registered.example.com", 80, Protocol::Http),
            "default/registered",
        ),
        (
            "jobs",
            destination("httpbin.org", 80, Protocol::Http),
            "PassthroughCluster",
        ),
    ]
}

fn records() -> Vec<Record> {
    let mut inventory = Inventory::new(limits(100));
    for (namespace, to, handled_by) in seen() {
        inventory.observe(observation(
            &source(namespace, "sleep"),
            to,
            handled_by,
            Decision::Allowed,
            1,
        ));
    }
    InventoryFile::of(&inventory).records
}

#[test]
fn one_service_entry_per_namespace_and_host_with_every_port_seen() {
    let yaml = render(&suggestions(&records(), Some("jobs")));
    assert_eq!(
        yaml,
        "---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: httpbin-org
  namespace: jobs
spec:
  hosts:
  - \"httpbin.org\"
  ports:
  - number: 80
    name: http-80
    protocol: HTTP
  resolution: DNS
  location: MESH_EXTERNAL
  exportTo:
  - \"jobs\"
"
    );
    let all = suggestions(&records(), None);
    let hosts: Vec<_> = all
        .iter()
        .map(|s| (s.namespace.as_str(), s.host.as_str()))
        .collect();
    assert_eq!(
        hosts,
        [
            ("default", "httpbin.org"),
            ("default", "ip-203-0-113-7.egress.invalid"),
            ("default", "www.baidu.com"),
            ("jobs", "httpbin.org"),
        ],
        "registered destinations get none"
    );
    let httpbin = &all[0];
    assert_eq!(
        httpbin
            .ports
            .iter()
            .map(|(p, protocol)| (*p, *protocol))
            .collect::<Vec<_>>(),
        [(80, Protocol::Http), (443, Protocol::Tls)]
    );
}

#[test]
fn an_address_gets_a_generated_host_its_address_and_no_resolution() {
    let yaml = render(&suggestions(&records(), Some("default")));
    let document = yaml
        .split("---\n")
        .find(|d| d.contains("203.0.113.7"))
        .expect("the address's entry");
    assert!(document.starts_with("# 203.0.113.7 was reached by address only: ip-203-0-113-7.egress.invalid is a name generated for it"));
    assert!(document.contains("  name: ip-203-0-113-7\n"));
    assert!(document.contains("  addresses:\n  - \"203.0.113.7/32\"\n"));
    assert!(document.contains("    name: tcp-27017\n    protocol: TCP\n"));
    assert!(document.contains("  resolution: NONE\n"));
}

#[test]
fn names_are_dns_1123_labels() {
    assert_eq!(dns_label("www.baidu.com"), "www-baidu-com");
    assert_eq!(dns_label("_srv.Example..com"), "srv-example-com");
    let long = dns_label(&format!("{}.example.com", "a".repeat(80)));
    assert_eq!(long.len(), 63);
    assert!(
        long.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    );
}

fn named<'a>(items: &'a Value, name: &str) -> Option<&'a Value> {
    items.as_array()?.iter().find(|item| item["name"] == name)
}

/// The cluster `xds` sends `to` to: the route of its port for HTTP, the
/// chain of its SNI for TLS, the listener of its address for TCP.
fn served_cluster(xds: &Value, to: &Destination, host: &str) -> Option<String> {
    let cluster = match to.protocol {
        Protocol::Http => {
            let route = named(&xds["routes"], &to.port.to_string())?;
            let virtual_host = route["virtualHosts"].as_array()?.iter().find(|vh| {
                vh["domains"]
                    .as_array()
                    .is_some_and(|domains| domains.iter().any(|d| d == host))
            })?;
            &virtual_host["routes"][0]["route"]["cluster"]
        }
        Protocol::Tls => {
            let listener = named(&xds["listeners"], &format!("0.0.0.0_{}", to.port))?;
            let chain = listener["filterChains"].as_array()?.iter().find(|chain| {
                chain["filterChainMatch"]["serverNames"]
                    .as_array()
                    .is_some_and(|names| names.iter().any(|n| n == host))
            })?;
            &chain["filters"][0]["typedConfig"]["cluster"]
        }
        Protocol::Tcp => {
            let listener = named(&xds["listeners"], &format!("{}_{}", to.host, to.port))?;
            &listener["filterChains"][0]["filters"][0]["typedConfig"]["cluster"]
        }
    };
    cluster.as_str().map(str::to_string)
}

#[test]
fn the_suggestions_load_validate_and_serve_every_destination_seen() {
    let records = records();
    let yaml = render(&suggestions(&records, None));
    let config = snapshot(&yaml);
    assert_eq!(config.service_entries.len(), 4);
    for namespace in ["default", "jobs"] {
        let resources = translate::translate(&config, &[], &sidecar_in(namespace)).into_typed();
        let xds =
            translate::to_json(&resources, &[type_url::LISTENER, type_url::ROUTE]).expect("JSON");
        for (seen_from, to, handled_by) in seen() {
            if seen_from != namespace || !crate::egress::is_unregistered(handled_by) {
                continue;
            }
            let host = match to.host.parse::<std::net::IpAddr>() {
                Ok(_) => "ip-203-0-113-7.egress.invalid".to_string(),
                Err(_) => to.host.clone(),
            };
            assert_eq!(
                served_cluster(&xds, &to, &host),
                Some(format!("outbound|{}||{host}", to.port)),
                "{namespace} to {to:?}"
            );
        }
    }
}
