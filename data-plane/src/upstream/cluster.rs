//! The runtime of one cluster: its current hosts (static, EDS, DNS or
//! original destination), load balancing, and per-host pooled clients.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use arc_swap::{ArcSwap, ArcSwapOption};
use dashmap::DashMap;
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::model::cluster::{Cluster, Discovery, LoadAssignment};

use super::circuit_breaker::Breakers;
use super::dns::{DnsDiscovery, Resolver};
use super::error::UpstreamError;
use super::lb::{Candidate, EndpointSet, Host};
use super::outlier::{Detector, Outcome};
use super::pool::{
    ConnectSettings, HttpClient, Origination, PoolExecutor, UpstreamStream, connect_host,
    tls_target,
};
use super::stats::ClusterCounters;
use super::tls::{TlsContext, TlsOrigination};
use super::{BreakerStatus, ClusterStatus, EndpointStatus};

/// How often DNS clusters re-resolve their names (Envoy's default
/// `dns_refresh_rate`). The resolver's cache honours shorter TTLs.
const DNS_REFRESH: Duration = Duration::from_secs(5);
/// Pool idle timeout when the cluster sets none (Envoy's default).
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(3600);
/// How often unused original-destination hosts are swept.
const ORIGINAL_DST_SWEEP: Duration = Duration::from_secs(5);

pub(crate) struct ClusterRuntime {
    pub(crate) model: Arc<Cluster>,
    endpoints: ArcSwap<EndpointSet>,
    rr: AtomicUsize,
    dns: Option<DnsDiscovery>,
    /// Hosts of an ORIGINAL_DST cluster, by destination.
    original: DashMap<SocketAddr, Arc<Host>>,
    /// Last sweep of `original`, in milliseconds since `epoch`.
    last_sweep: AtomicU64,
    epoch: Instant,
    settings: ConnectSettings,
    /// TLS origination for TCP proxying when it differs from the HTTP one:
    /// an HTTP/2 cluster's pool adds `h2` to the ALPN list, Envoy's TCP
    /// proxy offers the context's list as it is; `auto_san_validation` is
    /// an HTTP option the TCP proxy does not apply.
    tcp_tls: Option<Origination>,
    pub(crate) breakers: Arc<Breakers>,
    pub(crate) outlier: Option<Detector>,
    counters: Arc<ClusterCounters>,
    /// The hosts load balancing uses while some are ejected.
    balanced: ArcSwapOption<Balanced>,
}

/// Which hosts to balance over, for one endpoint set and one ejection
/// generation.
struct Balanced {
    /// The endpoint set it was computed from (its address).
    source: usize,
    generation: u64,
    hosts: BalancedHosts,
}

enum BalancedHosts {
    /// No host is ejected.
    All,
    /// Too few hosts are healthy: all of them (panic mode).
    Panic,
    Healthy(EndpointSet),
}

impl ClusterRuntime {
    pub(crate) fn new(
        model: Arc<Cluster>,
        resolver: &Arc<Resolver>,
        tls: &TlsContext,
        executor: &PoolExecutor,
        counters: Arc<ClusterCounters>,
    ) -> Self {
        let breakers = Arc::new(Breakers::new(model.circuit_breakers, counters.clone()));
        let origination = |http2: bool, auto_san_validation: bool| {
            model.tls.as_ref().map(|t| {
                let mut t = (**t).clone();
                t.verify_server_name &= auto_san_validation;
                TlsOrigination::new(&t, http2, tls)
                    .inspect_err(|reason| {
                        warn!(cluster = %model.name, %reason, "TLS origination misconfigured; connections will fail");
                    })
                    .map(Arc::new)
                    .map_err(Arc::new)
            })
        };
        let settings = ConnectSettings {
            connect_timeout: model.connect_timeout,
            tls: origination(model.http2, true),
            http2: model.http2,
            follow_downstream: model.follow_downstream_protocol,
            tls_h2: if model.follow_downstream_protocol {
                origination(true, true)
            } else {
                None
            },
            idle_timeout: model.idle_timeout.unwrap_or(DEFAULT_IDLE_TIMEOUT),
            keepalive: model.tcp_keepalive,
            executor: executor.clone(),
            breakers: breakers.clone(),
        };
        let (endpoints, dns) = match &model.discovery {
            Discovery::Static(assignment) => {
                (static_set(assignment, &EndpointSet::default()), None)
            }
            Discovery::Dns {
                assignment,
                logical,
            } => {
                let dns = DnsDiscovery::new(
                    resolver.clone(),
                    assignment.endpoints.clone(),
                    *logical,
                    model.connect_timeout,
                );
                (EndpointSet::default(), Some(dns))
            }
            Discovery::Eds { .. } | Discovery::OriginalDst => (EndpointSet::default(), None),
        };
        let model_outlier = model
            .outlier_detection
            .map(|config| Detector::new(config, counters.clone()));
        Self {
            tcp_tls: if model.http2 || model.tls.as_ref().is_some_and(|t| t.verify_server_name) {
                origination(false, false)
            } else {
                None
            },
            model,
            endpoints: ArcSwap::from_pointee(endpoints),
            rr: AtomicUsize::new(0),
            dns,
            original: DashMap::new(),
            last_sweep: AtomicU64::new(0),
            epoch: Instant::now(),
            settings,
            breakers,
            outlier: model_outlier,
            counters,
            balanced: ArcSwapOption::empty(),
        }
    }

