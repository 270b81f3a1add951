//! Pure translation: `(ConfigSnapshot, workloads, proxy) → Envoy resources`.
//!
//! One module per resource kind. Nothing here does I/O; the output for the
//! same input is always the same (sorted by name), which is what the golden
//! tests and the server's content-hash versions rely on.

pub mod access_log;
pub mod access_log_service;
pub mod cluster;
pub mod config_metadata;
pub mod egress_policy;
pub mod endpoint;
pub mod filters;
pub mod gateway;
pub mod gateway_tcp;
pub mod gateway_tls;
pub mod hash_policy;
pub mod listener;
pub mod name_table;
pub mod proxy;
pub mod registry;
pub mod route;
mod route_encoding;
pub mod secret;
pub mod tcp;
pub mod tls_chains;

#[cfg(test)]
mod kubernetes_tests;
#[cfg(test)]
pub(crate) mod test_proxies;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use proto::nds::NameTable;
use proto::pb::envoy::config::cluster::v3::Cluster;
use proto::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use proto::pb::envoy::config::listener::v3::Listener;
use proto::pb::envoy::config::route::v3::RouteConfiguration;
use proto::pb::envoy::extensions::transport_sockets::tls::v3::Secret;
use proto::wkt::Any;
use shared::node::NodeType;
use shared::type_url;

use crate::config::ConfigSnapshot;
pub use proxy::{Proxy, Workload};
use registry::MeshView;

/// Everything one proxy is sent, by kind.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProxyResources {
    pub clusters: Vec<Cluster>,
    pub endpoints: Vec<ClusterLoadAssignment>,
    pub listeners: Vec<Listener>,
    pub routes: Vec<RouteConfiguration>,
    /// The `kubernetes://` secrets of its namespace its clusters and
    /// listeners reference (sent when it asks).
    pub secrets: Vec<Secret>,
    /// The name table of a sidecar whose agent captures DNS.
    pub name_table: Option<NameTable>,
}

/// Resources as the xDS server handles them: per type URL, name → `Any`.
pub type TypedResources = BTreeMap<&'static str, BTreeMap<String, Any>>;

/// Builds the xDS resources for `proxy` from the config and the workloads
/// (connected proxies) currently known.
pub fn translate(
    snapshot: &ConfigSnapshot,
    workloads: &[Workload],
    proxy: &Proxy,
) -> ProxyResources {
    let view = MeshView::new(snapshot, workloads, proxy);
    let clusters = cluster::build_clusters(&view);
    let endpoints = endpoint::build_endpoints(&view, &clusters);
    let (mut listeners, routes) = match proxy.node_type {
        NodeType::Sidecar => (
            listener::build_sidecar_listeners(&view),
            route::build_sidecar_routes(&view),
        ),
        NodeType::Router => (
            gateway::build_gateway_listeners(&view),
            gateway::build_gateway_routes(&view),
        ),
    };
    if let Some(log) = access_log::file_access_log(&snapshot.mesh) {
        access_log::add_file_access_log(&mut listeners, &log);
    }
    let secrets = secret::build_served_secrets(snapshot, &proxy.namespace, &clusters, &listeners);
    let name_table = name_table::build_name_table(&view);
    ProxyResources {
        clusters,
        endpoints,
        listeners,
        routes,
        secrets,
        name_table,
    }
}

impl ProxyResources {
    /// Packs every resource into `Any`, keyed by type URL and name.
    pub fn into_typed(self) -> TypedResources {
        let mut typed = TypedResources::new();
        typed.insert(
            type_url::CLUSTER,
            self.clusters
                .iter()
                .map(|c| (c.name.clone(), proto::pack(type_url::CLUSTER, c)))
                .collect(),
        );
        typed.insert(
            type_url::ENDPOINT,
            self.endpoints
                .iter()
                .map(|e| (e.cluster_name.clone(), proto::pack(type_url::ENDPOINT, e)))
                .collect(),
        );
        typed.insert(
            type_url::LISTENER,
            self.listeners
                .iter()
                .map(|l| (l.name.clone(), proto::pack(type_url::LISTENER, l)))
                .collect(),
        );
        typed.insert(
            type_url::ROUTE,
            self.routes
                .iter()
                .map(|r| {
                    let any = Any {
                        type_url: type_url::ROUTE.to_string(),
                        value: route_encoding::encode_route_configuration(r),
                    };
                    (r.name.clone(), any)
                })
                .collect(),
        );
        typed.insert(
            type_url::SECRET,
            self.secrets
                .iter()
                .map(|s| (s.name.clone(), proto::pack(type_url::SECRET, s)))
                .collect(),
        );
        // One unnamed table, as istiod sends it.
        typed.insert(
            type_url::NAME_TABLE,
            self.name_table
                .iter()
                .map(|t| (String::new(), proto::pack(type_url::NAME_TABLE, t)))
                .collect(),
        );
        typed
    }
}

/// Renders typed resources as JSON, `{ "clusters": [...], ... }` for the
/// requested type URLs, in protobuf's canonical JSON (as Envoy's config_dump,
/// private keys redacted as Envoy redacts them).
pub fn to_json(
    resources: &TypedResources,
    types: &[&str],
) -> Result<serde_json::Value, proto::JsonError> {
    let mut out = serde_json::Map::new();
    for type_url in types {
        let mut items = Vec::new();
        if let Some(by_name) = resources.get(type_url) {
            for any in by_name.values() {
                let redacted;
                let bytes = if *type_url == type_url::SECRET {
                    redacted = secret::redact_private_key(&any.value);
                    &redacted
                } else {
                    &any.value
                };
                items.push(proto::bytes_to_json(
                    type_url::message_name(type_url),
                    bytes,
                )?);
            }
        }
        out.insert(
            type_url::short_name(type_url).to_string(),
            serde_json::Value::Array(items),
        );
    }
    Ok(serde_json::Value::Object(out))
}
