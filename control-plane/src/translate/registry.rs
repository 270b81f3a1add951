//! What one proxy can see of the mesh: the services (ServiceEntry and
//! Kubernetes Service host and port pairs), VirtualServices and DestinationRules visible to it after
//! `exportTo` and Sidecar scoping, and the workloads behind each service.

use std::collections::BTreeMap;

use crate::config::gateway_api::convert::PARENT_ANNOTATION;
use crate::config::gateway_api::{GATEWAY_NAME_LABEL, deployment_name};
use crate::config::gateways::{MESH_GATEWAY, gateway_named};
use crate::config::hosts;
use crate::config::model::{
    DestinationRule, Gateway, Labels, Resolution, ServiceEntry, Sidecar, VirtualService,
    WorkloadEntry,
};
use crate::config::{ConfigSnapshot, Resource};

use shared::workload::{DEFAULT_CLUSTER_ID, EndpointWorkload};

use super::egress_policy::OutboundPolicy;
use super::proxy::{Proxy, Workload};

mod service;
mod service_accounts;
mod workloads;
pub use service::{Protocol, Service, ServiceAddress};
use workloads::{destination_rule_applies, selected_entries};

/// An address and port a cluster sends traffic to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Endpoint {
    pub address: String,
    pub port: u32,
    pub weight: Option<u32>,
    /// The workload behind it (a WorkloadEntry or a connected proxy), which
    /// istiod names in the endpoint's `istio.workload` metadata.
    pub workload: Option<EndpointWorkload>,
}

/// The mesh as one proxy sees it.
pub struct MeshView<'a> {
    pub snapshot: &'a ConfigSnapshot,
    pub proxy: &'a Proxy,
    pub workloads: &'a [Workload],
    pub sidecar: Option<&'a Resource<Sidecar>>,
    pub policy: OutboundPolicy,
    /// Visible services, sorted by (host, port); the first declaration of a
    /// host and port wins, with the proxy's own namespace first.
    pub services: Vec<Service<'a>>,
    pub virtual_services: Vec<&'a Resource<VirtualService>>,
}

impl<'a> MeshView<'a> {
    pub fn new(snapshot: &'a ConfigSnapshot, workloads: &'a [Workload], proxy: &'a Proxy) -> Self {
        let sidecar = select_sidecar(snapshot, proxy);
        let policy = OutboundPolicy::of(sidecar, snapshot.mesh.outbound_traffic_policy.mode);
        let admits = |host: &str, ns: &str| match sidecar {
            Some(sc) if !sc.spec.egress.is_empty() => sc
                .spec
                .egress
                .iter()
                .flat_map(|e| e.hosts.iter())
                .any(|entry| hosts::egress_host_admits(entry, host, ns, &proxy.namespace)),
            _ => true,
        };

        let mut by_key: BTreeMap<(String, u32), Service<'a>> = BTreeMap::new();
        let mut entries: Vec<&Resource<ServiceEntry>> = snapshot
            .registry_entries()
            .filter(|se| {
                hosts::exported_to(&se.spec.export_to, &se.meta.namespace, &proxy.namespace)
            })
            .collect();
        entries.sort_by_key(|se| {
            (
                se.meta.namespace != proxy.namespace,
                se.meta.namespace.clone(),
                se.meta.name.clone(),
            )
        });
        for entry in entries {
            for host in &entry.spec.hosts {
                let host = hosts::resolve(host, &entry.meta.namespace);
                if !admits(&host, &entry.meta.namespace) {
                    continue;
                }
                for port in &entry.spec.ports {
                    by_key
                        .entry((host.clone(), port.number))
                        .or_insert_with(|| Service {
                            host: host.clone(),
                            namespace: &entry.meta.namespace,
                            entry,
                            port,
                        });
                }
            }
        }

        let virtual_services = snapshot
            .virtual_services
            .iter()
            .filter(|vs| {
                hosts::exported_to(&vs.spec.export_to, &vs.meta.namespace, &proxy.namespace)
            })
            .filter(|vs| {
                vs.spec
                    .hosts
                    .iter()
                    .any(|h| admits(&hosts::resolve(h, &vs.meta.namespace), &vs.meta.namespace))
            })
            .collect();

        Self {
            snapshot,
            proxy,
            workloads,
            sidecar,
            policy,
            services: by_key.into_values().collect(),
            virtual_services,
        }
    }

