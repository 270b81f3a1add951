//! discovery.k8s.io/v1 EndpointSlice: a slice of a Service's endpoints.

use serde::Deserialize;

use super::endpoints::EndpointPort;

/// The label that names the Service an EndpointSlice belongs to.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// An EndpointSlice object; `metadata` is read by the loader.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointSlice {
    #[serde(default)]
    pub address_type: AddressType,
    #[serde(default)]
    pub endpoints: Vec<SliceEndpoint>,
    #[serde(default)]
    pub ports: Vec<EndpointPort>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum AddressType {
    #[default]
    IPv4,
    IPv6,
    #[serde(rename = "FQDN")]
    Fqdn,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct SliceEndpoint {
    #[serde(default)]
    pub addresses: Vec<String>,
    #[serde(default)]
    pub conditions: Conditions,
}

impl SliceEndpoint {
    /// Ready unless `conditions.ready` says otherwise (unset means ready).
    pub fn is_ready(&self) -> bool {
        self.conditions.ready.unwrap_or(true)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Conditions {
    pub ready: Option<bool>,
}
