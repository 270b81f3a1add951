//! CONNECT resolution: the service whose host the target names, then the
//! one whose address holds it, never one that merely shares the port.

use std::sync::Arc;

use super::*;
use crate::model::listener::{CidrRange, HttpManager, TcpProxy};
use crate::model::route::{ClusterTarget, WeightedCluster};

/// The chain built for the service whose own cluster is `cluster`, as the
/// control plane names it.
fn tcp_chain(cluster: &str, prefixes: &[(&str, u8)]) -> FilterChain {
    routed_chain(cluster, ClusterTarget::Cluster(cluster.into()), prefixes)
}

/// The chain built for the service `service` (its own cluster name) whose
/// route goes to `target`.
fn routed_chain(service: &str, target: ClusterTarget, prefixes: &[(&str, u8)]) -> FilterChain {
    FilterChain {
        name: service.into(),
        destination_port: None,
        destination_prefixes: prefixes
            .iter()
            .map(|(ip, len)| CidrRange {
                prefix: ip.parse().unwrap(),
                len: *len,
            })
            .collect(),
        tls: None,
        server_names: Vec::new(),
        action: ChainAction::Tcp(TcpProxy {
            stat_prefix: service.into(),
            target,
            file_access_logs: crate::proxy::access_log::istio_stdout(),
            grpc_access_log: None,
            idle_timeout: None,
            max_downstream_connection_duration: None,
            hash_source_ip: false,
        }),
        egress_policy: None,
    }
}

fn listener(
    name: &str,
    address: &str,
    chains: Vec<FilterChain>,
    default: Option<FilterChain>,
) -> Listener {
    Listener {
        name: name.into(),
        address: address.parse().unwrap(),
        bind_to_port: false,
        use_original_dst: false,
        inspect_tls: false,
        filters_timeout: Default::default(),
        filter_chains: chains,
        default_chain: default,
    }
}

fn config(listeners: Vec<Listener>) -> RunningConfig {
    let mut config = RunningConfig::default();
    let outbound = Listener {
        use_original_dst: true,
        bind_to_port: true,
        ..listener("virtualOutbound", "0.0.0.0:15001", vec![], None)
    };
    for l in listeners.into_iter().chain([outbound]) {
        config.listeners.insert(l.name.clone(), Arc::new(l));
    }
    config
}

/// Two databases on 5432 told apart by address, a range, and a service
/// without addresses that takes every other destination when captured.
fn databases() -> RunningConfig {
    config(vec![
        listener(
            "192.0.2.10_5432",
            "192.0.2.10:5432",
            vec![tcp_chain("outbound|5432||a.db.example", &[])],
            None,
        ),
        listener(
            "192.0.2.20_5432",
            "192.0.2.20:5432",
            vec![tcp_chain("outbound|5432||b.db.example", &[])],
            None,
        ),
        listener(
            "0.0.0.0_5432",
            "0.0.0.0:5432",
            vec![tcp_chain(
                "outbound|5432||c.db.example",
                &[("198.51.100.0", 24)],
            )],
            Some(tcp_chain("outbound|5432||*.any.example", &[])),
        ),
    ])
}

fn chain_target<'a>(route: &ConnectRoute<'a>) -> &'a ClusterTarget {
    match route {
        ConnectRoute::Chain(_, chain) => match &chain.action {
            ChainAction::Tcp(proxy) => &proxy.target,
            ChainAction::Http(_) => panic!("HTTP chain"),
        },
        other => panic!("expected a chain, got {other:?}"),
    }
}

fn chain_cluster(route: &ConnectRoute<'_>) -> String {
    match route {
        ConnectRoute::Chain(_, chain) => match &chain.action {
            ChainAction::Tcp(proxy) => match &proxy.target {
                ClusterTarget::Cluster(name) => name.to_string(),
                ClusterTarget::Weighted(_) => panic!("weighted"),
            },
            ChainAction::Http(_) => panic!("HTTP chain"),
        },
        other => panic!("expected a chain, got {other:?}"),
    }
}

fn listener_name(route: &ConnectRoute<'_>) -> String {
    match route {
        ConnectRoute::Listener(l) => l.name.to_string(),
        other => panic!("expected a listener, got {other:?}"),
    }
}

#[test]
fn a_name_goes_to_the_chain_of_its_own_service_not_another_on_the_port() {
    let config = databases();
    assert_eq!(
        chain_cluster(&resolve_connect(&config, "b.db.example", 5432)),
        "outbound|5432||b.db.example"
    );
    assert_eq!(
        chain_cluster(&resolve_connect(&config, "A.DB.example", 5432)),
        "outbound|5432||a.db.example"
    );
    assert_eq!(
        chain_cluster(&resolve_connect(&config, "c.db.example", 5432)),
        "outbound|5432||c.db.example"
    );
    // A wildcard service host covers the names under it.
    assert_eq!(
        chain_cluster(&resolve_connect(&config, "x.any.example", 5432)),
        "outbound|5432||*.any.example"
    );
}

