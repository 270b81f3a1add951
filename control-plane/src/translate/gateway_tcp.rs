//! A gateway's plain TCP server (protocol TCP or MONGO, no TLS
//! termination), as istiod builds it: one filter chain without a match,
//! from the first `tcp` route that applies, of the VirtualServices bound to
//! the gateway whose hosts the server admits.

use proto::pb::envoy::config::listener::v3::{Filter, FilterChain};

use super::registry::{GatewayRef, MeshView};
use super::tcp::{gateway_match, route_filter};

/// The filter chain for a plain TCP server on `server_port` of `gateway`;
/// `admits(host, vs_namespace)` says whether the server's `hosts` admit a
/// VirtualService host. `None` when no route applies: istiod then leaves
/// the server without a chain.
pub fn gateway_tcp_chain(
    view: &MeshView<'_>,
    gateway: &GatewayRef,
    server_port: u32,
    admits: impl Fn(&str, &str) -> bool,
) -> Option<FilterChain> {
    gateway_tcp_filter(view, gateway, server_port, admits).map(|filter| FilterChain {
        filters: vec![filter],
        ..Default::default()
    })
}

/// The TCP proxy a server on `server_port` of `gateway` sends connections
/// to (after TLS termination, for a TLS server that terminates): the first
/// `tcp` route that applies on the port, of the first VirtualService bound
/// to the gateway with a host the server admits.
pub fn gateway_tcp_filter(
    view: &MeshView<'_>,
    gateway: &GatewayRef,
    server_port: u32,
    admits: impl Fn(&str, &str) -> bool,
) -> Option<Filter> {
    view.virtual_services_for(gateway)
        .into_iter()
        .filter(|(vs, vs_hosts)| vs_hosts.iter().any(|h| admits(h, &vs.meta.namespace)))
        .find_map(|(vs, _)| {
            let tcp = vs
                .spec
                .tcp
                .iter()
                .find(|tcp| gateway_match(vs, &tcp.matches, gateway, server_port))?;
            route_filter(view, vs, &tcp.route, server_port)
        })
}
