//! WorkloadEntry checks, for a WorkloadEntry resource and a ServiceEntry's inline endpoints alike; a Unix socket address is not supported.

use std::net::IpAddr;

use super::check::Check;
use crate::config::error::Problem;
use crate::config::model::WorkloadEntry;

/// How Istio writes a Unix domain socket address.
pub(super) const UNIX_SOCKET_PREFIX: &str = "unix://";

impl Check<'_> {
    /// A WorkloadEntry, alone (`field` = `spec`) or as a ServiceEntry endpoint.
    pub(super) fn workload_entry(&mut self, entry: &WorkloadEntry, field: &str, needs_ip: bool) {
        let address = entry.address.as_str();
        if address.is_empty() {
            self.report(format!("{field}.address"), Problem::EndpointWithoutAddress);
        } else if address.starts_with(UNIX_SOCKET_PREFIX) {
            self.unix_socket(format!("{field}.address"), address);
        } else if needs_ip && address.parse::<IpAddr>().is_err() {
            let address = address.to_string();
            self.report(
                format!("{field}.address"),
                Problem::StaticEndpointNotIp { address },
            );
        }
        for (name, number) in &entry.ports {
            self.port_number(format!("{field}.ports.{name}"), *number);
        }
    }

    /// A Unix domain socket address (`unix://<path>`): Istio accepts it, but
    /// neither the sidecar nor the gateway here can reach a socket path, so
    /// it is refused rather than translated into an address no proxy uses.
    pub(super) fn unix_socket(&mut self, field: String, address: &str) {
        self.report(
            field,
            Problem::NotSupported {
                field: format!("address {address}"),
            },
        );
    }
}
