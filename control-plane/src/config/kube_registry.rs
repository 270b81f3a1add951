//! Kubernetes Services as istiod's Kubernetes registry holds them, written
//! as the ServiceEntry that declares the same service, so that clusters,
//! listeners and routes are built for them as for any registry service.
//!
//! A Service `<name>` of namespace `<ns>` is host
//! `<name>.<ns>.svc.cluster.local`, MESH_INTERNAL, with its cluster IPs as
//! addresses. Its endpoints are the ready addresses of the Endpoints of the
//! same name and of the EndpointSlices labelled with its name, each with
//! the port named as the Service port; its `selector` also selects
//! WorkloadEntries and connected proxies, as a `workloadSelector` does. A
//! headless Service (`clusterIP: None`) is resolution NONE (an original
//! destination cluster), as istiod's Passthrough; an ExternalName Service
//! is MESH_EXTERNAL with resolution DNS and the external name as its one
//! endpoint, on the Service's ports. Ports not carried over TCP are left
//! out: no proxy serves them.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;

use shared::node::DOMAIN_SUFFIX;

use super::model::kube::{
    AddressType, EXPORT_TO_ANNOTATION, EndpointPort, KubeService, KubeServicePort,
    SERVICE_NAME_LABEL, ServiceType, TargetPort,
};
use super::model::{
    Location, Resolution, ServiceEntry, ServicePort, WorkloadEntry, WorkloadSelector,
};
use super::validate::PROTOCOLS;
use super::{ConfigSnapshot, Resource};

/// The registry entries of a snapshot's Kubernetes Services, built once, on
/// first use, from the snapshot that holds them. A copy of the snapshot
/// builds its own; two snapshots with the same Services have the same
/// entries, so they compare equal whatever was built.
#[derive(Default)]
pub struct KubernetesEntries(OnceLock<Vec<Resource<ServiceEntry>>>);

impl KubernetesEntries {
    pub(super) fn get(&self, snapshot: &ConfigSnapshot) -> &[Resource<ServiceEntry>] {
        self.0.get_or_init(|| service_entries(snapshot))
    }
}

