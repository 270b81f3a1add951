//! One access log entry read as an egress observation: its destination (Host, SNI or original destination), port, protocol, decision, bytes and response code.

use std::net::IpAddr;
use std::sync::Arc;

use proto::pb::envoy::config::core::v3::{Address, address, socket_address};
use proto::pb::envoy::data::accesslog::v3::{
    AccessLogCommon, AccessLogType, HttpAccessLogEntry, HttpRequestProperties,
    HttpResponseProperties, TcpAccessLogEntry,
};
use shared::naming::{ClusterName, Direction};

use crate::config::ConfigSnapshot;
use crate::egress::{
    Decision, Destination, Observation, Protocol, SourceWorkload, decide, handled_by,
};
use shared::egress::EGRESS_POLICY_FIELD;

/// The port of a sidecar's outbound capture listener: the local address of
/// an explicit-mode connection, never an original destination.
const OUTBOUND_CAPTURE: u16 = shared::ports::OUTBOUND_CAPTURE;
/// The port of an HTTP destination that names none.
const HTTP_DEFAULT_PORT: u16 = 80;
/// The longest DNS name.
const MAX_HOST_LEN: usize = 253;

/// Why an entry is not an observation (the label of
/// `egress_access_log_entries_dropped_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skipped {
    /// Inbound traffic: not egress.
    Inbound,
    /// An entry before a request's or connection's end (start, periodic,
    /// upstream); its final entry counts.
    Intermediate,
    /// Neither a host nor an address to name the destination by.
    NoDestination,
}

impl Skipped {
    pub fn reason(self) -> &'static str {
        match self {
            Skipped::Inbound => "inbound",
            Skipped::Intermediate => "intermediate",
            Skipped::NoDestination => "no_destination",
        }
    }
}

/// What every entry's common properties say.
pub struct Common<'a> {
    cluster: &'a str,
    decision: Decision,
    /// The cluster's service port and host, for an `outbound|...` cluster.
    service: Option<(u16, &'a str)>,
    /// The original destination (`downstream_local_address`).
    original: Option<(IpAddr, u16)>,
    sni: Option<String>,
}

/// What an entry's kind tells beyond its common properties.
pub struct Traffic {
    destination: Destination,
    received_bytes: u64,
    sent_bytes: u64,
    response_code: Option<u32>,
}

/// An access log entry of either kind (HTTP or TCP).
pub trait LogEntry {
    fn common_properties(&self) -> Option<&AccessLogCommon>;
    /// Its destination, bytes and response code, given its `common` properties.
    fn traffic(&self, common: &Common<'_>) -> Result<Traffic, Skipped>;
}

/// `entry`, from `source`, as an observation recorded `at`.
pub fn observation<E: LogEntry>(
    source: &Arc<SourceWorkload>,
    entry: &E,
    snapshot: &ConfigSnapshot,
    at: u64,
) -> Result<Observation, Skipped> {
    let common = common(entry.common_properties())?;
    let traffic = entry.traffic(&common)?;
    Ok(Observation {
        handled_by: handled_by(snapshot, &source.namespace, common.cluster, common.decision),
        source: Arc::clone(source),
        destination: traffic.destination,
        decision: common.decision,
        received_bytes: traffic.received_bytes,
        sent_bytes: traffic.sent_bytes,
        response_code: traffic.response_code,
        at,
    })
}

fn common(properties: Option<&AccessLogCommon>) -> Result<Common<'_>, Skipped> {
    let Some(properties) = properties else {
        return Err(Skipped::NoDestination);
    };
    if !is_final(properties.access_log_type) {
        return Err(Skipped::Intermediate);
    }
    let cluster = properties.upstream_cluster.as_str();
    let name = ClusterName::parse(cluster);
    if name
        .as_ref()
        .is_some_and(|n| n.direction == Direction::Inbound)
    {
        return Err(Skipped::Inbound);
    }
    let mark = properties
        .custom_tags
        .get(EGRESS_POLICY_FIELD)
        .map(String::as_str);
    Ok(Common {
        cluster,
        decision: decide(mark, cluster, &properties.route_name),
        service: name.map(|n| (n.port, n.host)),
        original: properties
            .downstream_local_address
            .as_ref()
            .and_then(socket_address)
            .filter(|(_, port)| *port != OUTBOUND_CAPTURE),
        sni: properties
            .tls_properties
            .as_ref()
            .and_then(|tls| host_name(&tls.tls_sni_hostname)),
    })
}

