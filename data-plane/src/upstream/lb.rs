//! A cluster's current hosts and the load-balancing policies that pick one.
//!
//! An [`EndpointSet`] is immutable: discovery (EDS, DNS) builds a new one and
//! swaps it in, reusing the [`Host`]s whose address did not change so their
//! pooled connections and counters survive.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use shared::workload::EndpointWorkload;

use crate::model::cluster::LbPolicy;

use super::hash_lb::HashTable;
use super::pool::HttpClient;

/// Largest smooth weighted round-robin schedule; bigger weight sums are
/// scaled down to it.
const MAX_SCHEDULE: u64 = 4096;

/// One upstream address with its pooled HTTP client and counters.
pub(crate) struct Host {
    pub(crate) addr: SocketAddr,
    /// The DNS name this address came from (SNI when the cluster sets none).
    pub(crate) hostname: Option<Arc<str>>,
    /// The workload behind it (its endpoint's `istio.workload` metadata).
    pub(crate) peer: Option<Arc<EndpointWorkload>>,
    pub(crate) stats: Arc<HostStats>,
    /// Built on first HTTP use.
    pub(crate) client: OnceLock<HttpClient>,
    /// The HTTP/2 client of a cluster following the downstream protocol.
    pub(crate) client_h2: OnceLock<HttpClient>,
    /// Milliseconds since the owning cluster's epoch when last picked
    /// (original-destination hosts are dropped when idle).
    pub(crate) last_used: AtomicU64,
}

impl Host {
    pub(crate) fn new(
        addr: SocketAddr,
        hostname: Option<Arc<str>>,
        peer: Option<Arc<EndpointWorkload>>,
    ) -> Self {
        Self {
            addr,
            hostname,
            peer,
            stats: Arc::default(),
            client: OnceLock::new(),
            client_h2: OnceLock::new(),
            last_used: AtomicU64::new(0),
        }
    }
}

/// Per-host counters, shared with the host's connector.
#[derive(Debug, Default)]
pub(crate) struct HostStats {
    pub(crate) rq_active: AtomicUsize,
    pub(crate) rq_total: AtomicU64,
    pub(crate) rq_error: AtomicU64,
    pub(crate) cx_total: AtomicU64,
    pub(crate) cx_connect_fail: AtomicU64,
    /// Open pooled HTTP connections (circuit breakers).
    pub(crate) pool_connections: Arc<AtomicU64>,
    pub(crate) outlier: super::outlier::HostMonitor,
}

impl HostStats {
    /// Counts a request as active until the guard drops.
    pub(crate) fn start_request(self: &Arc<Self>) -> ActiveRequest {
        self.rq_total.fetch_add(1, Ordering::Relaxed);
        self.rq_active.fetch_add(1, Ordering::Relaxed);
        ActiveRequest(self.clone())
    }
}

pub(crate) struct ActiveRequest(Arc<HostStats>);

