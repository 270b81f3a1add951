//! WorkloadEntry checks, for a WorkloadEntry resource and for a
//! ServiceEntry's inline endpoints alike.

use std::net::IpAddr;

use super::check::Check;
use crate::config::error::Problem;
use crate::config::model::WorkloadEntry;

impl Check<'_> {
    /// A WorkloadEntry, alone (`field` = `spec`) or as a ServiceEntry endpoint.
    pub(super) fn workload_entry(&mut self, entry: &WorkloadEntry, field: &str, needs_ip: bool) {
        let address = entry.address.as_str();
        if address.is_empty() {
            self.report(format!("{field}.address"), Problem::EndpointWithoutAddress);
        } else if needs_ip && !address.starts_with("unix://") && address.parse::<IpAddr>().is_err()
        {
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
}
