//! A DestinationRule's `loadBalancer` on a cluster, as istiod applies it:
//! the `simple` policy (LEAST_REQUEST unless ROUND_ROBIN or RANDOM), and
//! `consistentHash` as RING_HASH (ring size from `ringHash`, the deprecated
//! `minimumRingSize`, or 1024) or MAGLEV (its table size when given).

use proto::pb::envoy::config::cluster::v3::{
    Cluster,
    cluster::{
        ClusterDiscoveryType, DiscoveryType, LbConfig, LbPolicy, MaglevLbConfig, RingHashLbConfig,
    },
};
use proto::wkt::UInt64Value;

use crate::config::model::{ConsistentHashLb, LoadBalancerSettings, SimpleLb};

/// Envoy's default minimum ring size, which istiod writes out when the
/// rule gives none.
const DEFAULT_MINIMUM_RING_SIZE: u64 = 1024;

/// Applies `lb` to `cluster`, whose discovery type is already set: an
/// ORIGINAL_DST cluster is CLUSTER_PROVIDED whatever the rule says.
pub fn apply(cluster: &mut Cluster, lb: Option<&LoadBalancerSettings>) {
    if is_original_dst(cluster) {
        cluster.lb_policy = LbPolicy::ClusterProvided as i32;
        return;
    }
    cluster.lb_policy = match lb.and_then(|lb| lb.simple) {
        Some(SimpleLb::RoundRobin) => LbPolicy::RoundRobin,
        Some(SimpleLb::Random) => LbPolicy::Random,
        Some(SimpleLb::Passthrough) => LbPolicy::ClusterProvided,
        Some(SimpleLb::LeastConn | SimpleLb::LeastRequest | SimpleLb::Unspecified) | None => {
            LbPolicy::LeastRequest
        }
    } as i32;
    if let Some(hash) = lb.and_then(|lb| lb.consistent_hash.as_ref()) {
        consistent_hash(cluster, hash);
    }
}

fn consistent_hash(cluster: &mut Cluster, hash: &ConsistentHashLb) {
    let size = |value: Option<u64>| value.filter(|v| *v > 0).map(|value| UInt64Value { value });
    if let Some(maglev) = &hash.maglev {
        cluster.lb_policy = LbPolicy::Maglev as i32;
        cluster.lb_config = size(maglev.table_size).map(|table_size| {
            LbConfig::MaglevLbConfig(MaglevLbConfig {
                table_size: Some(table_size),
            })
        });
    } else if let Some(ring) = &hash.ring_hash {
        cluster.lb_policy = LbPolicy::RingHash as i32;
        cluster.lb_config = size(ring.minimum_ring_size).map(|minimum| {
            LbConfig::RingHashLbConfig(RingHashLbConfig {
                minimum_ring_size: Some(minimum),
                ..Default::default()
            })
        });
    } else {
        cluster.lb_policy = LbPolicy::RingHash as i32;
        cluster.lb_config = Some(LbConfig::RingHashLbConfig(RingHashLbConfig {
            minimum_ring_size: Some(UInt64Value {
                value: hash
                    .minimum_ring_size
                    .filter(|v| *v > 0)
                    .unwrap_or(DEFAULT_MINIMUM_RING_SIZE),
            }),
            ..Default::default()
        }));
    }
}

fn is_original_dst(cluster: &Cluster) -> bool {
    matches!(
        cluster.cluster_discovery_type,
        Some(ClusterDiscoveryType::Type(t)) if t == DiscoveryType::OriginalDst as i32
    )
}
