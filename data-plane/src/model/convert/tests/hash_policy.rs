//! Consistent hashing: a route's hash policies (header, cookie, source IP,
//! query parameter, terminal) and a cluster's RING_HASH and MAGLEV settings
//! with Envoy's defaults; what the agent cannot honour is rejected.

use std::time::Duration;

use proto::pb::envoy::config::cluster::v3::Cluster;
use proto::pb::envoy::config::cluster::v3::cluster::{
    LbConfig, LbPolicy, MaglevLbConfig, RingHashLbConfig, ring_hash_lb_config,
};
use proto::pb::envoy::config::route::v3::route_action::{
    ClusterSpecifier, HashPolicy as PbHashPolicy, hash_policy,
};
use proto::pb::envoy::config::route::v3::{
    Route, RouteAction, RouteConfiguration, RouteMatch, VirtualHost, route, route_match,
};
use proto::wkt::UInt64Value;

use super::assert_rejected;
use crate::model::cluster::LbPolicy as ModelLbPolicy;
use crate::model::hash_policy::{HashPolicy, HashSource};
use crate::model::route::RouteAction as Action;
use crate::model::secret::SecretSources;
use crate::model::{Error, cluster_from_proto, route_config_from_proto};

const CLUSTER: &str = "outbound|80||httpbin.org";