#[test]
fn an_address_goes_to_the_listener_bound_to_it_or_the_range_that_holds_it() {
    let config = databases();
    assert_eq!(
        listener_name(&resolve_connect(&config, "192.0.2.20", 5432)),
        "192.0.2.20_5432"
    );
    assert_eq!(
        listener_name(&resolve_connect(&config, "198.51.100.7", 5432)),
        "0.0.0.0_5432"
    );
    // Another address on the port is no service's: the default chain of
    // the wildcard listener belongs to a service that merely shares it.
    assert!(matches!(
        resolve_connect(&config, "203.0.113.1", 5432),
        ConnectRoute::Fallthrough
    ));
}

#[test]
fn an_unknown_name_is_resolved_when_addresses_tell_services_apart() {
    let config = databases();
    assert!(matches!(
        resolve_connect(&config, "db.other.example", 5432),
        ConnectRoute::Resolve
    ));
    assert_eq!(
        listener_name(&resolve_address(
            &config,
            "192.0.2.10".parse().unwrap(),
            5432
        )),
        "192.0.2.10_5432"
    );
    assert!(matches!(
        resolve_address(&config, "203.0.113.1".parse().unwrap(), 5432),
        ConnectRoute::Fallthrough
    ));
}

#[test]
fn a_port_without_services_falls_through_without_resolving() {
    let config = databases();
    assert!(matches!(
        resolve_connect(&config, "elsewhere.example", 6379),
        ConnectRoute::Fallthrough
    ));
    assert!(matches!(
        resolve_connect(&config, "203.0.113.1", 6379),
        ConnectRoute::Fallthrough
    ));
}

#[test]
fn http_and_sni_listeners_route_by_what_the_tunnel_carries() {
    let http = FilterChain {
        action: ChainAction::Http(HttpManager {
            stat_prefix: "outbound_0.0.0.0_80".into(),
            route_config_name: "80".into(),
            inline_routes: None,
            file_access_logs: crate::proxy::access_log::istio_stdout(),
            grpc_access_log: None,
            http_filters: Default::default(),
            use_remote_address: false,
            path_normalization: Default::default(),
            server_header: Default::default(),
            timeouts: crate::model::http_timeouts::HttpTimeouts::default(),
            suppress_envoy_headers: false,
            upgrades: Default::default(),
        }),
        ..tcp_chain("unused", &[])
    };
    let sni = FilterChain {
        server_names: vec!["api.example".to_string()],
        ..tcp_chain("outbound|443||api.example", &[])
    };
    let config = config(vec![
        listener("0.0.0.0_80", "0.0.0.0:80", vec![http], None),
        listener("0.0.0.0_443", "0.0.0.0:443", vec![sni], None),
    ]);
    assert_eq!(
        listener_name(&resolve_connect(&config, "httpbin.org", 80)),
        "0.0.0.0_80"
    );
    assert_eq!(
        listener_name(&resolve_connect(&config, "api.example", 443)),
        "0.0.0.0_443"
    );
    assert_eq!(
        listener_name(&resolve_connect(&config, "203.0.113.9", 443)),
        "0.0.0.0_443"
    );
}

#[test]
fn the_http_proxy_task_reaches_the_proxy_by_its_address() {
    // A TCP ServiceEntry for the corporate proxy at 10.104.2.166/32.
    let config = config(vec![listener(
        "10.104.2.166_3128",
        "10.104.2.166:3128",
        vec![tcp_chain("outbound|3128||my-company-proxy.com", &[])],
        None,
    )]);
    assert_eq!(
        listener_name(&resolve_connect(&config, "10.104.2.166", 3128)),
        "10.104.2.166_3128"
    );
    assert_eq!(
        chain_cluster(&resolve_connect(&config, "my-company-proxy.com", 3128)),
        "outbound|3128||my-company-proxy.com"
    );
}

#[test]
fn a_tcp_service_of_its_own_beats_the_sni_listener_of_the_port() {
    let sni = FilterChain {
        server_names: vec!["api.example".to_string()],
        ..tcp_chain("outbound|443||api.example", &[])
    };
    let config = config(vec![
        listener("0.0.0.0_443", "0.0.0.0:443", vec![sni], None),
        listener(
            "192.0.2.44_443",
            "192.0.2.44:443",
            vec![tcp_chain("outbound|443||legacy.example", &[])],
            None,
        ),
    ]);
    assert_eq!(
        listener_name(&resolve_connect(&config, "192.0.2.44", 443)),
        "192.0.2.44_443"
    );
    assert_eq!(
        chain_cluster(&resolve_connect(&config, "legacy.example", 443)),
        "outbound|443||legacy.example"
    );
    // The SNI chain is chosen by the ClientHello, not by the CONNECT name.
    assert_eq!(
        listener_name(&resolve_connect(&config, "api.example", 443)),
        "0.0.0.0_443"
    );
}