    /// Applies an EDS assignment (`None`: none received yet, no hosts).
    pub(crate) fn set_assignment(&self, assignment: Option<&LoadAssignment>) {
        let next = match assignment {
            Some(assignment) => static_set(assignment, &self.endpoints.load()),
            None => EndpointSet::default(),
        };
        self.endpoints.store(Arc::new(next));
    }

    /// Picks the host for the next request or connection; `hash` is the
    /// request's hash for RING_HASH and MAGLEV clusters (none: at random).
    pub(crate) async fn select(
        self: &Arc<Self>,
        original_dst: Option<SocketAddr>,
        hash: Option<u64>,
    ) -> Result<Arc<Host>, UpstreamError> {
        if matches!(self.model.discovery, Discovery::OriginalDst) {
            let addr = original_dst.ok_or_else(|| self.no_healthy_upstream())?;
            return Ok(self.original_dst_host(addr));
        }
        if let Some(dns) = &self.dns {
            self.ensure_resolved(dns).await?;
        }
        let endpoints = self.endpoints.load();
        let balanced = self.balanced(&endpoints);
        if let Some(hash) = hash.filter(|_| self.model.lb.is_hash_based()) {
            let set: &EndpointSet = match balanced.as_ref().map(|b| &b.hosts) {
                Some(BalancedHosts::Healthy(healthy)) => healthy,
                _ => &endpoints,
            };
            if let Some(host) = set.pick_hashed(self.model.lb, hash) {
                return Ok(host.clone());
            }
        }
        let picked = match balanced.as_ref().map(|b| &b.hosts) {
            Some(BalancedHosts::Healthy(healthy)) => healthy.pick(self.model.lb, &self.rr),
            Some(BalancedHosts::Panic) => {
                self.counters
                    .lb_healthy_panic
                    .fetch_add(1, Ordering::Relaxed);
                endpoints.pick(self.model.lb, &self.rr)
            }
            Some(BalancedHosts::All) | None => endpoints.pick(self.model.lb, &self.rr),
        }
        .cloned();
        picked.ok_or_else(|| self.no_healthy_upstream())
    }

