//! Gateway (`gateway.networking.k8s.io`): a class and its listeners.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::references::SecretObjectReference;

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KubernetesGateway {
    pub gateway_class_name: String,
    #[serde(default)]
    pub listeners: Vec<Listener>,
    /// Requested addresses: refused (the proxy is started by hand and
    /// listens where it is told).
    #[serde(default)]
    pub addresses: Vec<serde_yaml::Value>,
    /// Labels and annotations for the deployment Istio would create:
    /// refused, there is no deployment.
    pub infrastructure: Option<serde_yaml::Value>,
    #[serde(rename = "backendTLS")]
    pub backend_tls: Option<serde_yaml::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Listener {
    pub name: String,
    pub hostname: Option<String>,
    pub port: u32,
    pub protocol: String,
    pub tls: Option<ListenerTls>,
    pub allowed_routes: Option<AllowedRoutes>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListenerTls {
    pub mode: Option<TlsMode>,
    #[serde(default)]
    pub certificate_refs: Vec<SecretObjectReference>,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    pub frontend_validation: Option<serde_yaml::Value>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum TlsMode {
    #[default]
    Terminate,
    Passthrough,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AllowedRoutes {
    pub namespaces: Option<RouteNamespaces>,
    #[serde(default)]
    pub kinds: Vec<RouteGroupKind>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteNamespaces {
    #[serde(default)]
    pub from: FromNamespaces,
    /// Namespace labels: refused, namespaces are not read.
    pub selector: Option<serde_yaml::Value>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum FromNamespaces {
    All,
    #[default]
    Same,
    Selector,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteGroupKind {
    pub group: Option<String>,
    pub kind: String,
}