const GATEWAY_MONGO: &str =
    "outbound|7777|mongo|istio-egressgateway.istio-system.svc.cluster.local";

/// The MongoDB egress blog post: the service's listener on its address has
/// the `mesh` route's chain (destination subnet: the address) to the
/// egress gateway, and the service's own chain as the default.
fn mongo_through_gateway() -> RunningConfig {
    config(vec![listener(
        "203.0.113.7_27017",
        "203.0.113.7:27017",
        vec![routed_chain(
            "outbound|27017||my-mongo.tcp.svc",
            ClusterTarget::Cluster(GATEWAY_MONGO.into()),
            &[("203.0.113.7", 32)],
        )],
        Some(tcp_chain("outbound|27017||my-mongo.tcp.svc", &[])),
    )])
}

#[test]
fn a_name_routed_through_the_egress_gateway_reaches_the_gateway() {
    let config = mongo_through_gateway();
    // As a connection to the service's address: the route's subnet chain.
    assert_eq!(
        chain_cluster(&resolve_connect(&config, "my-mongo.tcp.svc", 27017)),
        GATEWAY_MONGO
    );
    assert_eq!(
        listener_name(&resolve_connect(&config, "203.0.113.7", 27017)),
        "203.0.113.7_27017"
    );
}

#[test]
fn a_route_without_subnets_sends_its_service_to_the_gateway_under_any_mode() {
    // No address: the service's only chain is the route's, on the wildcard
    // listener; the fall-through would bypass the gateway (ALLOW_ANY) or
    // refuse (REGISTRY_ONLY).
    let config = config(vec![listener(
        "0.0.0.0_27017",
        "0.0.0.0:27017",
        vec![routed_chain(
            "outbound|27017||my-mongo.tcp.svc",
            ClusterTarget::Cluster(GATEWAY_MONGO.into()),
            &[],
        )],
        None,
    )]);
    assert_eq!(
        chain_cluster(&resolve_connect(&config, "my-mongo.tcp.svc", 27017)),
        GATEWAY_MONGO
    );
}

#[test]
fn a_weighted_route_belongs_to_its_service_not_to_its_destinations() {
    let split = ClusterTarget::Weighted(vec![
        WeightedCluster::new("outbound|5432||b.db.example", 80),
        WeightedCluster::new("outbound|5432||c.db.example", 20),
    ]);
    let config = config(vec![
        listener(
            "192.0.2.10_5432",
            "192.0.2.10:5432",
            vec![routed_chain(
                "outbound|5432||a.db.example",
                split.clone(),
                &[],
            )],
            None,
        ),
        listener(
            "192.0.2.30_5432",
            "192.0.2.30:5432",
            vec![tcp_chain("outbound|5432||c.db.example", &[])],
            None,
        ),
    ]);
    assert_eq!(
        chain_target(&resolve_connect(&config, "a.db.example", 5432)),
        &split
    );
    // C gets its own chain, as a connection to C's address would.
    assert_eq!(
        chain_cluster(&resolve_connect(&config, "c.db.example", 5432)),
        "outbound|5432||c.db.example"
    );
    // B has no chain of its own on the port: its name is resolved and the
    // address decides, never A's split.
    assert!(matches!(
        resolve_connect(&config, "b.db.example", 5432),
        ConnectRoute::Resolve
    ));
}

#[test]
fn a_tls_service_with_an_address_is_found_before_the_sni_listener_of_the_port() {
    // A TLS service without addresses routes by SNI on the wildcard; the
    // one with an address has its own listener, whose chain matches every
    // connection and is named for the service.
    let sni = FilterChain {
        server_names: vec!["api.example.com".to_string()],
        ..tcp_chain("outbound|443||api.example.com", &[])
    };
    let config = config(vec![
        listener("0.0.0.0_443", "0.0.0.0:443", vec![sni], None),
        listener(
            "10.0.0.7_443",
            "10.0.0.7:443",
            vec![tcp_chain("outbound|443||db.example.com", &[])],
            None,
        ),
    ]);
    assert_eq!(
        chain_cluster(&resolve_connect(&config, "db.example.com", 443)),
        "outbound|443||db.example.com"
    );
    assert_eq!(
        listener_name(&resolve_connect(&config, "api.example.com", 443)),
        "0.0.0.0_443"
    );
}