fn routes(policies: Vec<PbHashPolicy>) -> RouteConfiguration {
    RouteConfiguration {
        name: "80".into(),
        virtual_hosts: vec![VirtualHost {
            name: "httpbin.org:80".into(),
            domains: vec!["httpbin.org".into()],
            routes: vec![Route {
                name: "default".into(),
                r#match: Some(RouteMatch {
                    path_specifier: Some(route_match::PathSpecifier::Prefix("/".into())),
                    ..Default::default()
                }),
                action: Some(route::Action::Route(RouteAction {
                    cluster_specifier: Some(ClusterSpecifier::Cluster(CLUSTER.into())),
                    hash_policy: policies,
                    ..Default::default()
                })),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn converted(policies: Vec<PbHashPolicy>) -> Result<Vec<HashPolicy>, Error> {
    let config = route_config_from_proto(&routes(policies))?;
    match &config.virtual_hosts[0].routes[0].action {
        Action::Forward(forward) => Ok(forward.hash_policy.clone()),
        other => panic!("expected a forward, got {other:?}"),
    }
}

fn policy(specifier: hash_policy::PolicySpecifier, terminal: bool) -> PbHashPolicy {
    PbHashPolicy {
        policy_specifier: Some(specifier),
        terminal,
    }
}

#[test]
fn istios_hash_policies_are_kept_in_order() {
    use hash_policy::PolicySpecifier as P;
    let policies = converted(vec![
        policy(
            P::Header(hash_policy::Header {
                header_name: "X-User".into(),
                ..Default::default()
            }),
            false,
        ),
        policy(
            P::Cookie(hash_policy::Cookie {
                name: "session".into(),
                ttl: Some(proto::wkt::Duration {
                    seconds: 60,
                    nanos: 0,
                }),
                path: "/".into(),
                ..Default::default()
            }),
            false,
        ),
        policy(
            P::ConnectionProperties(hash_policy::ConnectionProperties { source_ip: true }),
            false,
        ),
        policy(
            P::QueryParameter(hash_policy::QueryParameter {
                name: "user".into(),
            }),
            true,
        ),
    ])
    .unwrap();
    assert_eq!(
        policies,
        [
            HashPolicy {
                source: HashSource::Header("x-user".into()),
                terminal: false,
            },
            HashPolicy {
                source: HashSource::Cookie {
                    name: "session".into(),
                    ttl: Some(Duration::from_secs(60)),
                    path: "/".into(),
                },
                terminal: false,
            },
            HashPolicy {
                source: HashSource::SourceIp,
                terminal: false,
            },
            HashPolicy {
                source: HashSource::QueryParameter("user".into()),
                terminal: true,
            },
        ]
    );
    assert!(converted(Vec::new()).unwrap().is_empty());
}

#[test]
fn hash_policies_the_agent_cannot_compute_are_rejected() {
    use hash_policy::PolicySpecifier as P;
    let reject = |p: PbHashPolicy, field: &str, reason: &str| {
        assert_rejected(
            route_config_from_proto(&routes(vec![p])),
            "route configuration",
            "80",
            &format!("virtual_hosts[0].routes[0].route.hash_policy[0]{field}"),
            reason,
        );
    };
    reject(
        policy(
            P::FilterState(hash_policy::FilterState { key: "k".into() }),
            false,
        ),
        ".filter_state",
        "hashing filter state is not supported",
    );
    reject(
        policy(
            P::ConnectionProperties(hash_policy::ConnectionProperties { source_ip: false }),
            false,
        ),
        ".connection_properties.source_ip",
        "only source_ip can be hashed",
    );
    reject(PbHashPolicy::default(), "", "a policy is required");
}

fn cluster(lb: LbPolicy, config: Option<LbConfig>) -> Cluster {
    Cluster {
        name: CLUSTER.into(),
        lb_policy: lb as i32,
        lb_config: config,
        ..Default::default()
    }
}

fn lb(c: &Cluster) -> Result<ModelLbPolicy, Error> {
    cluster_from_proto(c, &SecretSources::default()).map(|c| c.lb)
}

#[test]
fn ring_hash_and_maglev_take_envoys_defaults_and_istios_sizes() {
    assert_eq!(
        lb(&cluster(LbPolicy::RingHash, None)).unwrap(),
        ModelLbPolicy::RingHash {
            minimum_ring_size: 1024,
            maximum_ring_size: 8 * 1024 * 1024
        }
    );
    let sized = cluster(
        LbPolicy::RingHash,
        Some(LbConfig::RingHashLbConfig(RingHashLbConfig {
            minimum_ring_size: Some(UInt64Value { value: 2048 }),
            ..Default::default()
        })),
    );
    assert_eq!(
        lb(&sized).unwrap(),
        ModelLbPolicy::RingHash {
            minimum_ring_size: 2048,
            maximum_ring_size: 8 * 1024 * 1024
        }
    );
    assert_eq!(
        lb(&cluster(LbPolicy::Maglev, None)).unwrap(),
        ModelLbPolicy::Maglev { table_size: 65537 }
    );
    let small = cluster(
        LbPolicy::Maglev,
        Some(LbConfig::MaglevLbConfig(MaglevLbConfig {
            table_size: Some(UInt64Value { value: 251 }),
        })),
    );
    assert_eq!(
        lb(&small).unwrap(),
        ModelLbPolicy::Maglev { table_size: 251 }
    );
}

#[test]
fn hashing_settings_envoy_would_refuse_or_the_agent_lacks_are_rejected() {
    let murmur = cluster(
        LbPolicy::RingHash,
        Some(LbConfig::RingHashLbConfig(RingHashLbConfig {
            hash_function: ring_hash_lb_config::HashFunction::MurmurHash2 as i32,
            ..Default::default()
        })),
    );
    assert_rejected(
        lb(&murmur),
        "cluster",
        CLUSTER,
        "ring_hash_lb_config.hash_function",
        "only XX_HASH is supported",
    );
    let inverted = cluster(
        LbPolicy::RingHash,
        Some(LbConfig::RingHashLbConfig(RingHashLbConfig {
            minimum_ring_size: Some(UInt64Value { value: 4096 }),
            maximum_ring_size: Some(UInt64Value { value: 1024 }),
            ..Default::default()
        })),
    );
    assert_rejected(
        lb(&inverted),
        "cluster",
        CLUSTER,
        "ring_hash_lb_config",
        "ring size bounds 4096..1024 are invalid (at most 8388608, minimum not above maximum)",
    );
    let not_prime = cluster(
        LbPolicy::Maglev,
        Some(LbConfig::MaglevLbConfig(MaglevLbConfig {
            table_size: Some(UInt64Value { value: 1000 }),
        })),
    );
    assert_rejected(
        lb(&not_prime),
        "cluster",
        CLUSTER,
        "maglev_lb_config.table_size",
        "1000 is not a prime number up to 5000011",
    );
    let mismatched = cluster(
        LbPolicy::Maglev,
        Some(LbConfig::RingHashLbConfig(RingHashLbConfig::default())),
    );
    assert_rejected(
        lb(&mismatched),
        "cluster",
        CLUSTER,
        "lb_config",
        "does not configure MAGLEV",
    );
}
