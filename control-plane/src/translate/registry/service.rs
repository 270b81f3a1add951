//! A service of the registry: one port of one ServiceEntry host, its protocol and addresses.

use std::net::IpAddr;

use crate::config::Resource;
use crate::config::model::{Resolution, ServiceEntry, ServicePort};

/// How a port's traffic is handled, from the declared protocol or, as Istio
/// does, the port name's prefix (`http-foo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Http,
    Http2,
    Grpc,
    Https,
    Tls,
    Tcp,
}

impl Protocol {
    pub fn of(port: &ServicePort) -> Self {
        let declared = port
            .protocol
            .clone()
            .unwrap_or_else(|| port.name.split('-').next().unwrap_or_default().to_string());
        match declared.to_ascii_uppercase().as_str() {
            "HTTP" | "HTTP_PROXY" => Protocol::Http,
            "HTTP2" => Protocol::Http2,
            "GRPC" | "GRPC-WEB" => Protocol::Grpc,
            "HTTPS" => Protocol::Https,
            "TLS" => Protocol::Tls,
            _ => Protocol::Tcp,
        }
    }

    /// Served by an HTTP connection manager.
    pub fn is_http(self) -> bool {
        matches!(self, Protocol::Http | Protocol::Http2 | Protocol::Grpc)
    }

    /// TLS the proxy does not terminate: routed by SNI.
    pub fn is_tls(self) -> bool {
        matches!(self, Protocol::Https | Protocol::Tls)
    }

    /// Speaks HTTP/2 upstream.
    pub fn is_http2(self) -> bool {
        matches!(self, Protocol::Http2 | Protocol::Grpc)
    }
}

/// One port of one host of a ServiceEntry.
#[derive(Debug, Clone)]
pub struct Service<'a> {
    pub host: String,
    pub namespace: &'a str,
    pub entry: &'a Resource<ServiceEntry>,
    pub port: &'a ServicePort,
}

impl Service<'_> {
    pub fn port_number(&self) -> u16 {
        u16::try_from(self.port.number).unwrap_or(0)
    }

    pub fn protocol(&self) -> Protocol {
        Protocol::of(self.port)
    }

    pub fn resolution(&self) -> Resolution {
        self.entry.spec.resolution
    }

    /// The service's `addresses` as istiod reads them: each IP or CIDR
    /// range is one virtual address; a range of one address (`/32`,
    /// `/128`) is that IP. Entries that are neither are left out.
    pub fn addresses(&self) -> Vec<ServiceAddress> {
        self.entry
            .spec
            .addresses
            .iter()
            .filter_map(|a| ServiceAddress::parse(a))
            .collect()
    }
}

/// A ServiceEntry address: one IP, or a CIDR range of several.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceAddress {
    Ip(IpAddr),
    Cidr { prefix: IpAddr, len: u8 },
}

impl ServiceAddress {
    pub fn parse(written: &str) -> Option<Self> {
        match written.split_once('/') {
            None => written.parse().ok().map(ServiceAddress::Ip),
            Some((ip, len)) => {
                let prefix: IpAddr = ip.parse().ok()?;
                let len: u8 = len.parse().ok()?;
                let bits = if prefix.is_ipv4() { 32 } else { 128 };
                match len.cmp(&bits) {
                    std::cmp::Ordering::Equal => Some(ServiceAddress::Ip(prefix)),
                    std::cmp::Ordering::Less => Some(ServiceAddress::Cidr { prefix, len }),
                    std::cmp::Ordering::Greater => None,
                }
            }
        }
    }
}

impl std::fmt::Display for ServiceAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServiceAddress::Ip(ip) => write!(f, "{ip}"),
            ServiceAddress::Cidr { prefix, len } => write!(f, "{prefix}/{len}"),
        }
    }
}
