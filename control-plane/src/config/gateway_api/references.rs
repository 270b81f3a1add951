//! The references Gateway API routes share: to a parent (Gateway,
//! ServiceEntry, Service) and to a backend.

use serde::Deserialize;

/// `parentRefs[]`: what a route attaches to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ParentReference {
    pub group: Option<String>,
    pub kind: Option<String>,
    pub namespace: Option<String>,
    pub name: String,
    pub section_name: Option<String>,
    pub port: Option<u32>,
}

/// `backendRefs[]` of an HTTPRoute, TLSRoute or TCPRoute, and the
/// `backendRef` of a RequestMirror filter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackendRef {
    pub group: Option<String>,
    pub kind: Option<String>,
    pub name: String,
    pub namespace: Option<String>,
    pub port: Option<u32>,
    pub weight: Option<u32>,
    /// Per-backend filters: not applied by this control plane, refused
    /// when set.
    #[serde(default)]
    pub filters: Vec<serde_yaml::Value>,
}

/// A `certificateRefs[]` entry of a listener.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretObjectReference {
    pub group: Option<String>,
    pub kind: Option<String>,
    pub name: String,
    pub namespace: Option<String>,
}

impl ParentReference {
    /// `(group, kind)` with the Gateway API defaults (a Gateway).
    pub fn group_kind(&self) -> (&str, &str) {
        (
            self.group.as_deref().unwrap_or(super::GROUP),
            self.kind.as_deref().unwrap_or("Gateway"),
        )
    }
}

impl BackendRef {
    /// `(group, kind)` with the Gateway API defaults (a core Service).
    pub fn group_kind(&self) -> (&str, &str) {
        (
            self.group.as_deref().unwrap_or(""),
            self.kind.as_deref().unwrap_or("Service"),
        )
    }
}

impl SecretObjectReference {
    /// `(group, kind)` with the Gateway API defaults (a core Secret).
    pub fn group_kind(&self) -> (&str, &str) {
        (
            self.group.as_deref().unwrap_or(""),
            self.kind.as_deref().unwrap_or("Secret"),
        )
    }
}
