//! Listeners: where to accept, which filter chain a connection takes, and
//! what that chain does with it (HTTP routing or a TCP proxy).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// Envoy's default `per_connection_buffer_limit_bytes` (1 MiB), the only
/// buffer limit the agent takes: its router keeps at most this much of a
/// request body for retries.
pub const BUFFER_LIMIT_BYTES: usize = 1024 * 1024;

use super::cluster::ClientCert;
use shared::egress::EgressPolicy;

/// A listener from LDS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub name: Arc<str>,
    pub address: SocketAddr,
    /// False for listeners that only receive connections handed over by
    /// a `use_original_dst` listener (Istio's per-port outbound listeners).
    pub bind_to_port: bool,
    /// Hand connections to the listener of their original destination.
    pub use_original_dst: bool,
    /// Read the TLS ClientHello's SNI before choosing a filter chain.
    pub inspect_tls: bool,
    /// How long the TLS inspector may wait, and what then.
    pub filters_timeout: FiltersTimeout,
    pub filter_chains: Vec<FilterChain>,
    pub default_chain: Option<FilterChain>,
}

/// How long the listener filters (the TLS inspector) may wait for a
/// connection's ClientHello, and what happens then: Envoy's
/// `listener_filters_timeout` (15 s when unset, none when 0) and
/// `continue_on_listener_filters_timeout` (false: the connection is
/// closed; true: a filter chain is chosen without SNI).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FiltersTimeout {
    pub timeout: Option<Duration>,
    pub continue_on_timeout: bool,
}

impl FiltersTimeout {
    /// Envoy's `listener_filters_timeout` when the listener leaves it unset.
    pub const DEFAULT: Duration = Duration::from_secs(15);
}

impl Default for FiltersTimeout {
    fn default() -> Self {
        Self {
            timeout: Some(Self::DEFAULT),
            continue_on_timeout: false,
        }
    }
}

/// A filter chain: which connections it takes and what it does with them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterChain {
    pub name: Arc<str>,
    pub destination_port: Option<u16>,
    /// Destination address ranges (`prefix_ranges`); empty matches any.
    pub destination_prefixes: Vec<CidrRange>,
    /// Terminate TLS (mesh mTLS at a gateway) before the action.
    pub tls: Option<DownstreamTls>,
    /// Exact names or `*.suffix` wildcards; empty matches any SNI (or none).
    pub server_names: Vec<String>,
    pub action: ChainAction,
    /// The egress mark of a fall-through chain (BlackHoleCluster, or
    /// PassthroughCluster under dry run).
    pub egress_policy: Option<EgressPolicy>,
}

/// An address range, as Envoy's `CidrRange`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CidrRange {
    pub prefix: IpAddr,
    pub len: u8,
}

impl CidrRange {
    /// Whether `ip` is in the range; an IPv4-mapped IPv6 address counts
    /// as the IPv4 address it carries.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.prefix, ip.to_canonical()) {
            (IpAddr::V4(prefix), IpAddr::V4(ip)) => {
                masked(u128::from(prefix.to_bits()), 32, self.len)
                    == masked(u128::from(ip.to_bits()), 32, self.len)
            }
            (IpAddr::V6(prefix), IpAddr::V6(ip)) => {
                masked(prefix.to_bits(), 128, self.len) == masked(ip.to_bits(), 128, self.len)
            }
            _ => false,
        }
    }
}

/// The first `len` of `bits` bits of `value`.
fn masked(value: u128, bits: u8, len: u8) -> u128 {
    let len = len.min(bits);
    if len == 0 { 0 } else { value >> (bits - len) }
}

/// TLS termination with the material it was built from. Equality is by
/// material; the server config is derived from it.
#[derive(Debug, Clone)]
pub struct DownstreamTls {
    pub certificate: Option<ClientCert>,
    pub client_roots: Option<Vec<Vec<u8>>>,
    pub require_client_certificate: bool,
    /// The ALPN protocols offered, in the server's order of preference
    /// (`h2`, `http/1.1` on an HTTPS server): the first the client also
    /// offers is negotiated.
    pub alpn: Vec<String>,
    /// SDS secrets this refers to.
    pub secret_names: Vec<Arc<str>>,
    /// `None` until the certificate (from SDS) is there: connections are reset.
    pub server_config: Option<Arc<rustls::ServerConfig>>,
    /// The same config offering no ALPN, for clients whose protocols
    /// overlap none of [`Self::alpn`].
    server_config_without_alpn: Option<Arc<rustls::ServerConfig>>,
}

impl PartialEq for DownstreamTls {
    fn eq(&self, other: &Self) -> bool {
        self.certificate == other.certificate
            && self.client_roots == other.client_roots
            && self.require_client_certificate == other.require_client_certificate
            && self.alpn == other.alpn
            && self.secret_names == other.secret_names
    }
}
impl Eq for DownstreamTls {}

