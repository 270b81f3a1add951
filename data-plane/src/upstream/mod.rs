//! Upstream side: cluster runtimes (endpoints, DNS, load balancing),
//! connection pools, TLS origination.
//!
//! [`Upstreams`] holds one runtime per cluster of the running config, swapped
//! as a whole on [`Upstreams::update`] so requests look clusters up without
//! locks. A runtime whose cluster did not change is kept, with its pooled
//! connections, DNS state and load-balancing counters.

mod circuit_breaker;
mod cluster;
mod connection_age;
mod connection_uses;
mod dns;
mod error;
mod hash_lb;
mod idle;
mod keepalive;
mod lb;
mod outlier;
mod pool;
mod principals;
mod san;
mod stats;
mod tls;
mod tls_reason;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use arc_swap::ArcSwap;
use bytes::Bytes;
use dashmap::DashMap;
use parking_lot::Mutex;
use shared::workload::EndpointWorkload;

use crate::model::RunningConfig;
use crate::model::cluster::{CircuitBreakers, Discovery};

use circuit_breaker::Breakers;
use cluster::ClusterRuntime;
use dns::Resolver;
use outlier::Outcome;
use pool::PoolExecutor;
use stats::ClusterCounters;
use tls::TlsContext;

pub use circuit_breaker::{Admission, RetrySlot, Tracked};
pub use dns::{DnsConfig, DnsError};
pub use error::{ResetReason, TlsError, UpstreamError};
pub use pool::{DownstreamVersion, UpstreamStream};
pub use principals::Principals;
pub use tls::TlsConfigError;

/// The request body type the proxy hands to [`Upstreams::send_http`].
pub type Body = http_body_util::combinators::BoxBody<Bytes, hyper::Error>;

/// The hash of a request for RING_HASH and MAGLEV clusters, carried in the
/// request's extensions to the host pick (retries keep it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHashKey(pub u64);

/// The host a request or connection actually went to (`UPSTREAM_HOST`),
/// the agent's end of the connection (`UPSTREAM_LOCAL_ADDRESS`), the
/// workload behind the host and the identities on a TLS connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamInfo {
    pub address: SocketAddr,
    pub local: Option<SocketAddr>,
    pub peer: Option<Arc<EndpointWorkload>>,
    /// The identities on the TLS connection, once one is known.
    pub principals: Option<Arc<Principals>>,
}

impl UpstreamInfo {
    /// The picked `host`, before a connection is known.
    fn of(host: &lb::Host) -> Self {
        Self {
            address: host.addr,
            local: None,
            peer: host.peer.clone(),
            principals: None,
        }
    }
}

/// One cluster as admin `/clusters` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterStatus {
    pub name: Arc<str>,
    /// Envoy's discovery type name: STATIC, STRICT_DNS, LOGICAL_DNS, EDS, ORIGINAL_DST.
    pub discovery: &'static str,
    pub endpoints: Vec<EndpointStatus>,
    /// The last DNS failure of a DNS cluster, if its last resolution failed.
    pub dns_error: Option<String>,
    pub breakers: BreakerStatus,
    /// Whether the cluster runs outlier detection.
    pub outlier_detection: bool,
}

/// A cluster's circuit breakers: their limits and how close they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerStatus {
    pub limits: CircuitBreakers,
    pub cx_open: bool,
    pub rq_pending_open: bool,
    pub rq_open: bool,
    pub rq_retry_open: bool,
    pub remaining_cx: u64,
    pub remaining_pending: u64,
    pub remaining_rq: u64,
    pub remaining_retries: u64,
}

impl BreakerStatus {
    fn of(breakers: &Breakers) -> Self {
        Self {
            limits: breakers.config,
            cx_open: breakers.connections.open(),
            rq_pending_open: breakers.pending.open(),
            rq_open: breakers.requests.open(),
            rq_retry_open: breakers.retries.open(),
            remaining_cx: breakers.connections.remaining(),
            remaining_pending: breakers.pending.remaining(),
            remaining_rq: breakers.requests.remaining(),
            remaining_retries: breakers.retries.remaining(),
        }
    }
}

