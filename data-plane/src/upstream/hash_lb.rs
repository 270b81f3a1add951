//! RING_HASH and MAGLEV: the host for a request's hash, from a table built
//! once per host set. Stickiness is Envoy's: the same hash picks the same
//! host while the set is unchanged, and a host joining or leaving moves few
//! hashes. Hosts are placed by the xxHash64 of their address, as Envoy
//! places them; the exact host for a hash need not match Envoy's.

use std::net::SocketAddr;

use twox_hash::XxHash64;

use crate::model::cluster::LbPolicy;

/// A consistent-hashing table over the hosts of an endpoint set (indices).
#[derive(Debug)]
pub(crate) enum HashTable {
    /// Ring points sorted by hash: (point, host index).
    Ring(Vec<(u64, u32)>),
    /// Maglev lookup table of host indices.
    Maglev(Vec<u32>),
}

impl HashTable {
    /// The table `policy` asks for over `hosts` with `weights`; `None` for
    /// policies that do not hash or an empty set.
    pub(crate) fn build(policy: LbPolicy, hosts: &[SocketAddr], weights: &[u32]) -> Option<Self> {
        if hosts.is_empty() {
            return None;
        }
        match policy {
            LbPolicy::RingHash {
                minimum_ring_size,
                maximum_ring_size,
            } => Some(Self::Ring(ring(
                hosts,
                weights,
                minimum_ring_size,
                maximum_ring_size,
            ))),
            LbPolicy::Maglev { table_size } => {
                Some(Self::Maglev(maglev(hosts, weights, table_size)))
            }
            LbPolicy::RoundRobin | LbPolicy::LeastRequest | LbPolicy::Random => None,
        }
    }

    /// The index of the host for `hash`.
    pub(crate) fn pick(&self, hash: u64) -> usize {
        match self {
            Self::Ring(points) => {
                let at = points.partition_point(|&(point, _)| point < hash);
                points[if at == points.len() { 0 } else { at }].1 as usize
            }
            Self::Maglev(table) => table[(hash % table.len() as u64) as usize] as usize,
        }
    }
}

/// Each host's share of the ring is its share of the weight; the lightest
/// host gets at least its share of `min` points, and the ring has at most
/// `max` points.
fn ring(hosts: &[SocketAddr], weights: &[u32], min: u64, max: u64) -> Vec<(u64, u32)> {
    let total: f64 = weights.iter().map(|&w| f64::from(w.max(1))).sum();
    let lightest = weights
        .iter()
        .map(|&w| f64::from(w.max(1)))
        .fold(f64::MAX, f64::min)
        / total;
    let scale = ((lightest * min as f64).ceil() / lightest).min(max as f64);
    let mut points = Vec::with_capacity(scale as usize + hosts.len());
    let mut placed = 0.0;
    let mut target = 0.0;
    for (i, (addr, &weight)) in hosts.iter().zip(weights).enumerate() {
        target += scale * f64::from(weight.max(1)) / total;
        let key = addr.to_string();
        let mut replica = 0u64;
        while placed < target.floor() || replica == 0 {
            let point = XxHash64::oneshot(0, format!("{key}_{replica}").as_bytes());
            points.push((point, i as u32));
            replica += 1;
            placed += 1.0;
        }
    }
    points.sort_unstable();
    points
}

