//! TCP and TLS services an HTTP service hides on a port's wildcard sidecar
//! listener (`0.0.0.0_<port>`). istiod serves both there, telling them
//! apart by protocol sniffing; this control plane does not sniff: the HTTP
//! service keeps the listener, the other is not served, and this warning
//! (counted as `pilot_conflict_outbound_listener_tcp_over_current_http`)
//! says so, naming both resources.

use std::collections::HashMap;

use super::{Finding, describe};
use crate::config::error::{ConfigError, Location, Problem};
use crate::config::model::ServiceEntry;
use crate::config::{ConfigSnapshot, Kind, Resource};
use crate::translate::registry::{Protocol, ServiceAddress};

/// Every TCP or TLS service port that an HTTP service on the same port
/// hides, as a warning on the hidden one.
pub(super) fn tcp_over_http(snapshot: &ConfigSnapshot, findings: &mut Vec<Finding>) {
    let mut http_by_port: HashMap<u32, Vec<(&str, &Resource<ServiceEntry>)>> = HashMap::new();
    for resource in &snapshot.service_entries {
        for port in resource
            .spec
            .ports
            .iter()
            .filter(|p| Protocol::of(p).is_http())
        {
            let http = http_by_port.entry(port.number).or_default();
            http.extend(resource.spec.hosts.iter().map(|h| (h.as_str(), resource)));
        }
    }
    for (position, resource) in snapshot.service_entries.iter().enumerate() {
        if !on_the_wildcard(&resource.spec) {
            continue;
        }
        for (index, port) in resource.spec.ports.iter().enumerate() {
            if Protocol::of(port).is_http() {
                continue;
            }
            let Some(http) = http_by_port.get(&port.number) else {
                continue;
            };
            for host in &resource.spec.hosts {
                // The same host with two protocols is an error of its own.
                let Some((http_host, http)) = http.iter().find(|(h, _)| h != host) else {
                    continue;
                };
                let problem = Problem::HiddenByHttp {
                    host: host.clone(),
                    number: port.number,
                    http_host: http_host.to_string(),
                    http: format!(
                        "ServiceEntry {}/{} ({})",
                        http.meta.namespace,
                        http.meta.name,
                        describe(&http.origin)
                    ),
                };
                let location = Location::resource(Kind::ServiceEntry, resource)
                    .at(format!("spec.ports[{index}]"));
                findings.push(Finding {
                    subject: (Kind::ServiceEntry, position),
                    error: ConfigError::new(location, problem),
                });
            }
        }
    }
}

/// How many service ports an HTTP service hides (the value of
/// `pilot_conflict_outbound_listener_tcp_over_current_http`).
pub fn tcp_over_http_count(snapshot: &ConfigSnapshot) -> usize {
    let mut findings = Vec::new();
    tcp_over_http(snapshot, &mut findings);
    findings.len()
}

/// Whether a ServiceEntry's TCP and TLS ports go on the wildcard listener:
/// without addresses, or with a range (a single address, `/32` included,
/// has a listener of its own).
fn on_the_wildcard(spec: &ServiceEntry) -> bool {
    spec.addresses.is_empty()
        || spec
            .addresses
            .iter()
            .any(|a| matches!(ServiceAddress::parse(a), Some(ServiceAddress::Cidr { .. })))
}
