//! Clusters and their endpoints: how a cluster finds hosts, balances between
//! them, and speaks to them (plain or TLS originated, HTTP/1.1 or HTTP/2).

use std::sync::Arc;
use std::time::Duration;

use shared::workload::EndpointWorkload;

use crate::model::route::StringMatch;

pub use super::resilience::{CircuitBreakers, OutlierDetection, PanicThreshold};

/// A cluster from CDS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    pub name: Arc<str>,
    pub discovery: Discovery,
    pub lb: LbPolicy,
    pub connect_timeout: Duration,
    pub tls: Option<Arc<UpstreamTls>>,
    /// Speak HTTP/2 (h2c or ALPN h2) to the upstream.
    pub http2: bool,
    /// Speak the downstream request's HTTP version instead (HTTP/2 for an
    /// HTTP/2 request, else HTTP/1.1: `use_downstream_protocol_config`).
    pub follow_downstream_protocol: bool,
    pub idle_timeout: Option<Duration>,
    /// Requests per upstream connection before it is closed (none: no
    /// limit; Envoy's `max_requests_per_connection`, 0 = no limit).
    pub max_requests_per_connection: Option<u32>,
    /// Age at which an upstream connection is drained: no new requests,
    /// closed once its requests are done (`max_connection_duration`).
    pub max_connection_duration: Option<Duration>,
    /// TCP keepalive on upstream sockets (`upstream_connection_options`).
    pub tcp_keepalive: Option<super::keepalive::TcpKeepalive>,
    pub circuit_breakers: CircuitBreakers,
    pub outlier_detection: Option<OutlierDetection>,
    pub healthy_panic_threshold: PanicThreshold,
    /// SDS secrets the cluster's TLS refers to.
    pub secret_names: Vec<Arc<str>>,
}

/// How a cluster finds its hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Discovery {
    /// Fixed endpoints.
    Static(LoadAssignment),
    /// Host names resolved and re-resolved (STRICT_DNS: all addresses; LOGICAL_DNS: the first).
    Dns {
        assignment: LoadAssignment,
        logical: bool,
    },
    /// Endpoints from EDS, by service name.
    Eds { service_name: Arc<str> },
    /// The connection's original destination (PassthroughCluster).
    OriginalDst,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LbPolicy {
    RoundRobin,
    LeastRequest,
    Random,
    /// Consistent hashing on a ring of xxHash64 points, each host getting
    /// a share of the ring between the size bounds by its weight.
    RingHash {
        minimum_ring_size: u64,
        maximum_ring_size: u64,
    },
    /// Consistent hashing through a Maglev lookup table (a prime size).
    Maglev {
        table_size: u64,
    },
}

impl LbPolicy {
    /// Whether hosts are picked by the request's hash (RING_HASH, MAGLEV).
    pub fn is_hash_based(self) -> bool {
        matches!(self, Self::RingHash { .. } | Self::Maglev { .. })
    }
}

/// Endpoints of a cluster (from EDS or inline).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadAssignment {
    pub cluster_name: Arc<str>,
    pub endpoints: Vec<Endpoint>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// An IP address, or a host name for DNS clusters.
    pub host: String,
    pub port: u16,
    pub weight: u32,
    /// False when the control plane says the host is UNHEALTHY, DRAINING
    /// or TIMEOUT: Envoy then balances over the other hosts, unless too
    /// few are healthy (panic mode).
    pub healthy: bool,
    /// The workload behind the host, from its `istio.workload` metadata,
    /// which Istio's metrics label the destination with; one per endpoint,
    /// shared by everything sent to it.
    pub peer: Option<Arc<EndpointWorkload>>,
}

/// TLS origination settings, with certificate material already read and
/// parsed (a missing or bad file rejects the cluster).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamTls {
    /// SNI to send; empty sends none.
    pub sni: String,
    /// Send the request's host (its Host header without the port) as SNI
    /// instead, unless it is an IP address (the cluster's `auto_sni`).
    pub auto_sni: bool,
    pub trust: Trust,
    /// Accepted subject alt names (any one of them matching); empty checks
    /// no name unless `verify_server_name`.
    pub subject_alt_names: Vec<SubjectAltName>,
    /// PEM of the client certificate chain and key (mutual TLS).
    pub client_cert: Option<ClientCert>,
    pub alpn: Vec<String>,
    /// Check the server certificate against the name sent as SNI when no
    /// subject alt names are configured (the cluster's
    /// `auto_san_validation`). Otherwise only the chain is verified, as
    /// Envoy does without SAN matchers.
    pub verify_server_name: bool,
}

/// A subject alt name matcher (`match_typed_subject_alt_names`): a server
/// certificate is accepted when one of its SANs of `san_type` matches
/// `pattern`. An exact DNS pattern follows DNS rules as Envoy's does (case
/// insensitive, a `*.` certificate name covers one label).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectAltName {
    pub san_type: SanType,
    pub pattern: StringMatch,
    pub ignore_case: bool,
}

impl SubjectAltName {
    /// A DNS name matched exactly (by DNS rules).
    pub fn dns(name: impl Into<String>) -> Self {
        Self::exact(SanType::Dns, name)
    }

    /// A URI, such as a SPIFFE id, compared exactly.
    pub fn uri(uri: impl Into<String>) -> Self {
        Self::exact(SanType::Uri, uri)
    }

    fn exact(san_type: SanType, value: impl Into<String>) -> Self {
        Self {
            san_type,
            pattern: StringMatch::Exact(value.into()),
            ignore_case: false,
        }
    }
}

/// The kinds of subject alt names Envoy matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SanType {
    Dns,
    Uri,
    Email,
    IpAddress,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// No verification (no validation context).
    None,
    /// The system's root certificates.
    System,
    /// CA certificates (DER) from a file or inline PEM.
    Roots(Vec<Vec<u8>>),
}

/// A certificate chain (DER, leaf first) and its private key (DER).
#[derive(Clone, PartialEq, Eq)]
pub struct ClientCert {
    pub chain: Vec<Vec<u8>>,
    pub key: Vec<u8>,
}

/// Never prints the key.
impl std::fmt::Debug for ClientCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCert")
            .field("chain", &self.chain)
            .finish_non_exhaustive()
    }
}
