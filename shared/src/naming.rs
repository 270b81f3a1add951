//! Envoy resource names as Istio spells them, so istioctl habits carry over.

use std::fmt;

/// The cluster that forwards to the connection's original destination.
pub const PASSTHROUGH_CLUSTER: &str = "PassthroughCluster";
/// The cluster with no endpoints: everything sent there fails.
pub const BLACKHOLE_CLUSTER: &str = "BlackHoleCluster";
/// The sidecar's listener for captured outbound traffic.
pub const VIRTUAL_OUTBOUND_LISTENER: &str = "virtualOutbound";
/// The route configuration name used for blocked HTTP traffic.
pub const BLOCK_ALL_ROUTE: &str = "block_all";
/// The route configuration name used for passthrough HTTP traffic.
pub const ALLOW_ANY_ROUTE: &str = "allow_any";
/// The cluster through which TLS contexts ask the proxy's own agent for its
/// identity (pilot-agent's SDS socket under Envoy).
pub const SDS_CLUSTER: &str = "sds-grpc";
/// The SDS secret with the proxy's own certificate chain and key.
pub const SDS_WORKLOAD_CERTIFICATE: &str = "default";
/// The SDS secret with the mesh roots that verify peers.
pub const SDS_ROOT_CA: &str = "ROOTCA";

/// Direction part of a cluster name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Outbound,
    Inbound,
}

impl Direction {
    fn as_str(self) -> &'static str {
        match self {
            Direction::Outbound => "outbound",
            Direction::Inbound => "inbound",
        }
    }
}

/// A service cluster name: `outbound|<port>|<subset>|<host>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClusterName<'a> {
    pub direction: Direction,
    pub port: u16,
    pub subset: &'a str,
    pub host: &'a str,
}

impl<'a> ClusterName<'a> {
    pub fn outbound(port: u16, subset: &'a str, host: &'a str) -> Self {
        Self {
            direction: Direction::Outbound,
            port,
            subset,
            host,
        }
    }

    /// Parses `outbound|80|subset|host`; `None` for any other name.
    pub fn parse(name: &'a str) -> Option<Self> {
        let mut parts = name.splitn(4, '|');
        let direction = match parts.next()? {
            "outbound" => Direction::Outbound,
            "inbound" => Direction::Inbound,
            _ => return None,
        };
        let port = parts.next()?.parse().ok()?;
        let subset = parts.next()?;
        let host = parts.next()?;
        Some(Self {
            direction,
            port,
            subset,
            host,
        })
    }
}

impl fmt::Display for ClusterName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}|{}|{}|{}",
            self.direction.as_str(),
            self.port,
            self.subset,
            self.host
        )
    }
}

/// The listener name for a wildcard-address port: `0.0.0.0_<port>`.
pub fn wildcard_listener(port: u16) -> String {
    format!("0.0.0.0_{port}")
}

/// The sidecar's route configuration name for an HTTP port: `<port>`.
pub fn sidecar_route(port: u16) -> String {
    port.to_string()
}

/// The gateway's route configuration name for an HTTP server port: `http.<port>`.
pub fn gateway_route(port: u16) -> String {
    format!("http.{port}")
}

/// The gateway's route configuration name for an HTTPS server that
/// terminates TLS (ISTIO_MUTUAL): `https.<port>.<port name>.<gateway>.<namespace>`.
pub fn gateway_https_route(port: u16, port_name: &str, gateway: &str, namespace: &str) -> String {
    format!("https.{port}.{port_name}.{gateway}.{namespace}")
}

/// The decorator operation Istio sets on routes: `<host>:<port>/*`.
pub fn decorator_operation(host: &str, port: u16) -> String {
    format!("{host}:{port}/*")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_name_round_trips() {
        let name = ClusterName::outbound(443, "tls-origination", "edition.cnn.com");
        let text = name.to_string();
        assert_eq!(text, "outbound|443|tls-origination|edition.cnn.com");
        assert_eq!(ClusterName::parse(&text), Some(name));
    }

    #[test]
    fn cluster_name_rejects_other_names() {
        assert_eq!(ClusterName::parse(PASSTHROUGH_CLUSTER), None);
        assert_eq!(ClusterName::parse("outbound|http|a|b"), None);
        assert_eq!(ClusterName::parse("outbound|80|a"), None);
    }
}