impl Drop for ActiveRequest {
    fn drop(&mut self) {
        self.0.rq_active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A host to be placed in an [`EndpointSet`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Candidate {
    pub(crate) addr: SocketAddr,
    pub(crate) hostname: Option<Arc<str>>,
    pub(crate) weight: u32,
    /// Whether the control plane says the host may be balanced to.
    pub(crate) healthy: bool,
    pub(crate) peer: Option<Arc<EndpointWorkload>>,
}

/// The hosts of a cluster at one moment, with their weights.
#[derive(Default)]
pub(crate) struct EndpointSet {
    pub(crate) hosts: Vec<Arc<Host>>,
    pub(crate) weights: Vec<u32>,
    /// Per host, whether the control plane says it may be balanced to.
    pub(crate) healthy: Vec<bool>,
    /// Smooth weighted round-robin order of host indices; empty when all
    /// weights are equal (plain rotation).
    schedule: Vec<u32>,
    /// The ring or Maglev table of a hashing cluster, built on first use.
    hash_table: OnceLock<Option<HashTable>>,
}

impl EndpointSet {
    /// Builds a set from `candidates`, reusing hosts of `previous` with the
    /// same address and name (and workload: a host whose workload changed
    /// is a new one). Duplicate candidates are merged (weights add; the
    /// first one's workload stays).
    pub(crate) fn build(candidates: &[Candidate], previous: &EndpointSet) -> Self {
        let mut reuse: HashMap<(SocketAddr, Option<&str>), &Arc<Host>> = previous
            .hosts
            .iter()
            .map(|h| ((h.addr, h.hostname.as_deref()), h))
            .collect();
        let mut index: HashMap<(SocketAddr, Option<&str>), usize> = HashMap::new();
        let mut hosts: Vec<Arc<Host>> = Vec::with_capacity(candidates.len());
        let mut weights: Vec<u32> = Vec::with_capacity(candidates.len());
        let mut healthy: Vec<bool> = Vec::with_capacity(candidates.len());
        for c in candidates {
            let key = (c.addr, c.hostname.as_deref());
            if let Some(&i) = index.get(&key) {
                weights[i] = weights[i].saturating_add(c.weight.max(1));
                healthy[i] |= c.healthy;
                continue;
            }
            index.insert(key, hosts.len());
            let host = reuse
                .remove(&key)
                .filter(|host| host.peer == c.peer)
                .cloned()
                .unwrap_or_else(|| Arc::new(Host::new(c.addr, c.hostname.clone(), c.peer.clone())));
            hosts.push(host);
            weights.push(c.weight.max(1));
            healthy.push(c.healthy);
        }
        let schedule = smooth_wrr_schedule(&weights);
        Self {
            hosts,
            weights,
            healthy,
            schedule,
            hash_table: OnceLock::new(),
        }
    }

    /// The host for a request's `hash` under a RING_HASH or MAGLEV
    /// `policy`; `None` for other policies or no hosts.
    pub(crate) fn pick_hashed(&self, policy: LbPolicy, hash: u64) -> Option<&Arc<Host>> {
        let table = self.hash_table.get_or_init(|| {
            let addrs: Vec<SocketAddr> = self.hosts.iter().map(|h| h.addr).collect();
            HashTable::build(policy, &addrs, &self.weights)
        });
        table.as_ref().map(|t| &self.hosts[t.pick(hash)])
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// Whether the control plane says every host may be balanced to.
    pub(crate) fn all_healthy(&self) -> bool {
        self.healthy.iter().all(|&healthy| healthy)
    }

    /// Picks a host by `policy`; `rr` is the cluster's round-robin counter.
    pub(crate) fn pick(&self, policy: LbPolicy, rr: &AtomicUsize) -> Option<&Arc<Host>> {
        let n = self.hosts.len();
        if n <= 1 {
            return self.hosts.first();
        }
        let i = match policy {
            LbPolicy::RoundRobin => {
                let turn = rr.fetch_add(1, Ordering::Relaxed);
                if self.schedule.is_empty() {
                    turn % n
                } else {
                    self.schedule[turn % self.schedule.len()] as usize
                }
            }
            // A hashing policy without a hash picks at random, as Envoy's.
            LbPolicy::Random | LbPolicy::RingHash { .. } | LbPolicy::Maglev { .. } => {
                self.weighted_random()
            }
            LbPolicy::LeastRequest => self.least_request(),
        };
        self.hosts.get(i)
    }

    fn weighted_random(&self) -> usize {
        if self.schedule.is_empty() {
            return fastrand::usize(..self.hosts.len());
        }
        let total: u64 = self.weights.iter().map(|&w| u64::from(w)).sum();
        let mut point = fastrand::u64(..total);
        for (i, &w) in self.weights.iter().enumerate() {
            if point < u64::from(w) {
                return i;
            }
            point -= u64::from(w);
        }
        self.weights.len() - 1
    }

    /// Power of two choices: the less loaded of two distinct random hosts,
    /// load being active requests per unit of weight.
    fn least_request(&self) -> usize {
        let n = self.hosts.len();
        let a = fastrand::usize(..n);
        let b = (a + 1 + fastrand::usize(..n - 1)) % n;
        let load = |i: usize| self.hosts[i].stats.rq_active.load(Ordering::Relaxed) as u64 + 1;
        // (active_a + 1) / w_a <= (active_b + 1) / w_b, without division.
        if load(a) * u64::from(self.weights[b]) <= load(b) * u64::from(self.weights[a]) {
            a
        } else {
            b
        }
    }
}

/// The smooth weighted round-robin order (as nginx does it) for `weights`,
/// or an empty schedule when all weights are equal.
fn smooth_wrr_schedule(weights: &[u32]) -> Vec<u32> {
    if weights.windows(2).all(|w| w[0] == w[1]) {
        return Vec::new();
    }
    let divisor = weights.iter().fold(0u64, |g, &w| gcd(g, u64::from(w)));
    let mut scaled: Vec<u64> = weights.iter().map(|&w| u64::from(w) / divisor).collect();
    let sum: u64 = scaled.iter().sum();
    if sum > MAX_SCHEDULE {
        for w in &mut scaled {
            *w = (*w * MAX_SCHEDULE / sum).max(1);
        }
    }
    let total: i64 = scaled.iter().map(|&w| w as i64).sum();
    let mut current = vec![0i64; scaled.len()];
    let mut schedule = Vec::with_capacity(total as usize);
    for _ in 0..total {
        for (c, &w) in current.iter_mut().zip(&scaled) {
            *c += w as i64;
        }
        let (best, _) = current
            .iter()
            .enumerate()
            .max_by_key(|&(i, &c)| (c, std::cmp::Reverse(i)))
            .expect("weights are not empty");
        current[best] -= total;
        schedule.push(best as u32);
    }
    schedule
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidates(weights: &[u32]) -> Vec<Candidate> {
        weights
            .iter()
            .enumerate()
            .map(|(i, &weight)| Candidate {
                addr: SocketAddr::from(([10, 0, 0, i as u8 + 1], 80)),
                hostname: None,
                weight,
                healthy: true,
                peer: None,
            })
            .collect()
    }

    fn counts(set: &EndpointSet, policy: LbPolicy, picks: usize) -> Vec<usize> {
        let rr = AtomicUsize::new(0);
        let mut counts = vec![0; set.hosts.len()];
        for _ in 0..picks {
            let host = set.pick(policy, &rr).unwrap();
            let i = set.hosts.iter().position(|h| Arc::ptr_eq(h, host)).unwrap();
            counts[i] += 1;
        }
        counts
    }

    #[test]
    fn round_robin_rotates_evenly() {
        let set = EndpointSet::build(&candidates(&[1, 1, 1]), &EndpointSet::default());
        let rr = AtomicUsize::new(0);
        let order: Vec<SocketAddr> = (0..6)
            .map(|_| set.pick(LbPolicy::RoundRobin, &rr).unwrap().addr)
            .collect();
        assert_eq!(order[..3], order[3..]);
        assert_eq!(counts(&set, LbPolicy::RoundRobin, 300), vec![100, 100, 100]);
    }

    #[test]
    fn round_robin_honours_weights_smoothly() {
        let set = EndpointSet::build(&candidates(&[5, 1, 1]), &EndpointSet::default());
        assert_eq!(set.schedule, vec![0, 0, 1, 0, 2, 0, 0]);
        assert_eq!(counts(&set, LbPolicy::RoundRobin, 700), vec![500, 100, 100]);
    }

    #[test]
    fn large_weights_are_scaled_down() {
        let set = EndpointSet::build(
            &candidates(&[1_000_000, 3_000_001]),
            &EndpointSet::default(),
        );
        assert!(set.schedule.len() as u64 <= MAX_SCHEDULE + 2);
        let c = counts(&set, LbPolicy::RoundRobin, set.schedule.len() * 4);
        assert!(c[1] > 2 * c[0] && c[1] < 4 * c[0], "{c:?}");
    }

    #[test]
    fn random_follows_weights() {
        let set = EndpointSet::build(&candidates(&[1, 9]), &EndpointSet::default());
        let c = counts(&set, LbPolicy::Random, 10_000);
        assert!(c[0] > 500 && c[0] < 1500, "{c:?}");
        let even = EndpointSet::build(&candidates(&[2, 2, 2, 2]), &EndpointSet::default());
        assert!(
            counts(&even, LbPolicy::Random, 4000)
                .iter()
                .all(|&n| n > 700),
            "uniform"
        );
    }

    #[test]
    fn least_request_avoids_busy_hosts() {
        let set = EndpointSet::build(&candidates(&[1, 1]), &EndpointSet::default());
        let _busy: Vec<ActiveRequest> =
            (0..5).map(|_| set.hosts[0].stats.start_request()).collect();
        assert_eq!(counts(&set, LbPolicy::LeastRequest, 100), vec![0, 100]);
        let three = EndpointSet::build(&candidates(&[1, 1, 1]), &EndpointSet::default());
        let busy: Vec<ActiveRequest> = (0..5)
            .map(|_| three.hosts[1].stats.start_request())
            .collect();
        let c = counts(&three, LbPolicy::LeastRequest, 300);
        assert_eq!(c[1], 0, "busy host still picked {c:?}");
        drop(busy);
        assert_eq!(three.hosts[1].stats.rq_active.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn rebuild_keeps_hosts_and_merges_duplicates() {
        let first = EndpointSet::build(&candidates(&[1, 1]), &EndpointSet::default());
        let mut next = candidates(&[1, 1, 1]);
        next.push(next[0].clone());
        let second = EndpointSet::build(&next, &first);
        assert_eq!(second.hosts.len(), 3);
        assert!(Arc::ptr_eq(&first.hosts[0], &second.hosts[0]));
        assert!(Arc::ptr_eq(&first.hosts[1], &second.hosts[1]));
        assert_eq!(second.weights, vec![2, 1, 1]);
    }

    #[test]
    fn a_host_whose_workload_changed_is_a_new_host() {
        let first = EndpointSet::build(&candidates(&[1, 1]), &EndpointSet::default());
        let mut next = candidates(&[1, 1]);
        next[1].peer = EndpointWorkload::parse("reviews-v2;shop;reviews;v2;east").map(Arc::new);
        let second = EndpointSet::build(&next, &first);
        assert!(Arc::ptr_eq(&first.hosts[0], &second.hosts[0]));
        assert!(!Arc::ptr_eq(&first.hosts[1], &second.hosts[1]));
        assert_eq!(second.hosts[1].peer, next[1].peer);
    }

    #[test]
    fn empty_and_single_sets() {
        let rr = AtomicUsize::new(0);
        assert!(
            EndpointSet::default()
                .pick(LbPolicy::LeastRequest, &rr)
                .is_none()
        );
        let one = EndpointSet::build(&candidates(&[7]), &EndpointSet::default());
        assert_eq!(
            one.pick(LbPolicy::Random, &rr).unwrap().addr,
            one.hosts[0].addr
        );
    }
}