/// Maglev's table: each host fills the next free slot of its own
/// permutation of the table in turn, heavier hosts more often.
fn maglev(hosts: &[SocketAddr], weights: &[u32], size: u64) -> Vec<u32> {
    let size_usize = size as usize;
    let permutations: Vec<(u64, u64)> = hosts
        .iter()
        .map(|addr| {
            let key = addr.to_string();
            let offset = XxHash64::oneshot(0, key.as_bytes()) % size;
            let skip = XxHash64::oneshot(1, key.as_bytes()) % (size - 1) + 1;
            (offset, skip)
        })
        .collect();
    let heaviest = u64::from(weights.iter().copied().max().unwrap_or(1).max(1));
    let mut next = vec![0u64; hosts.len()];
    let mut credit = vec![0u64; hosts.len()];
    let mut table = vec![u32::MAX; size_usize];
    let mut filled = 0;
    while filled < size_usize {
        for (i, &(offset, skip)) in permutations.iter().enumerate() {
            credit[i] += u64::from(weights[i].max(1));
            if credit[i] < heaviest {
                continue;
            }
            credit[i] -= heaviest;
            loop {
                let slot = ((offset + next[i] * skip) % size) as usize;
                next[i] += 1;
                if table[slot] == u32::MAX {
                    table[slot] = i as u32;
                    filled += 1;
                    break;
                }
            }
            if filled == size_usize {
                break;
            }
        }
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(n: u8) -> Vec<SocketAddr> {
        (1..=n)
            .map(|i| SocketAddr::from(([10, 0, 0, i], 8080)))
            .collect()
    }

    const RING: LbPolicy = LbPolicy::RingHash {
        minimum_ring_size: 1024,
        maximum_ring_size: 8 * 1024 * 1024,
    };
    const MAGLEV: LbPolicy = LbPolicy::Maglev { table_size: 65537 };

    fn shares(table: &HashTable, n: usize) -> Vec<usize> {
        let mut counts = vec![0; n];
        for key in 0..20_000u64 {
            counts[table.pick(XxHash64::oneshot(0, &key.to_le_bytes()))] += 1;
        }
        counts
    }

    #[test]
    fn the_same_hash_picks_the_same_host() {
        for policy in [RING, MAGLEV] {
            let table = HashTable::build(policy, &hosts(4), &[1; 4]).unwrap();
            let again = HashTable::build(policy, &hosts(4), &[1; 4]).unwrap();
            for key in 0..100u64 {
                let hash = XxHash64::oneshot(0, &key.to_le_bytes());
                assert_eq!(table.pick(hash), again.pick(hash), "{policy:?}");
            }
        }
    }

    #[test]
    fn hashes_spread_over_hosts_by_weight() {
        for policy in [RING, MAGLEV] {
            let even = shares(&HashTable::build(policy, &hosts(4), &[1; 4]).unwrap(), 4);
            assert!(
                even.iter().all(|&n| n > 3500 && n < 6500),
                "{policy:?} {even:?}"
            );
            let weighted = shares(&HashTable::build(policy, &hosts(2), &[1, 3]).unwrap(), 2);
            assert!(
                weighted[1] > 2 * weighted[0] && weighted[1] < 4 * weighted[0],
                "{policy:?} {weighted:?}"
            );
        }
    }

    #[test]
    fn a_host_leaving_moves_only_its_own_hashes() {
        for policy in [RING, MAGLEV] {
            let all = hosts(5);
            let before = HashTable::build(policy, &all, &[1; 5]).unwrap();
            let remaining: Vec<SocketAddr> = all[..4].to_vec();
            let after = HashTable::build(policy, &remaining, &[1; 4]).unwrap();
            let mut moved = 0;
            let mut kept = 0;
            for key in 0..10_000u64 {
                let hash = XxHash64::oneshot(0, &key.to_le_bytes());
                let was = before.pick(hash);
                if was == 4 {
                    continue;
                }
                if after.pick(hash) == was {
                    kept += 1;
                } else {
                    moved += 1;
                }
            }
            // The remaining hosts' shares grow a little (ring points are
            // rescaled, as Envoy's are): few of their hashes move.
            assert!(
                moved * 5 < kept,
                "{policy:?}: {moved} of the remaining hosts' hashes moved, {kept} stayed"
            );
        }
    }

    #[test]
    fn only_hashing_policies_build_a_table() {
        assert!(HashTable::build(LbPolicy::RoundRobin, &hosts(2), &[1, 1]).is_none());
        assert!(HashTable::build(RING, &[], &[]).is_none());
        let small = HashTable::build(LbPolicy::Maglev { table_size: 7 }, &hosts(3), &[1; 3]);
        let Some(HashTable::Maglev(table)) = small else {
            panic!("a Maglev table");
        };
        assert_eq!(table.len(), 7);
        assert!(table.iter().all(|&i| i < 3));
    }
}
