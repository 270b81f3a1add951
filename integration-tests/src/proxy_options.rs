//! A proxy under test as the control plane sees it: its identity (node id,
//! role, workload labels) and where it gets its config and resolves names.
//! Both launchers, our agent ([`crate::data_plane::DataPlane`]) and Envoy
//! ([`crate::envoy::Envoy`]), start a proxy from one of these.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use shared::node::{NodeId, NodeType};

/// The workload IP a test proxy claims unless told otherwise
/// ([`ProxyOptions::ip`]).
const PROXY_IP: &str = "127.0.0.1";

/// What the proxy under test is and where it finds its peers.
#[derive(Debug, Clone)]
pub struct ProxyOptions {
    /// Its identity; the node type is its role (sidecar or router).
    pub node: NodeId,
    /// The workload labels.
    pub labels: BTreeMap<String, String>,
    /// The control plane's ADS address.
    pub xds_addr: SocketAddr,
    /// The only DNS server the proxy may use.
    pub dns_addr: SocketAddr,
}

impl ProxyOptions {
    /// The sidecar of workload `app` in `namespace`, labelled `app=<app>`.
    pub fn sidecar(app: &str, namespace: &str, xds_addr: SocketAddr, dns_addr: SocketAddr) -> Self {
        Self::new(NodeType::Sidecar, app, namespace, xds_addr, dns_addr)
    }

    /// A gateway named `name` in `namespace`, labelled `app=<name>`; add
    /// e.g. `.label("istio", "egressgateway")` for Istio's egress gateway.
    pub fn router(name: &str, namespace: &str, xds_addr: SocketAddr, dns_addr: SocketAddr) -> Self {
        Self::new(NodeType::Router, name, namespace, xds_addr, dns_addr)
    }

    /// The app of Istio's egress tasks: the sidecar of `sleep` in
    /// `default`.
    pub fn sleep(xds_addr: SocketAddr, dns_addr: SocketAddr) -> Self {
        Self::sidecar("sleep", "default", xds_addr, dns_addr)
    }

    /// Istio's egress gateway: `istio-egressgateway` in `istio-system`,
    /// labelled `istio=egressgateway` as its Gateway resources select it.
    pub fn egress_gateway(xds_addr: SocketAddr, dns_addr: SocketAddr) -> Self {
        Self::router("istio-egressgateway", "istio-system", xds_addr, dns_addr)
            .label("istio", "egressgateway")
    }

    fn new(
        node_type: NodeType,
        app: &str,
        namespace: &str,
        xds_addr: SocketAddr,
        dns_addr: SocketAddr,
    ) -> Self {
        Self {
            node: NodeId::new(node_type, PROXY_IP, app, namespace),
            labels: BTreeMap::from([("app".to_string(), app.to_string())]),
            xds_addr,
            dns_addr,
        }
    }

    /// Adds (or replaces) a workload label.
    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.insert(key.to_string(), value.to_string());
        self
    }

    /// The workload IP, in the node id (and so in the `INSTANCE_IPS`
    /// metadata): the address other proxies reach it at when a service
    /// selects it (a gateway's in-mesh service).
    pub fn ip(mut self, ip: IpAddr) -> Self {
        self.node.ip = ip.to_string();
        self
    }

    /// The proxy's role as the agent's command line names it.
    pub fn role(&self) -> &'static str {
        match self.node.node_type {
            NodeType::Sidecar => "sidecar",
            NodeType::Router => "router",
        }
    }

    /// The labels as `k=v,..`.
    pub fn labels_arg(&self) -> String {
        self.labels
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, port))
    }

    #[test]
    fn a_sidecar_is_named_as_pilot_agent_names_a_pod() {
        let options = ProxyOptions::sleep(addr(15010), addr(53));
        assert_eq!(
            options.node.to_string(),
            "sidecar~127.0.0.1~sleep.default~default.svc.cluster.local"
        );
        assert_eq!(options.role(), "sidecar");
        assert_eq!(options.labels_arg(), "app=sleep");
    }

    #[test]
    fn an_egress_gateway_is_a_labelled_router_at_its_own_ip() {
        let options = ProxyOptions::egress_gateway(addr(1), addr(2))
            .ip(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7)));
        assert_eq!(
            options.node.to_string(),
            "router~10.0.0.7~istio-egressgateway.istio-system~istio-system.svc.cluster.local"
        );
        assert_eq!(options.role(), "router");
        assert_eq!(
            options.labels_arg(),
            "app=istio-egressgateway,istio=egressgateway"
        );
    }
}