    /// While outlier detection has ejected hosts or the control plane
    /// marked some unhealthy: the healthy ones, or all of them when too
    /// few are healthy (Envoy's panic mode, below
    /// `healthy_panic_threshold`). `None` when every host was always
    /// healthy.
    fn balanced(&self, endpoints: &Arc<EndpointSet>) -> Option<Arc<Balanced>> {
        let generation = self
            .outlier
            .as_ref()
            .map_or(0, |outlier| outlier.generation.load(Ordering::Relaxed));
        if generation == 0 && endpoints.all_healthy() {
            return None;
        }
        let source = Arc::as_ptr(endpoints) as usize;
        if let Some(cached) = self.balanced.load_full()
            && cached.source == source
            && cached.generation == generation
        {
            return Some(cached);
        }
        let healthy: Vec<Candidate> = endpoints
            .hosts
            .iter()
            .zip(&endpoints.weights)
            .zip(&endpoints.healthy)
            .filter(|((host, _), healthy)| **healthy && !host.stats.outlier.is_ejected())
            .map(|((host, &weight), _)| Candidate {
                addr: host.addr,
                hostname: host.hostname.clone(),
                weight,
                healthy: true,
                peer: host.peer.clone(),
            })
            .collect();
        let panic = self
            .model
            .healthy_panic_threshold
            .in_panic(healthy.len(), endpoints.hosts.len());
        let hosts = if healthy.len() == endpoints.hosts.len() {
            BalancedHosts::All
        } else if panic {
            BalancedHosts::Panic
        } else {
            BalancedHosts::Healthy(EndpointSet::build(&healthy, endpoints))
        };
        let balanced = Arc::new(Balanced {
            source,
            generation,
            hosts,
        });
        self.balanced.store(Some(balanced.clone()));
        Some(balanced)
    }

    /// The cluster's counters (kept across updates by name).
    pub(crate) fn counters(&self) -> &Arc<ClusterCounters> {
        &self.counters
    }

    /// Tells outlier detection how an attempt on `host` went.
    pub(crate) fn record(&self, host: &Host, outcome: Outcome) {
        if let Some(detector) = &self.outlier {
            let endpoints = self.endpoints.load();
            detector.record(host, outcome, &endpoints.hosts, Instant::now());
        }
    }

    /// Runs outlier detection's interval timer for as long as the runtime
    /// lives.
    pub(crate) async fn run_outlier_interval(runtime: Weak<Self>, interval: Duration) {
        let mut tick = tokio::time::interval_at(Instant::now() + interval, interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(runtime) = runtime.upgrade() else {
                return;
            };
            if let Some(detector) = &runtime.outlier {
                detector.on_interval(&runtime.endpoints.load().hosts, Instant::now());
            }
        }
    }

    /// The host's pooled client: the cluster's protocol, or HTTP/2 for an
    /// HTTP/2 request when the cluster follows the downstream protocol.
    pub(crate) fn client(&self, host: &Host, http2: bool) -> HttpClient {
        let cell = if http2 && self.settings.follow_downstream {
            &host.client_h2
        } else {
            &host.client
        };
        cell.get_or_init(|| self.settings.client_for(host, http2))
            .clone()
    }

    pub(crate) fn settings(&self) -> &ConnectSettings {
        &self.settings
    }

    /// Opens a connection to `host` for TCP proxying, originating TLS as
    /// the cluster's transport socket says (its SNI, SAN checks, client
    /// certificate and ALPN list).
    pub(crate) async fn connect_tcp(&self, host: &Host) -> Result<UpstreamStream, UpstreamError> {
        let tls = self.tcp_tls.as_ref().or(self.settings.tls.as_ref());
        connect_host(
            host.addr,
            self.model.connect_timeout,
            tls_target(tls, host.addr, None),
            self.settings.keepalive,
        )
        .await
    }

    pub(crate) fn status(&self) -> ClusterStatus {
        let endpoints = self.endpoints.load();
        let mut hosts: Vec<(Arc<Host>, u32, bool)> = endpoints
            .hosts
            .iter()
            .zip(&endpoints.weights)
            .zip(&endpoints.healthy)
            .map(|((host, &weight), &healthy)| (host.clone(), weight, healthy))
            .collect();
        hosts.extend(
            self.original
                .iter()
                .map(|entry| (entry.value().clone(), 1, true)),
        );
        ClusterStatus {
            name: self.model.name.clone(),
            discovery: match &self.model.discovery {
                Discovery::Static(_) => "STATIC",
                Discovery::Dns { logical: false, .. } => "STRICT_DNS",
                Discovery::Dns { logical: true, .. } => "LOGICAL_DNS",
                Discovery::Eds { .. } => "EDS",
                Discovery::OriginalDst => "ORIGINAL_DST",
            },
            dns_error: self.dns.as_ref().and_then(DnsDiscovery::last_error),
            breakers: BreakerStatus::of(&self.breakers),
            outlier_detection: self.outlier.is_some(),
            endpoints: hosts
                .into_iter()
                .map(|(host, weight, healthy)| EndpointStatus {
                    address: host.addr,
                    hostname: host.hostname.clone(),
                    weight,
                    rq_active: host.stats.rq_active.load(Ordering::Relaxed) as u64,
                    rq_total: host.stats.rq_total.load(Ordering::Relaxed),
                    rq_error: host.stats.rq_error.load(Ordering::Relaxed),
                    cx_total: host.stats.cx_total.load(Ordering::Relaxed),
                    cx_connect_fail: host.stats.cx_connect_fail.load(Ordering::Relaxed),
                    cx_active: host.stats.pool_connections.load(Ordering::Relaxed),
                    ejected: host.stats.outlier.is_ejected(),
                    eds_unhealthy: !healthy,
                })
                .collect(),
        }
    }

