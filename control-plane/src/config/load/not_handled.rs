//! Documents this control plane reads past: named, with why, so that
//! nothing in the config directory is passed over in silence.

use std::fmt;

use serde_yaml::Value;

use crate::config::{DEFAULT_NAMESPACE, Origin};

/// A Kubernetes object of a kind this control plane does not handle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotHandled {
    pub api_version: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub origin: Origin,
    /// The object's place in its document (`items[3]` in a List).
    pub item: Option<String>,
}

impl NotHandled {
    pub(super) fn new(
        api_version: &str,
        kind: &str,
        value: &Value,
        origin: &Origin,
        item: Option<&str>,
    ) -> Self {
        let meta = |key: &str| {
            value
                .get("metadata")
                .and_then(|meta| meta.get(key))
                .and_then(Value::as_str)
                .filter(|text| !text.is_empty())
                .map(str::to_string)
        };
        Self {
            api_version: api_version.to_string(),
            kind: kind.to_string(),
            namespace: meta("namespace").unwrap_or_else(|| DEFAULT_NAMESPACE.to_string()),
            name: meta("name").unwrap_or_else(|| "<unnamed>".to_string()),
            origin: origin.clone(),
            item: item.map(str::to_string),
        }
    }

    /// Why it is not handled, and what to do instead.
    pub fn reason(&self) -> &'static str {
        let group = self
            .api_version
            .split_once('/')
            .map_or("", |(group, _)| group);
        match (group, self.kind.as_str()) {
            ("discovery.k8s.io", "EndpointSlice") => {
                "only discovery.k8s.io/v1 EndpointSlices are read; write it as discovery.k8s.io/v1"
            }
            ("gateway.networking.k8s.io", "Gateway") => {
                "its gatewayClassName is not istio: only Gateways of class istio are programmed by this control plane"
            }
            ("gateway.networking.k8s.io", "GatewayClass") => {
                "the class istio is built in and other classes are not programmed; nothing to apply"
            }
            ("gateway.networking.k8s.io", _) => {
                "this Gateway API kind is not read; the kinds read are Gateway, HTTPRoute, TLSRoute, TCPRoute and ReferenceGrant"
            }
            ("security.istio.io", _) => {
                "security policies are not enforced by this control plane; nothing it serves depends on them"
            }
            ("telemetry.istio.io", _) => {
                "telemetry is not configured by this control plane; proxies keep their default metrics and logs"
            }
            ("networking.istio.io", _) => {
                "this kind is not applied by this control plane; remove it or express the intent with the kinds it reads"
            }
            _ => "not a kind this control plane reads",
        }
    }
}

impl fmt::Display for NotHandled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "not handled: {} {}/{} ({}, document {}",
            self.kind,
            self.namespace,
            self.name,
            self.origin.file.display(),
            self.origin.document + 1
        )?;
        if let Some(item) = &self.item {
            write!(f, ", {item}")?;
        }
        write!(f, "): {}", self.reason())
    }
}