/// Why a TLS server configuration could not be built from its material.
#[derive(Debug, thiserror::Error)]
pub enum ServerConfigError {
    #[error("{0}")]
    Protocols(rustls::Error),
    #[error("invalid trusted CA certificate: {0}")]
    TrustedCa(rustls::Error),
    #[error("{0}")]
    ClientVerifier(rustls::server::VerifierBuilderError),
    #[error("private key: {0}")]
    PrivateKey(&'static str),
    #[error("certificate: {0}")]
    Certificate(rustls::Error),
    #[error(
        "require_client_certificate needs a validation context with trusted CAs: add one, or do not require client certificates"
    )]
    ClientCertificateWithoutCa,
}

impl DownstreamTls {
    /// The server config is built once the certificate (and, when clients
    /// are verified, their roots) is there. Requiring client certificates
    /// with no roots to verify them against is refused: the server would
    /// take any certificate, or none.
    pub fn new(
        certificate: Option<ClientCert>,
        client_roots: Option<Vec<Vec<u8>>>,
        require_client_certificate: bool,
        alpn: Vec<String>,
        secret_names: Vec<Arc<str>>,
    ) -> Result<Self, ServerConfigError> {
        if require_client_certificate && client_roots.is_none() {
            return Err(ServerConfigError::ClientCertificateWithoutCa);
        }
        let roots_ready = client_roots.as_ref().is_none_or(|roots| !roots.is_empty());
        let server_config = match &certificate {
            Some(cert) if roots_ready => Some(server_config(
                cert,
                client_roots.as_deref(),
                require_client_certificate,
                &alpn,
            )?),
            _ => None,
        };
        let server_config_without_alpn = server_config.as_ref().map(|config| {
            if config.alpn_protocols.is_empty() {
                config.clone()
            } else {
                let mut without = rustls::ServerConfig::clone(config);
                without.alpn_protocols.clear();
                Arc::new(without)
            }
        });
        Ok(Self {
            certificate,
            client_roots,
            require_client_certificate,
            alpn,
            secret_names,
            server_config,
            server_config_without_alpn,
        })
    }

    /// The server config for a ClientHello offering `client_alpn`, as Envoy
    /// negotiates: the ALPN list when the client offers none or one of its
    /// protocols is in it; when nothing overlaps (a mesh client offering
    /// `istio-peer-exchange`, `istio` to an HTTPS server's `h2`,
    /// `http/1.1`) the handshake goes on with no protocol selected, rather
    /// than failing with `no_application_protocol`. `None` until the
    /// certificate is there.
    pub fn server_config_for<'a>(
        &self,
        client_alpn: Option<impl Iterator<Item = &'a [u8]>>,
    ) -> Option<Arc<rustls::ServerConfig>> {
        let overlaps = client_alpn.is_none_or(|mut offered| {
            offered.any(|protocol| self.alpn.iter().any(|ours| ours.as_bytes() == protocol))
        });
        if overlaps {
            self.server_config.clone()
        } else {
            self.server_config_without_alpn.clone()
        }
    }
}