    fn no_healthy_upstream(&self) -> UpstreamError {
        UpstreamError::NoHealthyUpstream(self.model.name.to_string())
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    // === original destination ===

    fn original_dst_host(&self, addr: SocketAddr) -> Arc<Host> {
        let now = self.now_ms();
        self.sweep_original(now);
        let host = self
            .original
            .entry(addr)
            .or_insert_with(|| Arc::new(Host::new(addr, None, None)))
            .clone();
        host.last_used.store(now, Ordering::Relaxed);
        host
    }

    /// Drops original-destination hosts unused for longer than the pool
    /// idle timeout (their pooled connections would have expired anyway).
    fn sweep_original(&self, now: u64) {
        let last = self.last_sweep.load(Ordering::Relaxed);
        if now.saturating_sub(last) < ORIGINAL_DST_SWEEP.as_millis() as u64
            || self
                .last_sweep
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let idle = self.settings.idle_timeout.as_millis() as u64;
        self.original.retain(|_, host| {
            host.stats.rq_active.load(Ordering::Relaxed) > 0
                || now.saturating_sub(host.last_used.load(Ordering::Relaxed)) < idle
        });
    }

    // === DNS ===

    /// Resolves the cluster's names on first use, then keeps them fresh in
    /// the background for as long as the runtime lives.
    async fn ensure_resolved(self: &Arc<Self>, dns: &DnsDiscovery) -> Result<(), UpstreamError> {
        if !self.endpoints.load().is_empty() {
            return Ok(());
        }
        let _first = dns.first.lock().await;
        if !self.endpoints.load().is_empty() {
            return Ok(());
        }
        let candidates = dns.resolve().await?;
        self.apply_resolution(&candidates);
        if !candidates.is_empty() {
            tokio::spawn(refresh(Arc::downgrade(self)));
        }
        Ok(())
    }

    fn apply_resolution(&self, candidates: &[Candidate]) {
        let next = EndpointSet::build(candidates, &self.endpoints.load());
        self.endpoints.store(Arc::new(next));
    }
}

async fn refresh(runtime: Weak<ClusterRuntime>) {
    let mut tick = tokio::time::interval_at(Instant::now() + DNS_REFRESH, DNS_REFRESH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(runtime) = runtime.upgrade() else {
            return;
        };
        let Some(dns) = &runtime.dns else {
            return;
        };
        match dns.resolve().await {
            Ok(candidates) => runtime.apply_resolution(&candidates),
            Err(error) => debug!(cluster = %runtime.model.name, %error, "DNS refresh failed"),
        }
    }
}

/// Hosts of a static or EDS assignment; host names that are not IP
/// addresses are skipped (only DNS clusters resolve names).
fn static_set(assignment: &LoadAssignment, previous: &EndpointSet) -> EndpointSet {
    let candidates: Vec<Candidate> = assignment
        .endpoints
        .iter()
        .filter_map(|e| match e.host.parse::<IpAddr>() {
            Ok(ip) => Some(Candidate {
                addr: SocketAddr::new(ip, e.port),
                hostname: None,
                weight: e.weight,
                healthy: e.healthy,
                peer: e.peer.clone(),
            }),
            Err(_) => {
                warn!(cluster = %assignment.cluster_name, host = %e.host, "skipping a non-IP endpoint");
                None
            }
        })
        .collect();
    EndpointSet::build(&candidates, previous)
}
