//! Gateway checks: selector, servers, their ports, TLS and hosts, and
//! servers that cannot share a port.

use std::collections::HashMap;

use super::check::Check;
use crate::config::error::Problem;
use crate::config::hosts::split_namespace;
use crate::config::model::Gateway;

impl Check<'_> {
    pub(super) fn gateway(&mut self, spec: &Gateway) {
        if spec.selector.is_empty() {
            self.report("spec.selector", Problem::EmptySelector);
        }
        if spec.servers.is_empty() {
            self.report("spec.servers", Problem::NoServers);
        }
        let mut names: HashMap<&str, String> = HashMap::new();
        for (index, server) in spec.servers.iter().enumerate() {
            let field = format!("spec.servers[{index}]");
            self.port(&format!("{field}.port"), &server.port, true);
            // Istio deprecated a server's targetPort and never applied it.
            if server.port.target_port.is_some() {
                self.report(
                    format!("{field}.port.targetPort"),
                    Problem::ServerTlsFieldNotSupported {
                        field: "targetPort",
                    },
                );
            }
            let protocol = server
                .port
                .protocol
                .as_deref()
                .unwrap_or_default()
                .to_ascii_uppercase();
            if matches!(protocol.as_str(), "HTTPS" | "TLS") && server.tls.is_none() {
                self.report(
                    format!("{field}.tls"),
                    Problem::ServerWithoutTls {
                        protocol: protocol.clone(),
                    },
                );
            }
            if let Some(tls) = server
                .tls
                .as_ref()
                .filter(|_| matches!(protocol.as_str(), "HTTPS" | "TLS"))
            {
                self.server_tls(&format!("{field}.tls"), tls);
            }
            if server.hosts.is_empty() {
                self.report(format!("{field}.hosts"), Problem::NoHosts);
            }
            for (at, host) in server.hosts.iter().enumerate() {
                let (_, dns_name) = split_namespace(host);
                self.host(&format!("{field}.hosts[{at}]"), dns_name);
            }
            self.unique_port_name(&mut names, &server.port, format!("{field}.port"));
            for (other_index, other) in spec.servers[..index].iter().enumerate() {
                if other.port.number != server.port.number {
                    continue;
                }
                let other_protocol = other
                    .port
                    .protocol
                    .as_deref()
                    .unwrap_or_default()
                    .to_ascii_uppercase();
                let reason = if protocol_family(&protocol) != protocol_family(&other_protocol) {
                    Some(format!(
                        "protocols {other_protocol} and {protocol} cannot share a port"
                    ))
                } else {
                    server
                        .hosts
                        .iter()
                        .find(|host| other.hosts.contains(host))
                        .map(|host| format!("both serve host {host}"))
                };
                if let Some(reason) = reason {
                    let problem = Problem::ServerPortConflict {
                        number: server.port.number,
                        first: format!("spec.servers[{other_index}]"),
                        reason,
                    };
                    self.report(format!("{field}.port.number"), problem);
                }
            }
        }
    }
}

/// Protocols that can share one Gateway port: HTTP ones on one plain-text
/// listener, TLS ones told apart by SNI; any other protocol only with itself.
fn protocol_family(protocol: &str) -> &str {
    match protocol {
        "HTTP" | "HTTP2" | "GRPC" | "GRPC-WEB" | "HTTP_PROXY" => "HTTP",
        "HTTPS" | "TLS" => "TLS",
        other => other,
    }
}