impl Clone for KubernetesEntries {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl PartialEq for KubernetesEntries {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl fmt::Debug for KubernetesEntries {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KubernetesEntries")
    }
}

/// The host of Service `name` in `namespace`.
pub fn service_host(name: &str, namespace: &str) -> String {
    format!("{name}.{namespace}.{DOMAIN_SUFFIX}")
}

/// One registry entry per Service of `snapshot`, in snapshot order.
pub fn service_entries(snapshot: &ConfigSnapshot) -> Vec<Resource<ServiceEntry>> {
    snapshot
        .services
        .iter()
        .map(|service| Resource {
            meta: service.meta.clone(),
            origin: service.origin.clone(),
            spec: service_entry(snapshot, service),
        })
        .collect()
}

fn service_entry(snapshot: &ConfigSnapshot, service: &Resource<KubeService>) -> ServiceEntry {
    let spec = &service.spec.spec;
    let meta = &service.meta;
    let ports: Vec<ServicePort> = spec
        .ports
        .iter()
        .filter(|port| port.is_tcp())
        .map(service_port)
        .collect();
    let export_to = meta
        .annotations
        .get(EXPORT_TO_ANNOTATION)
        .map(|list| {
            list.split(',')
                .map(str::trim)
                .filter(|to| !to.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let mut entry = ServiceEntry {
        hosts: vec![service_host(&meta.name, &meta.namespace)],
        ports,
        location: Location::MeshInternal,
        export_to,
        ..Default::default()
    };
    if spec.service_type == ServiceType::ExternalName {
        let external_name = spec.external_name.clone().unwrap_or_default();
        entry.location = Location::MeshExternal;
        entry.resolution = Resolution::Dns;
        entry.endpoints = vec![WorkloadEntry {
            address: external_name,
            ..Default::default()
        }];
        for port in &mut entry.ports {
            port.target_port = None;
        }
        return entry;
    }
    entry.addresses = spec.cluster_ips().into_iter().map(str::to_string).collect();
    entry.resolution = if spec.is_headless() {
        Resolution::None
    } else {
        Resolution::Static
    };
    if !spec.selector.is_empty() {
        entry.workload_selector = Some(WorkloadSelector {
            labels: spec.selector.clone(),
        });
    }
    entry.endpoints = endpoints_of(snapshot, service);
    entry
}

/// A Service port as a ServiceEntry port: its number, the protocol istiod
/// gives it, and its target port. A named one is found per endpoint: an
/// Endpoints or EndpointSlice port carries the Service port's name and the
/// number Kubernetes resolved; a selected WorkloadEntry's `ports` entry of
/// the target port's name, as istiod finds it.
fn service_port(port: &KubeServicePort) -> ServicePort {
    let (target_port, target_port_name) = match &port.target_port {
        Some(TargetPort::Number(number)) => (Some(*number), None),
        Some(TargetPort::Name(name)) => (None, Some(name.clone())),
        None => (Some(port.port), None),
    };
    ServicePort {
        number: port.port,
        protocol: Some(port_protocol(port).to_string()),
        name: port.name.clone(),
        target_port,
        target_port_name,
    }
}

/// The protocol istiod gives a Service port: from `appProtocol` when set
/// (with Kubernetes' `kubernetes.io/h2c`, `kubernetes.io/ws` and
/// `kubernetes.io/wss`), else from the port name; `grpc-web` or the part
/// before the first `-` names a protocol. A name that names none is TCP,
/// as a ServiceEntry port of unknown protocol is here.
pub fn port_protocol(port: &KubeServicePort) -> &'static str {
    let name = match port.app_protocol.as_deref() {
        Some("kubernetes.io/h2c") => return "HTTP2",
        Some("kubernetes.io/ws") => return "HTTP",
        Some("kubernetes.io/wss") => return "HTTPS",
        Some(app_protocol) => app_protocol,
        None => port.name.as_str(),
    };
    if name.to_ascii_lowercase().starts_with("grpc-web") {
        return "GRPC-WEB";
    }
    let prefix = name.split('-').next().unwrap_or_default();
    PROTOCOLS
        .into_iter()
        .find(|known| known.eq_ignore_ascii_case(prefix) && *known != "UDP")
        .unwrap_or("TCP")
}

/// The ready endpoints of `service`: its Endpoints' ready addresses and its
/// EndpointSlices' ready endpoints, each with its ports by name.
fn endpoints_of(snapshot: &ConfigSnapshot, service: &Resource<KubeService>) -> Vec<WorkloadEntry> {
    let meta = &service.meta;
    let from_endpoints = snapshot
        .endpoints
        .iter()
        .filter(|e| e.meta.namespace == meta.namespace && e.meta.name == meta.name)
        .flat_map(|e| e.spec.subsets.iter())
        .flat_map(|subset| {
            let ports = ports_by_name(&subset.ports);
            subset
                .addresses
                .iter()
                .map(move |address| workload(&address.ip, &ports))
        });
    let from_slices = snapshot
        .endpoint_slices
        .iter()
        .filter(|slice| slice.meta.namespace == meta.namespace)
        .filter(|slice| slice.meta.labels.get(SERVICE_NAME_LABEL) == Some(&meta.name))
        .filter(|slice| slice.spec.address_type != AddressType::Fqdn)
        .flat_map(|slice| {
            let ports = ports_by_name(&slice.spec.ports);
            slice
                .spec
                .endpoints
                .iter()
                .filter(|endpoint| endpoint.is_ready())
                .flat_map(|endpoint| endpoint.addresses.iter())
                .map(move |address| workload(address, &ports))
        });
    from_endpoints.chain(from_slices).collect()
}

fn ports_by_name(ports: &[EndpointPort]) -> BTreeMap<String, u32> {
    ports
        .iter()
        .map(|port| (port.name.clone(), port.port))
        .collect()
}

fn workload(address: &str, ports: &BTreeMap<String, u32>) -> WorkloadEntry {
    WorkloadEntry {
        address: address.to_string(),
        ports: ports.clone(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests;
