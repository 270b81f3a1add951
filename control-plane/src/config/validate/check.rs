//! The checks every kind shares: one resource's error reporting, its
//! metadata, hosts and ports.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use super::Finding;
use super::syntax::{is_dns_label, is_dns_subdomain, is_host, is_protocol};
use crate::config::error::{ConfigError, Location, Problem};
use crate::config::gateway_api::convert::PARENT_ANNOTATION;
use crate::config::model::ServicePort;
use crate::config::{Kind, Meta, Origin, Resource};

/// Checks of one resource, reporting against its location.
pub(super) struct Check<'a> {
    kind: Kind,
    pub(super) meta: &'a Meta,
    origin: &'a Origin,
    /// The resource's index among those of its kind in the snapshot.
    index: usize,
    findings: &'a mut Vec<Finding>,
}

impl<'a> Check<'a> {
    pub(super) fn new<T>(
        kind: Kind,
        resource: &'a Resource<T>,
        index: usize,
        findings: &'a mut Vec<Finding>,
    ) -> Self {
        Self {
            kind,
            meta: &resource.meta,
            origin: &resource.origin,
            index,
            findings,
        }
    }

    pub(super) fn report(&mut self, field: impl Into<String>, problem: Problem) {
        let location = Location::of(self.kind, self.meta, self.origin).at(field);
        self.findings.push(Finding {
            subject: (self.kind, self.index),
            error: ConfigError::new(location, problem),
        });
    }

    pub(super) fn meta(&mut self) {
        let name = &self.meta.name;
        // istiod names what it generates from the Gateway API itself; no
        // API server ever checks those names.
        let generated = self.meta.annotations.contains_key(PARENT_ANNOTATION);
        if name.is_empty() {
            self.report("metadata.name", Problem::MissingName);
        } else if !generated && !is_dns_subdomain(name) {
            let value = name.clone();
            self.report(
                "metadata.name",
                Problem::InvalidName {
                    what: "name",
                    value,
                },
            );
        }
        if !is_dns_label(&self.meta.namespace) {
            let value = self.meta.namespace.clone();
            self.report(
                "metadata.namespace",
                Problem::InvalidName {
                    what: "namespace",
                    value,
                },
            );
        }
    }

    pub(super) fn hosts(&mut self, field: &str, hosts: &[String]) {
        if hosts.is_empty() {
            self.report(field, Problem::NoHosts);
        }
        for (index, host) in hosts.iter().enumerate() {
            self.host(&format!("{field}[{index}]"), host);
        }
    }

    pub(super) fn host(&mut self, field: &str, host: &str) {
        if host.is_empty() {
            self.report(field, Problem::EmptyHost);
        } else if !is_host(host) {
            self.report(
                field,
                Problem::InvalidHost {
                    host: host.to_string(),
                },
            );
        }
    }

    pub(super) fn port_number(&mut self, field: impl Into<String>, number: u32) {
        if !(1..=65535).contains(&number) {
            self.report(field, Problem::PortOutOfRange { number });
        }
    }

    /// A port's number, protocol and target port; `require_protocol` for
    /// Gateway servers, where Istio needs it.
    pub(super) fn port(&mut self, field: &str, port: &ServicePort, require_protocol: bool) {
        self.port_number(format!("{field}.number"), port.number);
        match &port.protocol {
            Some(protocol) if !is_protocol(protocol) => {
                let protocol = protocol.clone();
                self.report(
                    format!("{field}.protocol"),
                    Problem::UnknownProtocol { protocol },
                );
            }
            None if require_protocol => {
                self.report(format!("{field}.protocol"), Problem::MissingProtocol)
            }
            _ => {}
        }
        if let Some(target) = port.target_port {
            self.port_number(format!("{field}.targetPort"), target);
        }
    }

    /// Ports of a list, each once by number and by name.
    pub(super) fn port_list(&mut self, field: &str, ports: &[ServicePort]) {
        let mut numbers: HashMap<u32, String> = HashMap::new();
        let mut names: HashMap<&str, String> = HashMap::new();
        for (index, port) in ports.iter().enumerate() {
            let here = format!("{field}[{index}]");
            self.port(&here, port, false);
            match numbers.entry(port.number) {
                Entry::Occupied(first) => {
                    let first = first.get().clone();
                    self.report(
                        format!("{here}.number"),
                        Problem::DuplicatePort {
                            number: port.number,
                            first,
                        },
                    );
                }
                Entry::Vacant(slot) => {
                    slot.insert(here.clone());
                }
            }
            self.unique_port_name(&mut names, port, here);
        }
    }

    /// A port name used once in its list: `names` maps each name seen to
    /// where (`at`) it was first given.
    pub(super) fn unique_port_name<'p>(
        &mut self,
        names: &mut HashMap<&'p str, String>,
        port: &'p ServicePort,
        at: String,
    ) {
        if port.name.is_empty() {
            return;
        }
        match names.entry(port.name.as_str()) {
            Entry::Occupied(first) => {
                let first = first.get().clone();
                let name = port.name.clone();
                self.report(
                    format!("{at}.name"),
                    Problem::DuplicatePortName { name, first },
                );
            }
            Entry::Vacant(slot) => {
                slot.insert(at);
            }
        }
    }
}
