//! xDS resource type URLs.

pub const CLUSTER: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
pub const ENDPOINT: &str = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
pub const LISTENER: &str = "type.googleapis.com/envoy.config.listener.v3.Listener";
pub const ROUTE: &str = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
pub const SECRET: &str = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";
/// Istio's name table (NDS), for the agent's DNS proxy.
pub const NAME_TABLE: &str = "type.googleapis.com/istio.networking.nds.v1.NameTable";

/// The order in which ADS pushes types, so that what a resource refers to
/// arrives before it: clusters, endpoints, listeners, routes, secrets; the
/// name table, which nothing refers to, last.
pub const PUSH_ORDER: [&str; 6] = [CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET, NAME_TABLE];

/// The message name inside a type URL (`envoy.config.cluster.v3.Cluster`).
pub fn message_name(type_url: &str) -> &str {
    type_url.rsplit('/').next().unwrap_or(type_url)
}

/// The short name Envoy and istioctl use for a type (`clusters`, `listeners`...).
pub fn short_name(type_url: &str) -> &'static str {
    match type_url {
        CLUSTER => "clusters",
        ENDPOINT => "endpoints",
        LISTENER => "listeners",
        ROUTE => "routes",
        SECRET => "secrets",
        NAME_TABLE => "name_tables",
        _ => "unknown",
    }
}
