//! TCPRoute (`v1alpha2`): TCP connections on a port, routed to backends.

use serde::Deserialize;

use super::references::ParentReference;
use super::tls_route::L4RouteRule;

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcpRouteSpec {
    #[serde(default)]
    pub parent_refs: Vec<ParentReference>,
    #[serde(default)]
    pub rules: Vec<L4RouteRule>,
}