fn server_config(
    cert: &ClientCert,
    roots: Option<&[Vec<u8>]>,
    require: bool,
    alpn: &[String],
) -> Result<Arc<rustls::ServerConfig>, ServerConfigError> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(ServerConfigError::Protocols)?;
    let builder = match roots {
        Some(roots) => {
            let mut store = rustls::RootCertStore::empty();
            for der in roots {
                store
                    .add(CertificateDer::from(der.clone()))
                    .map_err(ServerConfigError::TrustedCa)?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(store),
                provider,
            );
            let verifier = if require {
                verifier
            } else {
                verifier.allow_unauthenticated()
            };
            builder.with_client_cert_verifier(
                verifier
                    .build()
                    .map_err(ServerConfigError::ClientVerifier)?,
            )
        }
        None => builder.with_no_client_auth(),
    };
    let chain = cert
        .chain
        .iter()
        .map(|c| CertificateDer::from(c.clone()))
        .collect();
    let key = PrivateKeyDer::try_from(cert.key.clone()).map_err(ServerConfigError::PrivateKey)?;
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(ServerConfigError::Certificate)?;
    config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    Ok(Arc::new(config))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainAction {
    /// HTTP connection manager with routes from RDS (or inline).
    Http(HttpManager),
    /// Proxy bytes to a cluster.
    Tcp(TcpProxy),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpManager {
    pub stat_prefix: Arc<str>,
    pub route_config_name: Arc<str>,
    /// Inline routes, when the listener carries them instead of using RDS.
    pub inline_routes: Option<Arc<super::RouteConfig>>,
    /// The file loggers (a path and a format each), in order.
    pub file_access_logs: Arc<[super::access_log::FileAccessLog]>,
    /// Stream access log entries to the control plane.
    pub grpc_access_log: Option<Arc<super::access_log::GrpcAccessLog>>,
    /// The HTTP filters before the router, in order (empty: the router
    /// alone).
    pub http_filters: Arc<[super::http_filters::HttpFilter]>,
    /// `use_remote_address`: the connection, not the client's
    /// `x-forwarded-proto`, says the scheme (istiod: gateways yes, sidecar
    /// outbound no).
    pub use_remote_address: bool,
    /// What the connection manager does to request paths first.
    pub path_normalization: super::path_normalization::PathNormalization,
    /// The `server` header of its responses.
    pub server_header: super::server_header::SharedServerHeader,
    /// Its request head, stream and connection timeouts.
    pub timeouts: super::http_timeouts::HttpTimeouts,
    /// The router's `suppress_envoy_headers`: no `x-envoy-*` headers of its
    /// own upstream (`x-envoy-expected-rq-timeout-ms`) or downstream
    /// (`x-envoy-upstream-service-time`, `x-envoy-overloaded`).
    pub suppress_envoy_headers: bool,
    /// The upgrade types it allows (`upgrade_configs`).
    pub upgrades: super::upgrade::UpgradeConfigs,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpProxy {
    pub stat_prefix: Arc<str>,
    pub target: super::route::ClusterTarget,
    /// The file loggers (a path and a format each), in order.
    pub file_access_logs: Arc<[super::access_log::FileAccessLog]>,
    /// Stream access log entries to the control plane.
    pub grpc_access_log: Option<Arc<super::access_log::GrpcAccessLog>>,
    /// Close both sides after this long without a byte either way (Envoy's
    /// default: one hour; `None`: never, as `0s` asks).
    pub idle_timeout: Option<std::time::Duration>,
    /// Close both sides this long after the connection was accepted, with
    /// flag DT (`max_downstream_connection_duration`).
    pub max_downstream_connection_duration: Option<std::time::Duration>,
    /// Pick the host of a RING_HASH / MAGLEV cluster by the downstream
    /// source IP (`hash_policy: [{source_ip: {}}]`); else at random.
    pub hash_source_ip: bool,
}

impl Listener {
    /// The chain for a connection to `destination_port` on `destination_ip`
    /// with `sni`, as Envoy matches, one criterion after the other:
    /// destination port (an exact port before chains without one), then
    /// destination IP (the longest matching prefix, else chains without
    /// prefixes), then server name (exact before wildcard, longest
    /// wildcard first, else chains without names). A criterion that leaves
    /// no chain gives the default chain; Envoy never backtracks to a less
    /// specific candidate of an earlier criterion.
    pub fn select_chain(
        &self,
        destination_port: u16,
        destination_ip: Option<IpAddr>,
        sni: Option<&str>,
    ) -> Option<&FilterChain> {
        let chains: Vec<&FilterChain> = self.filter_chains.iter().collect();
        let by_port = most_specific(chains, |c| match c.destination_port {
            None => Some(0),
            Some(p) => (p == destination_port).then_some(1),
        });
        let by_ip = most_specific(by_port, |c| {
            if c.destination_prefixes.is_empty() {
                return Some(0);
            }
            let ip = destination_ip?;
            c.destination_prefixes
                .iter()
                .filter(|range| range.contains(ip))
                .map(|range| usize::from(range.len) + 1)
                .max()
        });
        let sni = sni.map(str::to_ascii_lowercase);
        let by_name = most_specific(by_ip, |c| {
            if c.server_names.is_empty() {
                return Some(0);
            }
            let sni = sni.as_deref()?;
            c.server_names
                .iter()
                .filter_map(|name| server_name_rank(name, sni))
                .max()
                .map(|rank| rank.saturating_add(1))
        });
        by_name.into_iter().next().or(self.default_chain.as_ref())
    }
}

/// The chains ranked highest by `rank` (`None`: the chain does not match).
fn most_specific(
    chains: Vec<&FilterChain>,
    rank: impl Fn(&FilterChain) -> Option<usize>,
) -> Vec<&FilterChain> {
    let ranked: Vec<(usize, &FilterChain)> = chains
        .into_iter()
        .filter_map(|c| rank(c).map(|r| (r, c)))
        .collect();
    let Some(best) = ranked.iter().map(|(r, _)| *r).max() else {
        return Vec::new();
    };
    ranked
        .into_iter()
        .filter(|(r, _)| *r == best)
        .map(|(_, c)| c)
        .collect()
}

/// How well `pattern` matches `sni`: `None` for no match, higher is better
/// (an exact name beats any wildcard; longer wildcards beat shorter ones).
fn server_name_rank(pattern: &str, sni: &str) -> Option<usize> {
    let pattern = pattern.to_ascii_lowercase();
    if pattern == sni {
        return Some(usize::MAX);
    }
    let suffix = pattern.strip_prefix('*')?;
    (sni.len() > suffix.len() && sni.ends_with(suffix)).then_some(suffix.len())
}

#[cfg(test)]
mod tests;
