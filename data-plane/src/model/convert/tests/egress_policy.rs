//! The egress mark on routes and filter chains: read from Istio's filter
//! metadata, other Istio metadata left alone, any other value rejected.

use std::collections::HashMap;

use proto::pb::envoy::config::core::v3::Metadata;
use proto::pb::envoy::config::listener::v3::{Filter, FilterChain, Listener, filter};
use proto::pb::envoy::config::route::v3::{
    Route, RouteAction, RouteConfiguration, RouteMatch, VirtualHost, route, route_action,
    route_match,
};
use proto::pb::envoy::extensions::filters::network::tcp_proxy::v3::{TcpProxy, tcp_proxy};
use proto::wkt::{Struct, Value, value::Kind};

use super::{assert_rejected, pack, socket_address};
use crate::model::convert::listener::TCP_PROXY;
use crate::model::secret::SecretSources;
use crate::model::{listener_from_proto, route_config_from_proto};
use shared::egress::EgressPolicy;

/// Metadata with `filter_metadata["istio"]` holding `fields`.
fn istio_metadata(fields: &[(&str, Kind)]) -> Metadata {
    let fields = fields
        .iter()
        .map(|(name, kind)| {
            (
                name.to_string(),
                Value {
                    kind: Some(kind.clone()),
                },
            )
        })
        .collect();
    Metadata {
        filter_metadata: HashMap::from([("istio".to_string(), Struct { fields })]),
        ..Default::default()
    }
}

fn mark(value: &str) -> Metadata {
    istio_metadata(&[("egress_policy", Kind::StringValue(value.to_string()))])
}

/// Istio's `block_all` route configuration `80`, with `metadata`.
fn block_all(metadata: Option<Metadata>) -> RouteConfiguration {
    RouteConfiguration {
        name: "80".into(),
        virtual_hosts: vec![VirtualHost {
            name: "block_all".into(),
            domains: vec!["*".into()],
            routes: vec![Route {
                name: "block_all".into(),
                r#match: Some(RouteMatch {
                    path_specifier: Some(route_match::PathSpecifier::Prefix("/".into())),
                    ..Default::default()
                }),
                action: Some(route::Action::Route(RouteAction {
                    cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(
                        "BlackHoleCluster".into(),
                    )),
                    ..Default::default()
                })),
                metadata,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn route_mark(metadata: Option<Metadata>) -> Option<EgressPolicy> {
    route_config_from_proto(&block_all(metadata))
        .unwrap()
        .virtual_hosts[0]
        .routes[0]
        .egress_policy
}

/// Istio's `virtualOutbound` listener, its default chain to `cluster` with
/// `metadata`.
fn virtual_outbound(cluster: &str, metadata: Option<Metadata>) -> Listener {
    let tcp = TcpProxy {
        stat_prefix: cluster.to_string(),
        cluster_specifier: Some(tcp_proxy::ClusterSpecifier::Cluster(cluster.to_string())),
        ..Default::default()
    };
    Listener {
        name: "virtualOutbound".into(),
        address: Some(socket_address("0.0.0.0", 15001)),
        default_filter_chain: Some(FilterChain {
            name: "PassthroughFilterChain".into(),
            filters: vec![Filter {
                name: "envoy.filters.network.tcp_proxy".into(),
                config_type: Some(filter::ConfigType::TypedConfig(pack(TCP_PROXY, &tcp))),
            }],
            metadata,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn chain_mark(cluster: &str, metadata: Option<Metadata>) -> Option<EgressPolicy> {
    listener_from_proto(
        &virtual_outbound(cluster, metadata),
        &SecretSources::default(),
    )
    .unwrap()
    .default_chain
    .unwrap()
    .egress_policy
}

#[test]
fn block_all_is_marked_blocked_and_allow_any_under_dry_run_would_block() {
    assert_eq!(
        route_mark(Some(mark("blocked"))),
        Some(EgressPolicy::Blocked)
    );
    assert_eq!(
        route_mark(Some(mark("would_block"))),
        Some(EgressPolicy::WouldBlock)
    );
}

#[test]
fn a_route_without_the_mark_has_none_and_other_istio_metadata_is_left_alone() {
    assert_eq!(route_mark(None), None);
    let config_only = istio_metadata(&[(
        "config",
        Kind::StringValue(
            "/apis/networking.istio.io/v1/namespaces/default/virtual-service/a".into(),
        ),
    )]);
    assert_eq!(route_mark(Some(config_only)), None);
}

#[test]
fn fall_through_chains_carry_their_mark() {
    assert_eq!(
        chain_mark("BlackHoleCluster", Some(mark("blocked"))),
        Some(EgressPolicy::Blocked)
    );
    assert_eq!(
        chain_mark("PassthroughCluster", Some(mark("would_block"))),
        Some(EgressPolicy::WouldBlock)
    );
    assert_eq!(chain_mark("PassthroughCluster", None), None);
}

#[test]
fn an_unknown_mark_on_a_route_is_rejected() {
    assert_rejected(
        route_config_from_proto(&block_all(Some(mark("allowed")))),
        "route configuration",
        "80",
        "virtual_hosts[0].routes[0].metadata.filter_metadata.istio.egress_policy",
        "\"allowed\" is not an egress policy (expected \"blocked\" or \"would_block\")",
    );
}

#[test]
fn a_mark_that_is_not_a_string_on_a_chain_is_rejected() {
    let not_a_string = istio_metadata(&[("egress_policy", Kind::BoolValue(true))]);
    assert_rejected(
        listener_from_proto(
            &virtual_outbound("BlackHoleCluster", Some(not_a_string)),
            &SecretSources::default(),
        ),
        "listener",
        "virtualOutbound",
        "default_filter_chain.metadata.filter_metadata.istio.egress_policy",
        "must be a string, \"blocked\" or \"would_block\"",
    );
}
