//! Envoy protos → model, one file per resource. Every error names the
//! resource and the field it rejects, so the NACK's error_detail tells the
//! operator what to fix.

mod access_log;
mod access_log_format;
mod cluster;
mod connection_options;
mod cors;
mod data_source;
mod egress_policy;
mod endpoint;
mod fault;
mod fraction;
mod hash_policy;
mod hcm_timeouts;
mod http_filters;
mod listener;
mod mirror;
mod path_normalization;
mod resilience;
mod route;
mod router_filter;
mod server_header;
mod tcp_hash;
mod tcp_timeouts;
mod tls;
mod upgrade;

pub use cluster::cluster;
pub use endpoint::load_assignment;
pub use listener::listener;
pub use route::route_config;
pub use tls::secret;

use std::fmt::Display;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use prost::Message;
use proto::pb::envoy::config::core::v3::{Address, SocketAddress, address, socket_address};
use proto::wkt::Any;

use super::Error;

/// Where in a resource a conversion is: the resource, and the path of the
/// field being read (`filter_chains[0].transport_socket`).
#[derive(Debug)]
struct At<'a> {
    kind: &'static str,
    name: &'a str,
    path: String,
}

impl<'a> At<'a> {
    fn resource(kind: &'static str, name: &'a str) -> Self {
        Self {
            kind,
            name,
            path: String::new(),
        }
    }

    /// The field `field` below this one.
    fn field(&self, field: impl Display) -> Self {
        let path = if self.path.is_empty() {
            field.to_string()
        } else {
            format!("{}.{field}", self.path)
        };
        Self {
            kind: self.kind,
            name: self.name,
            path,
        }
    }

    /// The rejection of this field, for `reason`.
    fn error(&self, reason: impl Display) -> Error {
        Error::new(self.kind, self.name, self.path.clone(), reason.to_string())
    }
}

/// The message of `expected` type packed in `any`.
fn decode<M: Message + Default>(any: &Any, expected: &str, at: &At<'_>) -> Result<M, Error> {
    if any.type_url != expected {
        return Err(at.error(format!("expected {expected}, got {}", any.type_url)));
    }
    M::decode(any.value.as_slice()).map_err(|e| at.error(format!("cannot decode {expected}: {e}")))
}

/// A protobuf duration; negative parts count as zero.
fn duration(d: &proto::wkt::Duration) -> Duration {
    Duration::new(
        u64::try_from(d.seconds).unwrap_or(0),
        u32::try_from(d.nanos).unwrap_or(0),
    )
}

/// A non-zero duration, or `None` for an absent or zero one (Envoy's
/// "disabled").
fn enabled_duration(d: Option<&proto::wkt::Duration>) -> Option<Duration> {
    d.map(duration).filter(|d| !d.is_zero())
}

/// The socket address an `Address` holds, with its host as written (an IP
/// address, or a host name for DNS clusters) and its port.
fn host_port<'p>(address: Option<&'p Address>, at: &At<'_>) -> Result<(&'p str, u16), Error> {
    let Some(address::Address::SocketAddress(SocketAddress {
        address,
        port_specifier,
        ..
    })) = address.and_then(|a| a.address.as_ref())
    else {
        return Err(at.error("only socket addresses are supported"));
    };
    let port = match port_specifier {
        Some(socket_address::PortSpecifier::PortValue(port)) => {
            u16::try_from(*port).map_err(|_| at.error(format!("port {port} is out of range")))?
        }
        _ => return Err(at.error("a port number is required")),
    };
    Ok((address, port))
}

/// An `Address` that must be an IP address and port.
fn socket_addr(address: Option<&Address>, at: &At<'_>) -> Result<SocketAddr, Error> {
    let (host, port) = host_port(address, at)?;
    let ip: IpAddr = host
        .parse()
        .map_err(|_| at.error(format!("{host:?} is not an IP address")))?;
    Ok(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests;
