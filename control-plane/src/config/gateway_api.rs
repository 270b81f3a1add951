//! The Kubernetes Gateway API (`gateway.networking.k8s.io`) as istiod reads
//! it for egress: Gateways of class `istio`, HTTPRoutes, TLSRoutes,
//! TCPRoutes and ReferenceGrants, converted into Istio Gateways,
//! VirtualServices and the gateway's Service ([`convert`]), with the status
//! conditions Istio would write ([`status`]). One module per kind.

pub mod convert;
mod gateway;
mod http_route;
mod reference_grant;
mod references;
pub mod status;
mod tcp_route;
mod tls_route;

pub use gateway::{
    AllowedRoutes, FromNamespaces, KubernetesGateway, Listener, ListenerTls, RouteGroupKind,
    RouteNamespaces, TlsMode,
};
pub use http_route::{
    Fraction, HeaderModifier, HeaderValue, HttpRouteFilter, HttpRouteMatch, HttpRouteRule,
    HttpRouteSpec, HttpRouteTimeouts, PathMatch, PathMatchType, PathModifier, PathModifierType,
    RequestMirror, RequestRedirect, UrlRewrite, ValueMatch, ValueMatchType,
};
pub use reference_grant::{GrantFrom, GrantTo, ReferenceGrant};
pub use references::{BackendRef, ParentReference, SecretObjectReference};
pub use tcp_route::TcpRouteSpec;
pub use tls_route::{L4RouteRule, TlsRouteSpec};

use std::collections::BTreeMap;

use super::{Kind, Meta, Resource};

/// The API group.
pub const GROUP: &str = "gateway.networking.k8s.io";

/// The only GatewayClass this control plane programs, as istiod's built-in one.
pub const ISTIO_CLASS: &str = "istio";

/// The name Istio gives the Deployment, Service and service account it
/// creates for Gateway `name` of class `istio`: `<name>-istio`.
pub fn deployment_name(name: &str) -> String {
    format!("{name}-istio")
}

/// The controller named in route statuses, as Istio names itself.
pub const CONTROLLER_NAME: &str = "istio.io/gateway-controller";

/// The label Istio puts on the deployment of a Gateway's proxy, naming the
/// Gateway; the generated Istio Gateway and Service select it.
pub const GATEWAY_NAME_LABEL: &str = "gateway.networking.k8s.io/gateway-name";

/// The annotation that sets the type of the Service Istio creates.
pub const SERVICE_TYPE_ANNOTATION: &str = "networking.istio.io/service-type";

/// The Service types a Gateway's `networking.istio.io/service-type` may ask for.
pub const SERVICE_TYPES: [&str; 3] = ["ClusterIP", "LoadBalancer", "NodePort"];

/// The versions of [`GROUP`] each kind is read in.
pub fn versions(kind: &str) -> &'static [&'static str] {
    match kind {
        "Gateway" | "HTTPRoute" => &["v1", "v1beta1"],
        "TLSRoute" | "TCPRoute" => &["v1alpha2"],
        "ReferenceGrant" => &["v1beta1"],
        _ => &[],
    }
}

/// The Gateway API objects of a config directory, as read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GatewayApi {
    pub gateways: Vec<Resource<KubernetesGateway>>,
    pub http_routes: Vec<Resource<HttpRouteSpec>>,
    pub tls_routes: Vec<Resource<TlsRouteSpec>>,
    pub tcp_routes: Vec<Resource<TcpRouteSpec>>,
    pub reference_grants: Vec<Resource<ReferenceGrant>>,
    /// The version each object was written in, by kind, namespace and
    /// name, which its status names.
    pub api_versions: BTreeMap<(Kind, String, String), &'static str>,
}

impl GatewayApi {
    /// Records that the last object of `kind` read was written in
    /// `written` (`v1`, `v1beta1`, ...), a version read for the kind.
    pub fn record_version(&mut self, kind: Kind, written: &str) {
        let Some(version) = versions(kind_name(kind))
            .iter()
            .find(|version| **version == written)
        else {
            return;
        };
        let meta = match kind {
            Kind::KubernetesGateway => self.gateways.last().map(|r| &r.meta),
            Kind::HttpRoute => self.http_routes.last().map(|r| &r.meta),
            Kind::TlsRoute => self.tls_routes.last().map(|r| &r.meta),
            Kind::TcpRoute => self.tcp_routes.last().map(|r| &r.meta),
            Kind::ReferenceGrant => self.reference_grants.last().map(|r| &r.meta),
            _ => None,
        };
        if let Some(meta) = meta {
            let key = (kind, meta.namespace.clone(), meta.name.clone());
            self.api_versions.insert(key, version);
        }
    }

    /// The version the `kind` object `meta` was written in; the kind's
    /// first version for an object not read from a file.
    pub fn api_version(&self, kind: Kind, meta: &Meta) -> &'static str {
        let key = (kind, meta.namespace.clone(), meta.name.clone());
        self.api_versions.get(&key).copied().unwrap_or_else(|| {
            versions(kind_name(kind))
                .first()
                .copied()
                .unwrap_or_default()
        })
    }

    /// Whether a ReferenceGrant in `to_namespace` lets a `from_kind` of
    /// `from_namespace` refer to the `to_group`/`to_kind` object `to_name`.
    pub fn granted(
        &self,
        (from_kind, from_namespace): (&str, &str),
        (to_group, to_kind, to_name, to_namespace): (&str, &str, &str, &str),
    ) -> bool {
        self.reference_grants
            .iter()
            .filter(|grant| grant.meta.namespace == to_namespace)
            .any(|grant| {
                let from = grant.spec.from.iter().any(|from| {
                    from.group == GROUP
                        && from.kind == from_kind
                        && from.namespace == from_namespace
                });
                let to = grant.spec.to.iter().any(|to| {
                    core_group(&to.group) == core_group(to_group)
                        && to.kind == to_kind
                        && to.name.as_deref().is_none_or(|name| name == to_name)
                });
                from && to
            })
    }
}

/// The name of a Gateway API kind as its documents write it.
fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::KubernetesGateway => "Gateway",
        other => other.as_str(),
    }
}

/// The core group, written `""` or `core`.
fn core_group(group: &str) -> &str {
    if group == "core" { "" } else { group }
}