/// An HTTP entry: the destination is its authority (Host, or the CONNECT
/// target), else its SNI or original destination; the port is the
/// authority's, else the cluster's, else the original destination's, else 80.
impl LogEntry for HttpAccessLogEntry {
    fn common_properties(&self) -> Option<&AccessLogCommon> {
        self.common_properties.as_ref()
    }

    fn traffic(&self, common: &Common<'_>) -> Result<Traffic, Skipped> {
        let (no_request, no_response) = Default::default();
        let request: &HttpRequestProperties = self.request.as_ref().unwrap_or(&no_request);
        let response: &HttpResponseProperties = self.response.as_ref().unwrap_or(&no_response);
        let (authority_host, authority_port) = split_authority(&request.authority);
        let host = authority_host
            .or_else(|| common.sni.clone())
            .or_else(|| common.original.map(|(ip, _)| ip.to_string()))
            .or_else(|| common.service.and_then(|(_, host)| host_name(host)))
            .ok_or(Skipped::NoDestination)?;
        let port = authority_port
            .or(common.service.map(|(port, _)| port))
            .or(common.original.map(|(_, port)| port))
            .unwrap_or(HTTP_DEFAULT_PORT);
        Ok(Traffic {
            destination: Destination {
                host,
                port,
                protocol: Protocol::Http,
            },
            received_bytes: request
                .request_headers_bytes
                .saturating_add(request.request_body_bytes),
            sent_bytes: response
                .response_headers_bytes
                .saturating_add(response.response_body_bytes),
            response_code: Some(response.response_code.map_or(0, |code| code.value)),
        })
    }
}

/// A TCP entry: TLS by its SNI when it has one, else TCP to its original
/// destination address (or its cluster's host).
impl LogEntry for TcpAccessLogEntry {
    fn common_properties(&self) -> Option<&AccessLogCommon> {
        self.common_properties.as_ref()
    }

    fn traffic(&self, common: &Common<'_>) -> Result<Traffic, Skipped> {
        let connection = self.connection_properties.unwrap_or_default();
        let (host, protocol) = match common.sni.clone() {
            Some(sni) => (Some(sni), Protocol::Tls),
            None => (
                common
                    .original
                    .map(|(ip, _)| ip.to_string())
                    .or_else(|| common.service.and_then(|(_, host)| host_name(host))),
                Protocol::Tcp,
            ),
        };
        let host = host.ok_or(Skipped::NoDestination)?;
        let port = common
            .original
            .map(|(_, port)| port)
            .or(common.service.map(|(port, _)| port))
            .ok_or(Skipped::NoDestination)?;
        Ok(Traffic {
            destination: Destination {
                host,
                port,
                protocol,
            },
            received_bytes: connection.received_bytes,
            sent_bytes: connection.sent_bytes,
            response_code: None,
        })
    }
}

/// Whether an entry of this `AccessLogType` is the one a request or
/// connection ends with (or an entry from before types were set).
fn is_final(access_log_type: i32) -> bool {
    matches!(
        AccessLogType::try_from(access_log_type),
        Ok(AccessLogType::NotSet | AccessLogType::TcpConnectionEnd | AccessLogType::DownstreamEnd)
    )
}

fn socket_address(address: &Address) -> Option<(IpAddr, u16)> {
    let Some(address::Address::SocketAddress(socket)) = &address.address else {
        return None;
    };
    let ip = socket.address.parse().ok()?;
    match socket.port_specifier {
        Some(socket_address::PortSpecifier::PortValue(port)) => {
            Some((ip, u16::try_from(port).ok().filter(|p| *p != 0)?))
        }
        _ => None,
    }
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`: the host (a valid name or
/// address, lowercased) and the port, each when present and valid.
fn split_authority(authority: &str) -> (Option<String>, Option<u16>) {
    let (host, port) = match authority.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((host, tail)) => (host, tail.strip_prefix(':')),
            None => return (None, None),
        },
        None if authority.matches(':').count() > 1 => (authority, None),
        None => match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    let port = port
        .and_then(|port| port.parse::<u16>().ok())
        .filter(|p| *p != 0);
    (host_name(host), port)
}

/// `text` as a destination host: an IP address, or a DNS name (letters,
/// digits, `-`, `_` and `.`), lowercased without its trailing dot; `None`
/// for anything else, so what a client wrote in a header reaches no table
/// or YAML unchecked.
pub fn host_name(text: &str) -> Option<String> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip.to_string());
    }
    let name = text.trim_end_matches('.').to_ascii_lowercase();
    let valid = !name.is_empty()
        && name.len() <= MAX_HOST_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !name.starts_with('.')
        && !name.contains("..");
    valid.then_some(name)
}