    /// The services of `host`, one per port in port order (a binary
    /// search: `services` is sorted by host, then port).
    pub fn services_of(&self, host: &str) -> &[Service<'a>] {
        let start = self.services.partition_point(|s| s.host.as_str() < host);
        let len = self.services[start..].partition_point(|s| s.host == host);
        &self.services[start..start + len]
    }

    /// The service for `host` and `port`.
    pub fn service(&self, host: &str, port: u32) -> Option<&Service<'a>> {
        self.services_of(host)
            .iter()
            .find(|s| s.port.number == port)
    }

    /// The ports `host` is declared with.
    pub fn ports_of(&self, host: &str) -> Vec<u32> {
        self.services_of(host)
            .iter()
            .map(|s| s.port.number)
            .collect()
    }

    /// The DestinationRule Istio applies to `host` for this proxy: the most
    /// specific host match, looked up in the proxy's namespace, then the
    /// service's, then the root namespace. A rule whose `workloadSelector`
    /// does not select this proxy is passed over.
    pub fn destination_rule(
        &self,
        host: &str,
        service_ns: &str,
    ) -> Option<&'a Resource<DestinationRule>> {
        let root = self.snapshot.mesh.root_namespace.as_str();
        let proxy_ns = self.proxy.namespace.as_str();
        [proxy_ns, service_ns, root].into_iter().find_map(|ns| {
            self.snapshot
                .destination_rules
                .iter()
                .filter(|dr| dr.meta.namespace == ns)
                .filter(|dr| hosts::exported_to(&dr.spec.export_to, &dr.meta.namespace, proxy_ns))
                .filter(|dr| destination_rule_applies(dr, self.proxy))
                .filter(|dr| {
                    hosts::matches(&hosts::resolve(&dr.spec.host, &dr.meta.namespace), host)
                })
                // The most specific host; for one host, a rule selecting
                // this proxy before the catch-all one.
                .max_by_key(|dr| {
                    (
                        hosts::specificity(&hosts::resolve(&dr.spec.host, &dr.meta.namespace)),
                        dr.spec.workload_selector.is_some(),
                    )
                })
        })
    }

    /// The VirtualServices bound to `gateway` (`mesh` for sidecars), as
    /// `(virtual service, its resolved hosts)`.
    pub fn virtual_services_for(
        &self,
        gateway: &GatewayRef,
    ) -> Vec<(&'a Resource<VirtualService>, Vec<String>)> {
        self.virtual_services
            .iter()
            .filter(|vs| {
                vs_gateways(vs)
                    .iter()
                    .any(|g| gateway.is(g, &vs.meta.namespace))
            })
            .map(|vs| {
                let hosts = vs
                    .spec
                    .hosts
                    .iter()
                    .map(|h| hosts::resolve(h, &vs.meta.namespace))
                    .collect();
                (*vs, hosts)
            })
            .collect()
    }

    /// Endpoints of a service port, filtered by subset labels. DNS
    /// resolution without endpoints sends to the host name itself. A
    /// `workloadSelector` selects, as istiod does, the WorkloadEntries of
    /// the service's namespace whose labels match (their address, their
    /// `ports` entry for the port's name or else the target port, their
    /// weight; for a Kubernetes Service's named target port, their entry of
    /// that name, without which they do not serve the port), and the
    /// connected proxies whose labels match and that are members of a
    /// declaration for them (see [`Self::membership`]). The selected ones
    /// name their workload as istiod does: a WorkloadEntry by its name and
    /// namespace, a proxy as its own telemetry names it.
    pub fn endpoints(&self, service: &Service<'_>, subset_labels: &Labels) -> Vec<Endpoint> {
        let spec = &service.entry.spec;
        let target_port = service.port.target_port.unwrap_or(service.port.number);
        let port_for = |ports: &BTreeMap<String, u32>| {
            ports
                .get(&service.port.name)
                .copied()
                .unwrap_or(target_port)
        };
        let mut endpoints: Vec<Endpoint> = spec
            .endpoints
            .iter()
            .filter(|we| labels_match(subset_labels, &we.labels))
            .map(|we| Endpoint {
                address: we.address.clone(),
                port: port_for(&we.ports),
                weight: we.weight,
                workload: None,
            })
            .collect();
        // A Kubernetes Service's named target port: the selected entry's
        // port of that name, or none (istiod leaves the entry out).
        let selected_port_for = |ports: &BTreeMap<String, u32>| match &service.port.target_port_name
        {
            Some(name) => ports.get(name).copied().filter(|port| *port != 0),
            None => Some(port_for(ports)),
        };
        if let Some(selector) = &spec.workload_selector {
            let namespace = service.entry.meta.namespace.as_str();
            endpoints.extend(
                selected_entries(self.snapshot, namespace, &selector.labels)
                    .filter(|we| labels_match(subset_labels, &we.spec.labels))
                    .filter_map(|we| {
                        Some(Endpoint {
                            address: we.spec.address.clone(),
                            port: selected_port_for(&we.spec.ports)?,
                            weight: we.spec.weight,
                            workload: Some(EndpointWorkload::new(
                                &we.meta.name,
                                &we.meta.namespace,
                                &we.spec.labels,
                                DEFAULT_CLUSTER_ID,
                            )),
                        })
                    }),
            );
            endpoints.extend(
                self.workloads
                    .iter()
                    .filter(|w| w.namespace == namespace)
                    .filter(|w| labels_match(&selector.labels, &w.labels))
                    .filter(|w| labels_match(subset_labels, &w.labels))
                    .filter_map(|w| {
                        let template = match self.membership(w, namespace, &selector.labels)? {
                            Membership::Group(template) => Some(template),
                            Membership::Gateway => None,
                        };
                        let port = match template {
                            Some(template) => selected_port_for(&template.ports)?,
                            None => target_port,
                        };
                        Some(Endpoint {
                            address: w.address.clone(),
                            port,
                            weight: template.and_then(|t| t.weight),
                            workload: Some(w.endpoint_workload()),
                        })
                    }),
            );
        }
        if endpoints.is_empty()
            && spec.workload_selector.is_none()
            && matches!(spec.resolution, Resolution::Dns | Resolution::DnsRoundRobin)
            && !service.host.starts_with('*')
        {
            endpoints.push(Endpoint {
                address: service.host.clone(),
                port: target_port,
                weight: None,
                workload: None,
            });
        }
        endpoints.sort();
        endpoints.dedup();
        endpoints
    }

    /// Why a connected `workload` may serve a `workloadSelector` service
    /// in `namespace` whose selector matches its labels, or `None`: a
    /// WorkloadGroup of that namespace, whose labels the selector matches,
    /// declares its token's service account, or it is a trusted gateway
    /// (by `--gateway-service-account`, or as the deployment of a Gateway API
    /// Gateway). A proxy's labels are its own claim; only its
    /// token's service account, declared here, lets it be an endpoint.
    ///
    /// A member of a group is served as Istio serves the WorkloadEntry it
    /// auto-registers from the group's template (its `ports` and
    /// `weight`); of several groups, one whose labels the proxy carries
    /// comes first, then by name.
    fn membership(
        &self,
        workload: &Workload,
        namespace: &str,
        selector: &Labels,
    ) -> Option<Membership<'a>> {
        let account = workload.service_account.as_str();
        let declares = |declared: &str| !declared.is_empty() && declared == account;
        let group = self
            .snapshot
            .workload_groups
            .iter()
            .filter(|wg| wg.meta.namespace == namespace && declares(wg.spec.service_account()))
            .map(|wg| (wg, wg.spec.member_labels()))
            .filter(|(_, labels)| labels_match(selector, labels))
            .min_by_key(|(wg, labels)| (!labels_match(labels, &workload.labels), &wg.meta.name))
            .and_then(|(wg, _)| wg.spec.template.as_ref());
        if let Some(template) = group {
            return Some(Membership::Group(template));
        }
        (workload.trusted_gateway || self.deployed_for_gateway_api(workload))
            .then_some(Membership::Gateway)
    }

    /// Whether `workload` is a gateway running as the deployment Istio
    /// creates for a Gateway API Gateway of class `istio` in its namespace
    /// (the Istio Gateway converted from it selects that deployment): its
    /// token proves the deployment's service account, `<name>-istio`.
    fn deployed_for_gateway_api(&self, workload: &Workload) -> bool {
        workload.router
            && self.snapshot.gateways.iter().any(|gateway| {
                gateway.meta.namespace == workload.namespace
                    && gateway.meta.annotations.contains_key(PARENT_ANNOTATION)
                    && gateway
                        .spec
                        .selector
                        .get(GATEWAY_NAME_LABEL)
                        .is_some_and(|name| workload.service_account == deployment_name(name))
            })
    }

    /// The Gateways whose selector matches this proxy's labels.
    pub fn selected_gateways(&self) -> Vec<&'a Resource<Gateway>> {
        self.snapshot
            .gateways
            .iter()
            .filter(|gw| {
                !gw.spec.selector.is_empty() && labels_match(&gw.spec.selector, &self.proxy.labels)
            })
            .collect()
    }

    /// The port a gateway listens on for a Gateway server port: the
    /// `targetPort` of this gateway's own in-mesh service (a Kubernetes
    /// Service or a MESH_INTERNAL ServiceEntry selecting it) when one maps
    /// the port, else the port itself.
    pub fn gateway_listen_port(&self, server_port: u32) -> u32 {
        self.snapshot
            .registry_entries()
            .filter(|se| se.meta.namespace == self.proxy.namespace)
            .filter(|se| {
                se.spec
                    .workload_selector
                    .as_ref()
                    .is_some_and(|sel| labels_match(&sel.labels, &self.proxy.labels))
            })
            .flat_map(|se| se.spec.ports.iter())
            .find(|p| p.number == server_port)
            .and_then(|p| p.target_port)
            .unwrap_or(server_port)
    }
}

