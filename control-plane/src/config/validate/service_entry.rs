//! ServiceEntry checks: hosts, addresses, ports, resolution and endpoints,
//! and protocol conflicts between the entries of one namespace.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use super::check::Check;
use super::syntax::is_ip_or_cidr;
use super::workload_entry::UNIX_SOCKET_PREFIX;
use super::{Finding, describe};
use crate::config::error::{ConfigError, Location, Problem};
use crate::config::model::{Resolution, ServiceEntry};
use crate::config::{ConfigSnapshot, Kind, Resource};

impl Check<'_> {
    pub(super) fn service_entry(&mut self, spec: &ServiceEntry) {
        self.hosts("spec.hosts", &spec.hosts);
        for (index, address) in spec.addresses.iter().enumerate() {
            if address.starts_with(UNIX_SOCKET_PREFIX) {
                self.unix_socket(format!("spec.addresses[{index}]"), address);
            } else if !is_ip_or_cidr(address) {
                let address = address.clone();
                self.report(
                    format!("spec.addresses[{index}]"),
                    Problem::InvalidAddress { address },
                );
            }
        }
        self.port_list("spec.ports", &spec.ports);
        if !spec.endpoints.is_empty() && spec.workload_selector.is_some() {
            self.report("spec.workloadSelector", Problem::EndpointsAndSelector);
        }
        let is_static = spec.resolution == Resolution::Static;
        if is_static && spec.endpoints.is_empty() && spec.workload_selector.is_none() {
            self.report("spec.resolution", Problem::StaticWithoutEndpoints);
        }
        let dns = match spec.resolution {
            Resolution::Dns => Some("DNS"),
            Resolution::DnsRoundRobin => Some("DNS_ROUND_ROBIN"),
            Resolution::None | Resolution::Static => None,
        };
        if let Some(resolution) = dns
            && spec.endpoints.is_empty()
        {
            for (index, host) in spec.hosts.iter().enumerate() {
                if host.starts_with('*') {
                    let host = host.clone();
                    self.report(
                        format!("spec.hosts[{index}]"),
                        Problem::WildcardWithDns { resolution, host },
                    );
                }
            }
        }
        let port_names: Vec<&str> = spec.ports.iter().map(|port| port.name.as_str()).collect();
        for (index, endpoint) in spec.endpoints.iter().enumerate() {
            let field = format!("spec.endpoints[{index}]");
            self.workload_entry(endpoint, &field, is_static);
            for name in endpoint.ports.keys() {
                if !port_names.contains(&name.as_str()) {
                    let name = name.clone();
                    self.report(
                        format!("{field}.ports.{name}"),
                        Problem::UnknownEndpointPort { name },
                    );
                }
            }
        }
    }
}

/// Two ServiceEntries of one namespace giving one host and port different
/// protocols: Istio would pick one of them arbitrarily.
pub(super) fn service_entry_conflicts(snapshot: &ConfigSnapshot, findings: &mut Vec<Finding>) {
    struct Seen<'a> {
        protocol: String,
        resource: &'a Resource<ServiceEntry>,
    }
    let mut seen: HashMap<(&str, String, u32), Seen<'_>> = HashMap::new();
    for (position, resource) in snapshot.service_entries.iter().enumerate() {
        for host in &resource.spec.hosts {
            for (index, port) in resource.spec.ports.iter().enumerate() {
                let Some(protocol) = &port.protocol else {
                    continue;
                };
                let protocol = protocol.to_ascii_uppercase();
                let key = (
                    resource.meta.namespace.as_str(),
                    host.to_ascii_lowercase(),
                    port.number,
                );
                match seen.entry(key) {
                    Entry::Occupied(first) => {
                        let first = first.get();
                        if first.protocol == protocol || std::ptr::eq(first.resource, resource) {
                            continue;
                        }
                        let other = &first.resource.meta;
                        let problem = Problem::ConflictingProtocol {
                            host: host.clone(),
                            number: port.number,
                            protocol,
                            other_protocol: first.protocol.clone(),
                            other: format!(
                                "ServiceEntry {}/{} ({})",
                                other.namespace,
                                other.name,
                                describe(&first.resource.origin)
                            ),
                        };
                        let location = Location::resource(Kind::ServiceEntry, resource)
                            .at(format!("spec.ports[{index}].protocol"));
                        findings.push(Finding {
                            subject: (Kind::ServiceEntry, position),
                            error: ConfigError::new(location, problem),
                        });
                    }
                    Entry::Vacant(slot) => {
                        slot.insert(Seen { protocol, resource });
                    }
                }
            }
        }
    }
}
