//! DNS for STRICT_DNS and LOGICAL_DNS clusters: a shared stub resolver
//! (IPv4 only, as Istio configures Envoy) and the per-cluster resolution of
//! endpoint host names into hosts.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    ConnectionConfig, LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig,
    ResolverOpts,
};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use parking_lot::Mutex;
use tracing::{debug, warn};

use crate::model::cluster::Endpoint;

use super::error::UpstreamError;
use super::lb::Candidate;

/// Per-query timeout of the stub resolver.
const QUERY_TIMEOUT: Duration = Duration::from_secs(2);
/// Tries per query.
const QUERY_ATTEMPTS: usize = 2;
/// Bound on resolving a name outside any cluster ([`super::Upstreams::resolve`]).
pub(crate) const RESOLVE_LIMIT: Duration = Duration::from_secs(5);

/// Where DNS queries go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsConfig {
    /// A DNS server (UDP and TCP) to use instead of `/etc/resolv.conf`.
    /// No search domains and no hosts file apply then.
    pub server: Option<SocketAddr>,
}

/// Why a name has no address.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DnsError {
    #[error("reading /etc/resolv.conf: {0}")]
    SystemConfig(#[source] NetError),
    #[error("DNS resolver not configured: {0}")]
    Resolver(#[source] NetError),
    #[error(transparent)]
    Lookup(NetError),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("no IPv4 address")]
    NoIpv4Address,
}

/// The stub resolver shared by all DNS clusters.
pub(crate) struct Resolver {
    /// The resolver, or why it could not be configured.
    inner: Result<TokioResolver, DnsError>,
}

impl Resolver {
    pub(crate) fn new(config: &DnsConfig) -> Self {
        let inner = build(config).inspect_err(|error| {
            warn!(%error, "DNS resolver not configured; DNS clusters will fail to resolve");
        });
        Self { inner }
    }

    /// The IPv4 addresses of `host` (itself if it is an IP address), or why
    /// there are none within `limit`.
    pub(crate) async fn lookup(
        &self,
        host: &str,
        limit: Duration,
    ) -> Result<Vec<IpAddr>, DnsError> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        let resolver = self.inner.as_ref().map_err(Clone::clone)?;
        let found = match tokio::time::timeout(limit, resolver.lookup_ip(host)).await {
            Ok(found) => found.map_err(DnsError::Lookup)?,
            Err(_) => return Err(DnsError::Timeout(limit)),
        };
        let addrs: Vec<IpAddr> = found.iter().filter(IpAddr::is_ipv4).collect();
        if addrs.is_empty() {
            return Err(DnsError::NoIpv4Address);
        }
        Ok(addrs)
    }
}

fn build(config: &DnsConfig) -> Result<TokioResolver, DnsError> {
    let provider = TokioRuntimeProvider::default();
    let mut builder = match config.server {
        Some(server) => {
            let mut udp = ConnectionConfig::udp();
            udp.port = server.port();
            let mut tcp = ConnectionConfig::tcp();
            tcp.port = server.port();
            let name_server = NameServerConfig::new(server.ip(), true, vec![udp, tcp]);
            let mut builder = TokioResolver::builder_with_config(
                ResolverConfig::from_name_servers(vec![name_server]),
                provider,
            );
            builder.options_mut().use_hosts_file = ResolveHosts::Never;
            builder
        }
        None => TokioResolver::builder(provider).map_err(DnsError::SystemConfig)?,
    };
    let options: &mut ResolverOpts = builder.options_mut();
    options.timeout = QUERY_TIMEOUT;
    options.attempts = QUERY_ATTEMPTS;
    options.ip_strategy = LookupIpStrategy::Ipv4Only;
    builder.build().map_err(DnsError::Resolver)
}

/// The host names of one DNS cluster and their last good addresses.
pub(crate) struct DnsDiscovery {
    resolver: Arc<Resolver>,
    targets: Vec<Endpoint>,
    /// LOGICAL_DNS: only the first address of a name.
    logical: bool,
    /// Bound on one resolution of all targets.
    limit: Duration,
    /// Last good addresses per target (same order as `targets`).
    last: Mutex<Vec<Option<Vec<IpAddr>>>>,
    last_error: Mutex<Option<String>>,
    /// Held while the first resolution runs, so concurrent first requests
    /// wait for one resolution instead of each starting their own.
    pub(crate) first: tokio::sync::Mutex<()>,
}

impl DnsDiscovery {
    pub(crate) fn new(
        resolver: Arc<Resolver>,
        targets: Vec<Endpoint>,
        logical: bool,
        limit: Duration,
    ) -> Self {
        let last = Mutex::new(vec![None; targets.len()]);
        Self {
            resolver,
            targets,
            logical,
            limit,
            last,
            last_error: Mutex::new(None),
            first: tokio::sync::Mutex::new(()),
        }
    }

    /// The last resolution failure, for admin.
    pub(crate) fn last_error(&self) -> Option<String> {
        self.last_error.lock().clone()
    }

    /// Resolves every target name (IP literals need no DNS). A name that
    /// fails keeps its last good addresses; it is an error only when no
    /// target has any address.
    pub(crate) async fn resolve(&self) -> Result<Vec<Candidate>, UpstreamError> {
        let lookups = self
            .targets
            .iter()
            .map(|target| self.resolver.lookup(&target.host, self.limit));
        let results = futures::future::join_all(lookups).await;

        let mut failure = None;
        let mut last = self.last.lock();
        for ((target, result), previous) in self.targets.iter().zip(results).zip(last.iter_mut()) {
            match result {
                Ok(mut addrs) => {
                    if self.logical {
                        addrs.truncate(1);
                    }
                    debug!(host = %target.host, ?addrs, "resolved");
                    *previous = Some(addrs);
                }
                Err(reason) => {
                    warn!(host = %target.host, %reason, kept = ?previous, "DNS resolution failed");
                    failure.get_or_insert((target.host.clone(), reason));
                }
            }
        }
        *self.last_error.lock() = failure
            .as_ref()
            .map(|(host, reason)| format!("{host}: {reason}"));
        if let Some((host, reason)) = failure
            && last.iter().all(Option::is_none)
        {
            return Err(UpstreamError::Resolve { host, reason });
        }
        Ok(self
            .targets
            .iter()
            .zip(last.iter())
            .flat_map(|(target, addrs)| {
                let hostname: Option<Arc<str>> = target
                    .host
                    .parse::<IpAddr>()
                    .is_err()
                    .then(|| target.host.as_str().into());
                addrs.iter().flatten().map(move |&ip| Candidate {
                    addr: SocketAddr::new(ip, target.port),
                    hostname: hostname.clone(),
                    weight: target.weight,
                    healthy: target.healthy,
                    peer: target.peer.clone(),
                })
            })
            .collect())
    }
}