/// What lets a connected proxy serve a `workloadSelector` service.
enum Membership<'a> {
    /// A WorkloadGroup declares its service account: the group's template.
    Group(&'a WorkloadEntry),
    /// A trusted gateway (`--gateway-service-account`).
    Gateway,
}

/// Names a gateway a VirtualService can bind to: the reserved `mesh`, or a
/// Gateway `namespace/name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayRef {
    Mesh,
    Gateway { namespace: String, name: String },
}

impl GatewayRef {
    /// Whether `reference` as written in a VirtualService in `vs_ns` (`mesh`,
    /// or a Gateway as [`gateway_named`] reads it) names this gateway.
    pub fn is(&self, reference: &str, vs_ns: &str) -> bool {
        match self {
            GatewayRef::Mesh => reference == MESH_GATEWAY,
            GatewayRef::Gateway { namespace, name } => {
                gateway_named(reference, vs_ns) == (namespace.as_str(), name.as_str())
            }
        }
    }
}

/// A VirtualService's gateways; none written means `mesh`.
pub fn vs_gateways(vs: &Resource<VirtualService>) -> Vec<String> {
    if vs.spec.gateways.is_empty() {
        vec![MESH_GATEWAY.to_string()]
    } else {
        vs.spec.gateways.clone()
    }
}

/// Whether every `selector` label is present in `labels` with the same value.
pub fn labels_match(selector: &Labels, labels: &Labels) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

fn select_sidecar<'a>(
    snapshot: &'a ConfigSnapshot,
    proxy: &Proxy,
) -> Option<&'a Resource<Sidecar>> {
    fn in_ns<'a, 'n>(
        snapshot: &'a ConfigSnapshot,
        ns: &'n str,
    ) -> impl Iterator<Item = &'a Resource<Sidecar>> + 'n
    where
        'a: 'n,
    {
        snapshot
            .sidecars
            .iter()
            .filter(move |s| s.meta.namespace == ns)
    }
    in_ns(snapshot, &proxy.namespace)
        .find(|s| {
            s.spec
                .workload_selector
                .as_ref()
                .is_some_and(|sel| labels_match(&sel.labels, &proxy.labels))
        })
        .or_else(|| in_ns(snapshot, &proxy.namespace).find(|s| s.spec.workload_selector.is_none()))
        .or_else(|| {
            in_ns(snapshot, &snapshot.mesh.root_namespace)
                .find(|s| s.spec.workload_selector.is_none())
        })
}

#[cfg(test)]
mod endpoint_workload_tests;
#[cfg(test)]
mod tests;
