//! Kubernetes Service, Endpoints and EndpointSlice checks: the values the
//! registry is built from (addresses, ports, the external name).

use std::net::IpAddr;

use super::check::Check;
use crate::config::error::Problem;
use crate::config::model::kube::{
    AddressType, CLUSTER_IP_NONE, EndpointPort, EndpointSlice, Endpoints, KubeService, ServiceType,
    TargetPort,
};

impl Check<'_> {
    pub(super) fn kube_service(&mut self, service: &KubeService) {
        let spec = &service.spec;
        if spec.service_type == ServiceType::ExternalName {
            match spec.external_name.as_deref() {
                None | Some("") => self.report("spec.externalName", Problem::ExternalNameMissing),
                Some(name) => self.host("spec.externalName", name),
            }
        }
        if let Some(ip) = spec.cluster_ip.as_deref()
            && !ip.is_empty()
            && ip != CLUSTER_IP_NONE
        {
            self.ip("spec.clusterIP", ip);
        }
        for (index, ip) in spec.cluster_ips.iter().enumerate() {
            if ip != CLUSTER_IP_NONE {
                self.ip(&format!("spec.clusterIPs[{index}]"), ip);
            }
        }
        for (index, port) in spec.ports.iter().enumerate() {
            let field = format!("spec.ports[{index}]");
            self.port_number(format!("{field}.port"), port.port);
            if let Some(TargetPort::Number(number)) = port.target_port {
                self.port_number(format!("{field}.targetPort"), number);
            }
        }
    }

    pub(super) fn kube_endpoints(&mut self, endpoints: &Endpoints) {
        for (index, subset) in endpoints.subsets.iter().enumerate() {
            let field = format!("subsets[{index}]");
            for (position, address) in subset.addresses.iter().enumerate() {
                self.ip(&format!("{field}.addresses[{position}].ip"), &address.ip);
            }
            self.endpoint_ports(&format!("{field}.ports"), &subset.ports);
        }
    }

    pub(super) fn kube_endpoint_slice(&mut self, slice: &EndpointSlice) {
        if slice.address_type != AddressType::Fqdn {
            for (index, endpoint) in slice.endpoints.iter().enumerate() {
                for (position, address) in endpoint.addresses.iter().enumerate() {
                    self.ip(
                        &format!("endpoints[{index}].addresses[{position}]"),
                        address,
                    );
                }
            }
        }
        self.endpoint_ports("ports", &slice.ports);
    }

    fn endpoint_ports(&mut self, field: &str, ports: &[EndpointPort]) {
        for (index, port) in ports.iter().enumerate() {
            self.port_number(format!("{field}[{index}].port"), port.port);
        }
    }

    fn ip(&mut self, field: &str, address: &str) {
        if address.parse::<IpAddr>().is_err() {
            let address = address.to_string();
            self.report(field, Problem::NotAnIp { address });
        }
    }
}
