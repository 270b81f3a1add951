//! Clusters and their endpoints: how a cluster finds hosts, balances between
//! them, and speaks to them (plain or TLS originated, HTTP/1.1 or HTTP/2).

use std::sync::Arc;
use std::time::Duration;

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
    pub idle_timeout: Option<Duration>,
    pub max_requests_per_connection: Option<u32>,
    pub max_connections: Option<u32>,
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
}

/// TLS origination settings, with certificate material already read and
/// parsed (a missing or bad file rejects the cluster).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamTls {
    /// SNI to send; empty sends none.
    pub sni: String,
    pub trust: Trust,
    /// Accepted subject alt names (any one of them); empty accepts the
    /// name verified by SNI.
    pub subject_alt_names: Vec<SubjectAltName>,
    /// PEM of the client certificate chain and key (mutual TLS).
    pub client_cert: Option<ClientCert>,
    pub alpn: Vec<String>,
    /// Check the server certificate against the SNI (or the SANs). Mesh
    /// certificates (SPIFFE, roots from SDS) carry no DNS names: only their
    /// chain is verified, as Envoy does without SAN matchers.
    pub verify_server_name: bool,
}

/// A subject alt name a server certificate may carry to be accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectAltName {
    /// A DNS name, checked as a server name is.
    Dns(String),
    /// A URI, such as a SPIFFE id, compared exactly.
    Uri(String),
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
