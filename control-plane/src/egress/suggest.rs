//! `control-plane egress suggest`: a ServiceEntry for every unregistered destination a namespace reached, one per source namespace and host, as a multi-document YAML stream.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::net::IpAddr;

use super::handling::is_unregistered;
use super::inventory::Record;
use super::observation::Protocol;

/// The longest DNS-1123 label, the longest name given.
const MAX_NAME_LEN: usize = 63;
/// The domain of the hosts generated for destinations seen by address only
/// (`.invalid` never resolves, RFC 2606; resolution NONE never asks).
const ADDRESS_HOST_DOMAIN: &str = "egress.invalid";

/// One suggested ServiceEntry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suggestion {
    /// The source namespace: the ServiceEntry's, and the one it is
    /// exported to.
    pub namespace: String,
    /// The host as seen (a name), or as generated for an address.
    pub host: String,
    /// Set when the destination was seen by address only.
    pub address: Option<IpAddr>,
    /// Each port and the protocol seen on it (HTTP over TLS over TCP when
    /// several were).
    pub ports: BTreeMap<u16, Protocol>,
}

/// The suggestions for the unregistered destinations in `records`, of
/// `namespace` only when given, sorted by namespace and host.
pub fn suggestions(records: &[Record], namespace: Option<&str>) -> Vec<Suggestion> {
    let mut by_host: BTreeMap<(String, String), Suggestion> = BTreeMap::new();
    for record in records {
        let Some(destination) = &record.destination else {
            continue;
        };
        if !is_unregistered(&record.handled_by)
            || namespace.is_some_and(|ns| ns != record.source.namespace)
        {
            continue;
        }
        let address = destination.host.parse::<IpAddr>().ok();
        let host = address.map_or_else(|| destination.host.clone(), address_host);
        let suggestion = by_host
            .entry((record.source.namespace.clone(), host.clone()))
            .or_insert_with(|| Suggestion {
                namespace: record.source.namespace.clone(),
                host,
                address,
                ports: BTreeMap::new(),
            });
        let protocol = suggestion
            .ports
            .entry(destination.port)
            .or_insert(destination.protocol);
        *protocol = (*protocol).min(destination.protocol);
    }
    by_host.into_values().collect()
}

/// The ServiceEntries, each document introduced by `---`.
pub fn render(suggestions: &[Suggestion]) -> String {
    let mut names: BTreeSet<(String, String)> = BTreeSet::new();
    let mut out = String::new();
    for suggestion in suggestions {
        let base = suggestion.address.map_or_else(
            || suggestion.host.clone(),
            |address| format!("ip-{}", dashed(address)),
        );
        let name = unique_name(&mut names, &suggestion.namespace, &base);
        out.push_str("---\n");
        if let Some(address) = suggestion.address {
            let _ = writeln!(
                out,
                "# {address} was reached by address only: {} is a name generated for it (a ServiceEntry needs a host); rename it freely.",
                suggestion.host
            );
        }
        let _ = write!(
            out,
            "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata:\n  name: {name}\n  namespace: {namespace}\nspec:\n  hosts:\n  - \"{host}\"\n",
            namespace = suggestion.namespace,
            host = suggestion.host,
        );
        if let Some(address) = suggestion.address {
            let bits = if address.is_ipv4() { 32 } else { 128 };
            let _ = write!(out, "  addresses:\n  - \"{address}/{bits}\"\n");
        }
        out.push_str("  ports:\n");
        for (port, protocol) in &suggestion.ports {
            let _ = write!(
                out,
                "  - number: {port}\n    name: {}-{port}\n    protocol: {protocol}\n",
                protocol.as_str().to_ascii_lowercase()
            );
        }
        let resolution = if suggestion.address.is_some() {
            "NONE"
        } else {
            "DNS"
        };
        let _ = write!(
            out,
            "  resolution: {resolution}\n  location: MESH_EXTERNAL\n  exportTo:\n  - \"{}\"\n",
            suggestion.namespace
        );
    }
    out
}

/// The host generated for a destination seen by address only.
fn address_host(address: IpAddr) -> String {
    format!("ip-{}.{ADDRESS_HOST_DOMAIN}", dashed(address))
}

/// `address` with `-` for its separators.
fn dashed(address: IpAddr) -> String {
    address
        .to_string()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// A DNS-1123 label for `base` (lowercase letters, digits and `-`, at most
/// 63, starting and ending with a letter or digit), distinct from the
/// names already given in `namespace`.
fn unique_name(names: &mut BTreeSet<(String, String)>, namespace: &str, base: &str) -> String {
    let base = dns_label(base);
    let mut name = base.clone();
    let mut n = 2;
    while names.contains(&(namespace.to_string(), name.clone())) {
        let suffix = format!("-{n}");
        let mut stem = base.clone();
        stem.truncate(MAX_NAME_LEN - suffix.len());
        name = format!("{}{suffix}", stem.trim_end_matches('-'));
        n += 1;
    }
    names.insert((namespace.to_string(), name.clone()));
    name
}

/// `host` as a DNS-1123 label: `.`, `_` and anything else not a letter or
/// digit become `-`, runs of them one, cut to 63.
pub fn dns_label(host: &str) -> String {
    let mut label = String::new();
    for c in host.to_ascii_lowercase().chars() {
        if c.is_ascii_alphanumeric() {
            label.push(c);
        } else if !label.ends_with('-') {
            label.push('-');
        }
    }
    label.truncate(MAX_NAME_LEN);
    let label = label.trim_matches('-').to_string();
    if label.is_empty() {
        "egress".to_string()
    } else {
        label
    }
}
