//! core/v1 Endpoints: the ready addresses behind a Service and their ports.

use serde::Deserialize;

/// An Endpoints object, named as its Service; `metadata` is read by the loader.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Endpoints {
    #[serde(default)]
    pub subsets: Vec<EndpointSubset>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointSubset {
    #[serde(default)]
    pub addresses: Vec<EndpointAddress>,
    /// Not ready: never sent traffic, as istiod does without
    /// `publishNotReadyAddresses`.
    #[serde(default)]
    pub not_ready_addresses: Vec<EndpointAddress>,
    #[serde(default)]
    pub ports: Vec<EndpointPort>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct EndpointAddress {
    #[serde(default)]
    pub ip: String,
}

/// A port of Endpoints or of an EndpointSlice: named as the Service port it serves.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointPort {
    #[serde(default)]
    pub name: String,
    pub port: u32,
    pub protocol: Option<String>,
    pub app_protocol: Option<String>,
}
