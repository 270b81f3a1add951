//! Kubernetes core/v1 Service and Endpoints and discovery.k8s.io/v1
//! EndpointSlice: the registry as `kubectl get -o yaml` prints it.
//!
//! Unlike the Istio kinds, these structs read only the fields the control
//! plane uses and pass over the rest: kubectl output carries many fields set
//! by the API server. What is passed over is named by [`unused_fields`], so
//! that `validate` can say so.

mod endpoint_slice;
mod endpoints;
mod service;
mod unused;

pub use endpoint_slice::{AddressType, EndpointSlice, SERVICE_NAME_LABEL, SliceEndpoint};
pub use endpoints::{EndpointAddress, EndpointPort, EndpointSubset, Endpoints};
pub use service::{
    CLUSTER_IP_NONE, EXPORT_TO_ANNOTATION, KubeService, KubeServicePort, ServiceSpec, ServiceType,
    TargetPort,
};
pub use unused::unused_fields;
