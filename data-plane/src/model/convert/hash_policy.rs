//! Consistent hashing → model: a route's `hash_policy` list, and a
//! cluster's RING_HASH or MAGLEV settings (`ring_hash_lb_config`,
//! `maglev_lb_config`) with Envoy's defaults and bounds.

use proto::pb::envoy::config::cluster::v3::Cluster as PbCluster;
use proto::pb::envoy::config::cluster::v3::cluster::{LbConfig, ring_hash_lb_config};
use proto::pb::envoy::config::route::v3::route_action::HashPolicy as PbHashPolicy;
use proto::pb::envoy::config::route::v3::route_action::hash_policy::PolicySpecifier;

use super::{At, duration};
use crate::model::Error;
use crate::model::cluster::LbPolicy;
use crate::model::hash_policy::{HashPolicy, HashSource};

/// Envoy's ring size bounds: default minimum 1024, default maximum 8M.
const DEFAULT_MIN_RING: u64 = 1024;
const DEFAULT_MAX_RING: u64 = 8 * 1024 * 1024;
/// Envoy's default Maglev table size, and the largest it accepts.
const DEFAULT_MAGLEV_TABLE: u64 = 65537;
const MAX_MAGLEV_TABLE: u64 = 5_000_011;

/// A route's hash policies.
pub(super) fn hash_policies(
    policies: &[PbHashPolicy],
    at: &At<'_>,
) -> Result<Vec<HashPolicy>, Error> {
    policies
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let at = at.field(format!("hash_policy[{i}]"));
            let source = match &p.policy_specifier {
                Some(PolicySpecifier::Header(h)) => {
                    if h.regex_rewrite.is_some() {
                        return Err(at
                            .field("header.regex_rewrite")
                            .error("rewriting the header before hashing is not supported"));
                    }
                    if h.header_name.is_empty() {
                        return Err(at.field("header.header_name").error("a name is required"));
                    }
                    HashSource::Header(h.header_name.to_ascii_lowercase())
                }
                Some(PolicySpecifier::Cookie(c)) => {
                    if !c.attributes.is_empty() {
                        return Err(at
                            .field("cookie.attributes")
                            .error("cookie attributes are not supported"));
                    }
                    if c.name.is_empty() {
                        return Err(at.field("cookie.name").error("a name is required"));
                    }
                    HashSource::Cookie {
                        name: c.name.clone(),
                        ttl: c.ttl.as_ref().map(duration),
                        path: c.path.clone(),
                    }
                }
                Some(PolicySpecifier::ConnectionProperties(cp)) if cp.source_ip => {
                    HashSource::SourceIp
                }
                Some(PolicySpecifier::QueryParameter(q)) if !q.name.is_empty() => {
                    HashSource::QueryParameter(q.name.clone())
                }
                Some(PolicySpecifier::ConnectionProperties(_)) => {
                    return Err(at
                        .field("connection_properties.source_ip")
                        .error("only source_ip can be hashed"));
                }
                Some(PolicySpecifier::QueryParameter(_)) => {
                    return Err(at.field("query_parameter.name").error("a name is required"));
                }
                Some(PolicySpecifier::FilterState(_)) => {
                    return Err(at
                        .field("filter_state")
                        .error("hashing filter state is not supported"));
                }
                None => return Err(at.error("a policy is required")),
            };
            Ok(HashPolicy {
                source,
                terminal: p.terminal,
            })
        })
        .collect()
}

/// RING_HASH with its ring size bounds; only XX_HASH hashes hosts.
pub(super) fn ring_hash(c: &PbCluster, at: &At<'_>) -> Result<LbPolicy, Error> {
    let config = match &c.lb_config {
        Some(LbConfig::RingHashLbConfig(config)) => Some(config),
        None => None,
        Some(_) => return Err(at.field("lb_config").error("does not configure RING_HASH")),
    };
    let at = at.field("ring_hash_lb_config");
    let hash_function = config.map_or(0, |c| c.hash_function);
    if ring_hash_lb_config::HashFunction::try_from(hash_function)
        != Ok(ring_hash_lb_config::HashFunction::XxHash)
    {
        return Err(at.field("hash_function").error("only XX_HASH is supported"));
    }
    let min = config
        .and_then(|c| c.minimum_ring_size.as_ref())
        .map_or(DEFAULT_MIN_RING, |v| v.value);
    let max = config
        .and_then(|c| c.maximum_ring_size.as_ref())
        .map_or(DEFAULT_MAX_RING, |v| v.value);
    if min > max || max > DEFAULT_MAX_RING {
        return Err(at.error(format!(
            "ring size bounds {min}..{max} are invalid (at most {DEFAULT_MAX_RING}, minimum not above maximum)"
        )));
    }
    Ok(LbPolicy::RingHash {
        minimum_ring_size: min.max(1),
        maximum_ring_size: max.max(1),
    })
}

/// MAGLEV with its table size, which must be prime.
pub(super) fn maglev(c: &PbCluster, at: &At<'_>) -> Result<LbPolicy, Error> {
    let size = match &c.lb_config {
        Some(LbConfig::MaglevLbConfig(config)) => config
            .table_size
            .as_ref()
            .map_or(DEFAULT_MAGLEV_TABLE, |v| v.value),
        None => DEFAULT_MAGLEV_TABLE,
        Some(_) => return Err(at.field("lb_config").error("does not configure MAGLEV")),
    };
    if size > MAX_MAGLEV_TABLE || !is_prime(size) {
        return Err(at.field("maglev_lb_config.table_size").error(format!(
            "{size} is not a prime number up to {MAX_MAGLEV_TABLE}"
        )));
    }
    Ok(LbPolicy::Maglev { table_size: size })
}

fn is_prime(n: u64) -> bool {
    n >= 2
        && (2..)
            .take_while(|d| d * d <= n)
            .all(|d| !n.is_multiple_of(d))
}