/// One host of a cluster with its counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointStatus {
    pub address: SocketAddr,
    /// The DNS name the address was resolved from.
    pub hostname: Option<Arc<str>>,
    pub weight: u32,
    pub rq_active: u64,
    pub rq_total: u64,
    pub rq_error: u64,
    pub cx_total: u64,
    pub cx_connect_fail: u64,
    /// Open pooled HTTP connections.
    pub cx_active: u64,
    /// Ejected by outlier detection.
    pub ejected: bool,
    /// Marked UNHEALTHY, DRAINING or TIMEOUT by the control plane.
    pub eds_unhealthy: bool,
}

/// The cluster runtimes of the running config. Cheap to clone (shared).
#[derive(Clone)]
pub struct Upstreams {
    inner: Arc<Inner>,
}

struct Inner {
    clusters: ArcSwap<HashMap<Arc<str>, Arc<ClusterRuntime>>>,
    resolver: Arc<Resolver>,
    tls: TlsContext,
    executor: PoolExecutor,
    /// Circuit breaker, outlier and panic counters by cluster name.
    counters: DashMap<Arc<str>, Arc<ClusterCounters>>,
}

impl Upstreams {
    pub fn new(dns: DnsConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                clusters: ArcSwap::default(),
                resolver: Arc::new(Resolver::new(&dns)),
                tls: TlsContext::default(),
                executor: PoolExecutor::default(),
                counters: DashMap::new(),
            }),
        }
    }

    /// Reconciles the cluster runtimes with `config`: unchanged clusters keep
    /// their runtime, changed and new ones get a fresh one, removed ones are
    /// dropped (in-flight requests finish on the old runtime). EDS clusters
    /// take their hosts from `config.endpoints`. Call from one task at a time.
    pub fn update(&self, config: &RunningConfig) {
        let current = self.inner.clusters.load();
        let mut next = HashMap::with_capacity(config.clusters.len());
        for (name, model) in &config.clusters {
            let runtime = match current.get(name) {
                Some(runtime) if runtime.model == *model => runtime.clone(),
                _ => self.new_runtime(name, model),
            };
            if let Discovery::Eds { service_name } = &model.discovery {
                runtime.set_assignment(config.endpoints.get(service_name).map(|a| &**a));
            }
            next.insert(name.clone(), runtime);
        }
        self.inner.clusters.store(Arc::new(next));
        self.inner
            .counters
            .retain(|name, _| config.clusters.contains_key(name));
    }

    fn new_runtime(
        &self,
        name: &Arc<str>,
        model: &Arc<crate::model::Cluster>,
    ) -> Arc<ClusterRuntime> {
        let counters = self.inner.counters.entry(name.clone()).or_default().clone();
        let runtime = Arc::new(ClusterRuntime::new(
            model.clone(),
            &self.inner.resolver,
            &self.inner.tls,
            &self.inner.executor,
            counters,
        ));
        if let Some(outlier) = &model.outlier_detection
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            handle.spawn(ClusterRuntime::run_outlier_interval(
                Arc::downgrade(&runtime),
                outlier.interval,
            ));
        }
        runtime
    }

    /// Sends `req` to a host of `cluster`: picks the host, reuses a pooled
    /// connection or opens one (TLS originated when the cluster says so),
    /// and returns the response head once it arrives. `original_dst` is the
    /// downstream connection's original destination (ORIGINAL_DST clusters).
    pub async fn send_http(
        &self,
        cluster: &str,
        req: http::Request<Body>,
        original_dst: Option<SocketAddr>,
    ) -> Result<(http::Response<hyper::body::Incoming>, UpstreamInfo), UpstreamError> {
        self.send_http_to(cluster, req, original_dst, &Mutex::new(None))
            .await
    }

    /// [`Upstreams::send_http`], recording the chosen host in `chosen` as
    /// soon as it is picked, so a caller that gives up waiting (a route
    /// timeout) can still log where the request went.
    pub async fn send_http_to(
        &self,
        cluster: &str,
        req: http::Request<Body>,
        original_dst: Option<SocketAddr>,
        chosen: &Mutex<Option<UpstreamInfo>>,
    ) -> Result<(http::Response<hyper::body::Incoming>, UpstreamInfo), UpstreamError> {
        self.send_http_avoiding(cluster, req, original_dst, chosen, &[], 1)
            .await
    }

    /// [`Upstreams::send_http_to`] for a retry under Envoy's
    /// `previous_hosts` predicate: a host in `avoid` is picked again, up to
    /// `selections` picks in all (the last pick stands).
    pub async fn send_http_avoiding(
        &self,
        cluster: &str,
        mut req: http::Request<Body>,
        original_dst: Option<SocketAddr>,
        chosen: &Mutex<Option<UpstreamInfo>>,
        avoid: &[SocketAddr],
        selections: u32,
    ) -> Result<(http::Response<hyper::body::Incoming>, UpstreamInfo), UpstreamError> {
        let runtime = self.cluster(cluster)?;
        let hash = req.extensions().get::<RequestHashKey>().map(|key| key.0);
        let mut host = runtime.select(original_dst, hash).await?;
        for _ in 1..selections {
            if !avoid.contains(&host.addr) {
                break;
            }
            host = runtime.select(original_dst, hash).await?;
        }
        *chosen.lock() = Some(UpstreamInfo::of(&host));
        let http2 = pool::prepare_request(&mut req, host.addr, runtime.settings());
        let mut admission = runtime.breakers.admit_request(http2, cluster).await?;
        let _active = host.stats.start_request();
        let captured = hyper_util::client::legacy::connect::capture_connection(&mut req);
        let mut attempt = Attempt {
            runtime: &runtime,
            host: &host,
            finished: false,
        };
        match runtime.client(&host, http2).request(req).await {
            Ok(mut response) => {
                attempt.finish(Outcome::Status(response.status().as_u16()));
                if let Some(max) = runtime.model.max_requests_per_connection {
                    connection_uses::count(response.extensions(), &captured, max);
                }
                if let Some(max) = runtime.model.max_connection_duration
                    && let Some(in_flight) = connection_age::watch(
                        response.extensions(),
                        &captured,
                        max,
                        runtime.counters(),
                        &host.stats,
                    )
                {
                    admission.hold(in_flight);
                }
                let extensions = response.extensions();
                let info = UpstreamInfo {
                    local: extensions.get::<pool::LocalAddress>().map(|local| local.0),
                    principals: extensions.get::<Arc<Principals>>().cloned(),
                    ..UpstreamInfo::of(&host)
                };
                response.extensions_mut().insert(Arc::new(admission));
                Ok((response, info))
            }
            Err(error) => {
                attempt.finish(Outcome::ConnectFailed);
                host.stats.rq_error.fetch_add(1, Ordering::Relaxed);
                Err(UpstreamError::from_client(error))
            }
        }
    }

    /// A slot for one more retry to `cluster` while it runs, or `None`
    /// when its `max_retries` circuit breaker is open (counted as
    /// `upstream_rq_retry_overflow`: Envoy does not retry then).
    pub fn try_retry(&self, cluster: &str) -> Option<RetrySlot> {
        self.cluster(cluster).ok()?.breakers.try_retry()
    }

    /// Opens a connection to a host of `cluster` for TCP proxying: plain,
    /// or TLS originated when the cluster's transport socket says so.
    pub async fn connect_tcp(
        &self,
        cluster: &str,
        original_dst: Option<SocketAddr>,
    ) -> Result<(Tracked<UpstreamStream>, SocketAddr), UpstreamError> {
        let (stream, info) = self.connect_tcp_hashed(cluster, original_dst, None).await?;
        Ok((stream, info.address))
    }

    /// [`Self::connect_tcp`] with the connection's hash (tcp_proxy
    /// `hash_policy`), which picks the host of a RING_HASH or MAGLEV
    /// cluster; other clusters ignore it, as in Envoy.
    pub async fn connect_tcp_hashed(
        &self,
        cluster: &str,
        original_dst: Option<SocketAddr>,
        hash: Option<u64>,
    ) -> Result<(Tracked<UpstreamStream>, UpstreamInfo), UpstreamError> {
        let runtime = self.cluster(cluster)?;
        let host = runtime.select(original_dst, hash).await?;
        let guard = runtime.breakers.open_tcp_connection(cluster)?;
        host.stats.cx_total.fetch_add(1, Ordering::Relaxed);
        match runtime.connect_tcp(&host).await {
            Ok(stream) => {
                runtime.record(&host, Outcome::Connected);
                let info = UpstreamInfo {
                    local: stream.local_addr(),
                    principals: stream.principals().cloned(),
                    ..UpstreamInfo::of(&host)
                };
                Ok((Tracked::new(stream, guard), info))
            }
            Err(error) => {
                runtime.record(&host, Outcome::ConnectFailed);
                host.stats.cx_connect_fail.fetch_add(1, Ordering::Relaxed);
                Err(error)
            }
        }
    }

    /// The first IPv4 address of `host` (explicit-proxy requests to the
    /// passthrough cluster), through the agent's resolver; bounded in time.
    pub async fn resolve(&self, host: &str) -> Result<IpAddr, UpstreamError> {
        let addrs = self
            .inner
            .resolver
            .lookup(host, dns::RESOLVE_LIMIT)
            .await
            .map_err(|reason| UpstreamError::Resolve {
                host: host.to_string(),
                reason,
            })?;
        Ok(addrs[0])
    }

    /// Whether `cluster` picks hosts by the request's hash (RING_HASH,
    /// MAGLEV): only then does a request's hash policy run, as in Envoy.
    pub fn hashes(&self, cluster: &str) -> bool {
        self.inner
            .clusters
            .load()
            .get(cluster)
            .is_some_and(|c| c.model.lb.is_hash_based())
    }

    /// Every cluster with its hosts and counters, sorted by name.
    pub fn describe(&self) -> Vec<ClusterStatus> {
        let mut all: Vec<ClusterStatus> = self
            .inner
            .clusters
            .load()
            .values()
            .map(|c| c.status())
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// The circuit breaker, outlier detection and panic series of every
    /// cluster, in Prometheus text.
    pub fn render_stats(&self, out: &mut String) {
        let statuses = self.describe();
        let none = ClusterCounters::default();
        let counters: Vec<Option<Arc<ClusterCounters>>> = statuses
            .iter()
            .map(|s| self.inner.counters.get(&s.name).map(|c| c.clone()))
            .collect();
        let rows: Vec<stats::Row<'_>> = statuses
            .iter()
            .zip(&counters)
            .map(|(status, counters)| stats::Row {
                status,
                counters: counters.as_deref().unwrap_or(&none),
            })
            .collect();
        stats::render(&rows, out);
    }

    fn cluster(&self, name: &str) -> Result<Arc<ClusterRuntime>, UpstreamError> {
        self.inner
            .clusters
            .load()
            .get(name)
            .cloned()
            .ok_or_else(|| UpstreamError::UnknownCluster(name.to_string()))
    }
}

/// One attempt on a host, for outlier detection: an attempt dropped before
/// it finished timed out (per try or route timeout), as Envoy reports it.
struct Attempt<'a> {
    runtime: &'a ClusterRuntime,
    host: &'a lb::Host,
    finished: bool,
}

impl Attempt<'_> {
    fn finish(&mut self, outcome: Outcome) {
        self.finished = true;
        self.runtime.record(self.host, outcome);
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.runtime.record(self.host, Outcome::TimedOut);
        }
    }
}

/// A body with no bytes.
pub fn empty_body() -> Body {
    use http_body_util::{BodyExt, Empty};
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed()
}
