//! Istio `networking.istio.io` resources, as their YAML spells them.
//!
//! Field names follow the Istio API (camelCase). Every struct rejects fields
//! it does not know, so a typo is reported instead of silently ignored, and
//! a valid Istio field it does not read is reported as not supported
//! ([`fields`] says which are which). One module per kind.

use std::collections::BTreeMap;

pub mod fields;
pub mod kube;
pub mod secret;
mod workload_group;
pub use secret::Secret;
pub use workload_group::{WorkloadGroup, WorkloadGroupMeta};

mod destination_rule;
mod gateway;
mod mesh;
mod service_entry;
mod sidecar;
mod virtual_service;

pub use destination_rule::{
    ClientTlsSettings, ConnectionPoolSettings, ConsistentHashLb, DestinationRule, H2UpgradePolicy,
    HttpCookie, HttpSettings, LoadBalancerSettings, Maglev, MatchLabelsSelector, OutlierDetection,
    PortTrafficPolicy, RingHash, SimpleLb, Subset, TcpKeepalive, TcpSettings, TlsMode,
    TrafficPolicy,
};
pub use gateway::{Gateway, Server, ServerTlsMode, ServerTlsSettings};
pub use mesh::{
    AccessLogEncoding, MeshConfig, OutboundMode, OutboundTrafficPolicy, PathNormalization,
};
pub use service_entry::{
    Location, Resolution, ServiceEntry, ServicePort, WorkloadEntry, WorkloadSelector,
};
pub use sidecar::{DRY_RUN_ANNOTATION, IstioEgressListener, Sidecar};
pub use virtual_service::{
    CorsPolicy, Destination, FaultAbort, FaultDelay, HeaderOperations, Headers, HttpFaultInjection,
    HttpMatchRequest, HttpMirrorPolicy, HttpRedirect, HttpRetry, HttpRewrite, HttpRoute,
    HttpRouteDestination, L4MatchAttributes, Percent, PortSelector, RouteDestination, StringMatch,
    TcpRoute, TlsMatchAttributes, TlsRoute, UnmatchedPreflights, VirtualService,
};

pub type Labels = BTreeMap<String, String>;
