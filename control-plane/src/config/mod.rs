//! The Istio resource model, how it is loaded from a directory, validated,
//! and published as an immutable, versioned [`ConfigSnapshot`].

pub mod codes;
pub mod duration;
pub mod error;
pub mod gateway_api;
pub mod gateways;
pub mod hosts;
pub mod kube_registry;
pub mod load;
pub mod model;
pub mod validate;
pub mod watch;

use std::path::PathBuf;
use std::sync::Arc;

pub use error::{ConfigError, ConfigErrors};
use kube_registry::KubernetesEntries;
pub use load::{load_checked, load_dir, load_validated};
pub use model::MeshConfig;
use model::kube::{EndpointSlice, Endpoints, KubeService};
use model::{
    DestinationRule, Gateway, Labels, Secret, ServiceEntry, Sidecar, VirtualService, WorkloadEntry,
    WorkloadGroup,
};
pub use validate::{Checked, check, validate};
pub use watch::ConfigWatcher;

/// The namespace of a resource that does not set `metadata.namespace`, as
/// `kubectl apply` without `-n` would use.
pub const DEFAULT_NAMESPACE: &str = "default";

/// Where a resource came from: the file and the index of its YAML document
/// (0-based, counting every `---`-separated document in the file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: PathBuf,
    pub document: usize,
}

/// The Kubernetes object metadata Istio acts on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Meta {
    pub name: String,
    pub namespace: String,
    pub labels: Labels,
    pub annotations: Labels,
}

/// One Istio resource: metadata, where it came from, and its spec.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource<T> {
    pub meta: Meta,
    pub origin: Origin,
    pub spec: T,
}

/// The resource kinds this control plane reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    ServiceEntry,
    VirtualService,
    DestinationRule,
    Gateway,
    Sidecar,
    WorkloadEntry,
    WorkloadGroup,
    /// A Kubernetes Secret (`v1`), read for `credentialName`.
    Secret,
    /// A Kubernetes Service (`v1`): a registry service.
    Service,
    /// Kubernetes Endpoints (`v1`): a Service's endpoints.
    Endpoints,
    /// A Kubernetes EndpointSlice (`discovery.k8s.io/v1`): a Service's endpoints.
    EndpointSlice,
    /// A Gateway of the Kubernetes Gateway API.
    KubernetesGateway,
    HttpRoute,
    TlsRoute,
    TcpRoute,
    ReferenceGrant,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::ServiceEntry => "ServiceEntry",
            Kind::VirtualService => "VirtualService",
            Kind::DestinationRule => "DestinationRule",
            Kind::Gateway => "Gateway",
            Kind::Sidecar => "Sidecar",
            Kind::WorkloadEntry => "WorkloadEntry",
            Kind::WorkloadGroup => "WorkloadGroup",
            Kind::Secret => "Secret",
            Kind::Service => "Service",
            Kind::Endpoints => "Endpoints",
            Kind::EndpointSlice => "EndpointSlice",
            Kind::KubernetesGateway => "Gateway.gateway.networking.k8s.io",
            Kind::HttpRoute => "HTTPRoute",
            Kind::TlsRoute => "TLSRoute",
            Kind::TcpRoute => "TCPRoute",
            Kind::ReferenceGrant => "ReferenceGrant",
        }
    }
}

/// A complete, validated view of the mesh config at one moment. Immutable:
/// a change builds a new snapshot with a higher version.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfigSnapshot {
    /// Increases by one with every accepted change (0 for an empty snapshot).
    pub version: u64,
    pub mesh: MeshConfig,
    pub service_entries: Vec<Resource<ServiceEntry>>,
    pub virtual_services: Vec<Resource<VirtualService>>,
    pub destination_rules: Vec<Resource<DestinationRule>>,
    pub gateways: Vec<Resource<Gateway>>,
    pub sidecars: Vec<Resource<Sidecar>>,
    pub workload_entries: Vec<Resource<WorkloadEntry>>,
    pub workload_groups: Vec<Resource<WorkloadGroup>>,
    /// TLS credentials for `credentialName`: never logged, never dumped.
    pub secrets: Vec<Resource<Secret>>,
    /// Kubernetes Services, and the endpoints behind them.
    pub services: Vec<Resource<KubeService>>,
    pub endpoints: Vec<Resource<Endpoints>>,
    pub endpoint_slices: Vec<Resource<EndpointSlice>>,
    /// The registry entries built from `services`, on first use.
    pub kubernetes_entries: KubernetesEntries,
    /// Gateway API objects as read; [`check`] converts them into the
    /// Istio resources above.
    pub gateway_api: gateway_api::GatewayApi,
}

impl ConfigSnapshot {
    /// The Kubernetes Services as istiod's Kubernetes registry holds them,
    /// each as the ServiceEntry that declares the same service (see
    /// [`kube_registry`]).
    pub fn kubernetes_service_entries(&self) -> &[Resource<ServiceEntry>] {
        self.kubernetes_entries.get(self)
    }

    /// Every registry entry: the ServiceEntries, then the Kubernetes Services.
    pub fn registry_entries(&self) -> impl Iterator<Item = &Resource<ServiceEntry>> {
        self.service_entries
            .iter()
            .chain(self.kubernetes_service_entries())
    }
}

pub type SharedSnapshot = Arc<ConfigSnapshot>;

#[cfg(test)]
mod tests;
