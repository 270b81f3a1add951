//! Listeners: address, listener filters, filter chain match and action.

use proto::pb::envoy::config::core::v3::CidrRange;
use proto::pb::envoy::config::listener::v3::{
    Filter, FilterChain, FilterChainMatch, Listener, ListenerFilter, filter, listener_filter,
};
use proto::pb::envoy::config::route::v3::{RouteConfiguration, VirtualHost};
use proto::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, HttpFilter, Rds, http_connection_manager, http_filter,
};
use proto::pb::envoy::extensions::filters::network::tcp_proxy::v3::{TcpProxy, tcp_proxy};
use proto::pb::envoy::extensions::transport_sockets::tls::v3::DownstreamTlsContext;
use proto::wkt::{BoolValue, Duration, UInt32Value};

use super::{
    assert_rejected, named_port_address, pack, socket_address, starting, transport_socket,
};
use crate::model::convert::listener::{HCM, ROUTER, TCP_PROXY, TLS_INSPECTOR};
use crate::model::convert::tls::DOWNSTREAM_TLS;
use crate::model::listener::{ChainAction, CidrRange as ModelCidr};
use crate::model::route::{ClusterTarget, WeightedCluster};
use crate::model::secret::SecretSources;
use crate::model::{Error, listener_from_proto};

fn tcp_proxy(cluster: &str) -> Filter {
    let tcp = TcpProxy {
        stat_prefix: cluster.to_string(),
        cluster_specifier: Some(tcp_proxy::ClusterSpecifier::Cluster(cluster.to_string())),
        ..Default::default()
    };
    Filter {
        name: "envoy.filters.network.tcp_proxy".into(),
        config_type: Some(filter::ConfigType::TypedConfig(pack(TCP_PROXY, &tcp))),
    }
}

fn router() -> HttpFilter {
    HttpFilter {
        name: "envoy.filters.http.router".into(),
        config_type: Some(http_filter::ConfigType::TypedConfig(pack(
            ROUTER,
            &proto::wkt::Empty {},
        ))),
        ..Default::default()
    }
}

fn rds(route_config_name: &str) -> HttpConnectionManager {
    HttpConnectionManager {
        stat_prefix: "outbound_0.0.0.0_80".into(),
        http_filters: vec![router()],
        route_specifier: Some(http_connection_manager::RouteSpecifier::Rds(Rds {
            route_config_name: route_config_name.to_string(),
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn hcm(hcm: &HttpConnectionManager) -> Filter {
    Filter {
        name: "envoy.filters.network.http_connection_manager".into(),
        config_type: Some(filter::ConfigType::TypedConfig(pack(HCM, hcm))),
    }
}

fn chain(name: &str, filter: Filter) -> FilterChain {
    FilterChain {
        name: name.to_string(),
        filters: vec![filter],
        ..Default::default()
    }
}

/// A listener on 0.0.0.0:443 with one TCP proxy chain.
fn base() -> Listener {
    Listener {
        name: "0.0.0.0_443".into(),
        address: Some(socket_address("0.0.0.0", 443)),
        filter_chains: vec![chain("tcp", tcp_proxy("outbound|443||a.com"))],
        ..Default::default()
    }
}

fn convert(l: &Listener) -> Result<crate::model::Listener, Error> {
    listener_from_proto(l, &SecretSources::default())
}

#[test]
fn a_sidecar_listener_keeps_its_chains_names_and_ports() {
    let mut l = base();
    l.bind_to_port = Some(BoolValue { value: false });
    l.listener_filters = vec![ListenerFilter {
        name: "envoy.filters.listener.tls_inspector".into(),
        config_type: Some(listener_filter::ConfigType::TypedConfig(pack(
            TLS_INSPECTOR,
            &proto::wkt::Empty {},
        ))),
        ..Default::default()
    }];
    l.filter_chains[0].filter_chain_match = Some(FilterChainMatch {
        server_names: vec!["*.CNN.com".into()],
        destination_port: Some(UInt32Value { value: 443 }),
        ..Default::default()
    });
    l.default_filter_chain = Some(chain("http", hcm(&rds("80"))));

    let converted = convert(&l).unwrap();
    assert_eq!(converted.address, "0.0.0.0:443".parse().unwrap());
    assert!(!converted.bind_to_port);
    assert!(!converted.use_original_dst);
    assert!(converted.inspect_tls, "the TLS inspector reads the SNI");
    let tcp = &converted.filter_chains[0];
    assert_eq!(
        tcp.server_names,
        ["*.cnn.com"],
        "server names are lowercased"
    );
    assert_eq!(tcp.destination_port, Some(443));
    let ChainAction::Tcp(proxy) = &tcp.action else {
        panic!("expected a TCP proxy, got {:?}", tcp.action);
    };
    assert_eq!(
        proxy.target,
        ClusterTarget::Cluster("outbound|443||a.com".into())
    );
    let http = converted.default_chain.as_ref().unwrap();
    let ChainAction::Http(manager) = &http.action else {
        panic!("expected an HTTP connection manager, got {:?}", http.action);
    };
    assert_eq!(&*manager.route_config_name, "80");
    assert!(manager.inline_routes.is_none());
    assert!(manager.file_access_logs.is_empty());
}

#[test]
fn bind_to_port_defaults_to_true_and_use_original_dst_to_false() {
    let mut l = base();
    let converted = convert(&l).unwrap();
    assert!(converted.bind_to_port);
    assert!(!converted.use_original_dst);
    l.use_original_dst = Some(BoolValue { value: true });
    assert!(convert(&l).unwrap().use_original_dst);
}

#[test]
fn tcp_proxy_weights_and_idle_timeout_are_kept_and_zero_disables_it() {
    let mut l = base();
    let tcp = |idle_seconds: i64| TcpProxy {
        stat_prefix: "weighted".into(),
        cluster_specifier: Some(tcp_proxy::ClusterSpecifier::WeightedClusters(
            tcp_proxy::WeightedCluster {
                clusters: vec![
                    tcp_proxy::weighted_cluster::ClusterWeight {
                        name: "a".into(),
                        weight: 20,
                        ..Default::default()
                    },
                    tcp_proxy::weighted_cluster::ClusterWeight {
                        name: "b".into(),
                        weight: 80,
                        ..Default::default()
                    },
                ],
            },
        )),
        idle_timeout: Some(Duration {
            seconds: idle_seconds,
            nanos: 0,
        }),
        ..Default::default()
    };
    let action = |l: &Listener| convert(l).unwrap().filter_chains[0].action.clone();
    l.filter_chains[0].filters[0].config_type =
        Some(filter::ConfigType::TypedConfig(pack(TCP_PROXY, &tcp(30))));
    let ChainAction::Tcp(proxy) = action(&l) else {
        panic!("expected a TCP proxy");
    };
    assert_eq!(
        proxy.target,
        ClusterTarget::Weighted(vec![
            WeightedCluster::new("a", 20),
            WeightedCluster::new("b", 80)
        ])
    );
    assert_eq!(proxy.idle_timeout, Some(std::time::Duration::from_secs(30)));
    l.filter_chains[0].filters[0].config_type =
        Some(filter::ConfigType::TypedConfig(pack(TCP_PROXY, &tcp(0))));
    let ChainAction::Tcp(proxy) = action(&l) else {
        panic!("expected a TCP proxy");
    };
    assert_eq!(proxy.idle_timeout, None, "0s disables the idle timeout");
}

#[test]
fn an_inline_route_configuration_is_converted_with_the_listener() {
    let mut l = base();
    let mut manager = rds("unused");
    manager.route_specifier = Some(http_connection_manager::RouteSpecifier::RouteConfig(
        RouteConfiguration {
            name: "inline".into(),
            virtual_hosts: vec![VirtualHost {
                name: "any".into(),
                domains: vec!["*".into()],
                ..Default::default()
            }],
            ..Default::default()
        },
    ));
    l.filter_chains = vec![chain("http", hcm(&manager))];
    let converted = convert(&l).unwrap();
    let ChainAction::Http(manager) = &converted.filter_chains[0].action else {
        panic!("expected an HTTP connection manager");
    };
    assert_eq!(&*manager.route_config_name, "inline");
    let routes = manager.inline_routes.as_ref().unwrap();
    assert_eq!(&*routes.virtual_hosts[0].name, "any");
}

#[test]
fn use_remote_address_is_kept_and_false_when_unset() {
    let use_remote = |value: Option<bool>| {
        let mut l = base();
        let mut manager = rds("80");
        manager.use_remote_address = value.map(|value| BoolValue { value });
        l.filter_chains = vec![chain("http", hcm(&manager))];
        let converted = convert(&l).unwrap();
        let ChainAction::Http(manager) = &converted.filter_chains[0].action else {
            panic!("expected an HTTP connection manager");
        };
        manager.use_remote_address
    };
    assert!(!use_remote(None));
    assert!(!use_remote(Some(false)));
    assert!(use_remote(Some(true)));
}

#[test]
fn an_optional_http_filter_is_skipped_and_a_required_one_rejected() {
    let mut manager = rds("80");
    manager.http_filters.insert(
        0,
        HttpFilter {
            name: "istio.stats".into(),
            is_optional: true,
            ..Default::default()
        },
    );
    let mut l = base();
    l.filter_chains = vec![chain("http", hcm(&manager))];
    assert!(convert(&l).is_ok());

    manager.http_filters[0].is_optional = false;
    l.filter_chains = vec![chain("http", hcm(&manager))];
    assert_rejected(
        convert(&l),
        "listener",
        "0.0.0.0_443",
        "filter_chains[0].http_connection_manager.http_filters[0]",
        "unsupported HTTP filter istio.stats ()",
    );
}

/// The rejection of `base()` after `edit`, at `field`, for `reason`.
#[track_caller]
fn assert_edit_rejected(edit: impl FnOnce(&mut Listener), field: &str, reason: &str) {
    let mut l = base();
    edit(&mut l);
    assert_rejected(convert(&l), "listener", "0.0.0.0_443", field, reason);
}

#[test]
fn address_must_be_an_ip_and_a_port() {
    assert_edit_rejected(
        |l| l.address = None,
        "address",
        "only socket addresses are supported",
    );
    assert_edit_rejected(
        |l| l.address = Some(socket_address("localhost", 443)),
        "address",
        "\"localhost\" is not an IP address",
    );
    assert_edit_rejected(
        |l| l.address = Some(socket_address("0.0.0.0", 70000)),
        "address",
        "port 70000 is out of range",
    );
    assert_edit_rejected(
        |l| l.address = Some(named_port_address("0.0.0.0")),
        "address",
        "a port number is required",
    );
}

#[test]
fn an_unknown_listener_filter_is_rejected() {
    assert_edit_rejected(
        |l| {
            l.listener_filters = vec![ListenerFilter {
                name: "envoy.filters.listener.proxy_protocol".into(),
                ..Default::default()
            }]
        },
        "listener_filters[0]",
        "unsupported listener filter envoy.filters.listener.proxy_protocol ()",
    );
}

#[test]
fn match_fields_the_agent_does_not_match_on_are_rejected() {
    type Set = fn(&mut FilterChainMatch);
    let cases: [(&str, Set); 5] = [
        ("source_prefix_ranges", |m| {
            m.source_prefix_ranges = vec![Default::default()]
        }),
        ("direct_source_prefix_ranges", |m| {
            m.direct_source_prefix_ranges = vec![Default::default()]
        }),
        ("source_ports", |m| m.source_ports = vec![8080]),
        ("application_protocols", |m| {
            m.application_protocols = vec!["h2".into()]
        }),
        ("transport_protocol", |m| {
            m.transport_protocol = "tls".into()
        }),
    ];
    for (field, set) in cases {
        assert_edit_rejected(
            |l| {
                let mut m = FilterChainMatch::default();
                set(&mut m);
                l.filter_chains[0].filter_chain_match = Some(m);
            },
            &format!("filter_chains[0].filter_chain_match.{field}"),
            "this match field is not supported",
        );
    }
}

fn prefix(address: &str, len: u32) -> CidrRange {
    CidrRange {
        address_prefix: address.into(),
        prefix_len: Some(UInt32Value { value: len }),
    }
}

#[test]
fn destination_prefix_ranges_are_kept_and_an_invalid_one_is_rejected() {
    let mut l = base();
    l.filter_chains[0].filter_chain_match = Some(FilterChainMatch {
        prefix_ranges: vec![prefix("10.10.0.0", 16), prefix("2001:db8::", 32)],
        ..Default::default()
    });
    let converted = convert(&l).expect("converts");
    assert_eq!(
        converted.filter_chains[0].destination_prefixes,
        [
            ModelCidr {
                prefix: "10.10.0.0".parse().unwrap(),
                len: 16
            },
            ModelCidr {
                prefix: "2001:db8::".parse().unwrap(),
                len: 32
            }
        ]
    );
    assert_edit_rejected(
        |l| {
            l.filter_chains[0].filter_chain_match = Some(FilterChainMatch {
                prefix_ranges: vec![prefix("10.0.0.0", 33)],
                ..Default::default()
            })
        },
        "filter_chains[0].filter_chain_match.prefix_ranges[0].prefix_len",
        "33 is longer than the address (32 bits)",
    );
    assert_edit_rejected(
        |l| {
            l.filter_chains[0].filter_chain_match = Some(FilterChainMatch {
                prefix_ranges: vec![prefix("db.example", 8)],
                ..Default::default()
            })
        },
        "filter_chains[0].filter_chain_match.prefix_ranges[0].address_prefix",
        "\"db.example\" is not an IP address",
    );
}

#[test]
fn a_destination_port_out_of_range_is_rejected() {
    assert_edit_rejected(
        |l| {
            l.filter_chains[0].filter_chain_match = Some(FilterChainMatch {
                destination_port: Some(UInt32Value { value: 65536 }),
                ..Default::default()
            })
        },
        "filter_chains[0].filter_chain_match.destination_port",
        "out of range",
    );
}

#[test]
fn a_chain_needs_exactly_one_typed_terminal_filter() {
    assert_edit_rejected(
        |l| l.filter_chains[0].filters.clear(),
        "filter_chains[0].filters",
        "a filter chain needs a terminal filter (http_connection_manager or tcp_proxy)",
    );
    assert_edit_rejected(
        |l| l.filter_chains[0].filters.push(tcp_proxy("other")),
        "filter_chains[0].filters",
        "only one network filter is supported, got 2",
    );
    assert_edit_rejected(
        |l| l.filter_chains[0].filters[0].config_type = None,
        "filter_chains[0].filters[0]",
        "typed_config is required",
    );
    assert_edit_rejected(
        |l| {
            l.default_filter_chain = Some(chain(
                "redis",
                Filter {
                    name: "envoy.filters.network.redis_proxy".into(),
                    config_type: Some(filter::ConfigType::TypedConfig(pack(
                        "type.googleapis.com/envoy.extensions.filters.network.redis_proxy.v3.RedisProxy",
                        &proto::wkt::Empty {},
                    ))),
                },
            ))
        },
        "default_filter_chain.filters[0]",
        "unsupported network filter envoy.filters.network.redis_proxy \
         (type.googleapis.com/envoy.extensions.filters.network.redis_proxy.v3.RedisProxy)",
    );
}

#[test]
fn a_filter_that_does_not_decode_is_rejected() {
    let garbage = |type_url: &str| proto::wkt::Any {
        type_url: type_url.to_string(),
        value: vec![0xff, 0xff],
    };
    for type_url in [HCM, TCP_PROXY] {
        let mut l = base();
        l.filter_chains[0].filters[0].config_type =
            Some(filter::ConfigType::TypedConfig(garbage(type_url)));
        assert_rejected(
            convert(&l),
            "listener",
            "0.0.0.0_443",
            "filter_chains[0].filters[0]",
            starting(&format!("cannot decode {type_url}: ")),
        );
    }
}

#[test]
fn an_http_connection_manager_needs_routes() {
    let mut manager = rds("80");
    manager.route_specifier = None;
    assert_edit_rejected(
        |l| l.filter_chains = vec![chain("http", hcm(&manager))],
        "filter_chains[0].http_connection_manager.route_specifier",
        "rds or route_config is required",
    );
}

#[test]
fn a_bad_inline_route_configuration_rejects_the_listener_naming_the_routes() {
    let mut manager = rds("80");
    manager.route_specifier = Some(http_connection_manager::RouteSpecifier::RouteConfig(
        RouteConfiguration {
            name: "inline".into(),
            virtual_hosts: vec![VirtualHost {
                routes: vec![Default::default()],
                ..Default::default()
            }],
            ..Default::default()
        },
    ));
    let mut l = base();
    l.filter_chains = vec![chain("http", hcm(&manager))];
    assert_rejected(
        convert(&l),
        "route configuration",
        "inline",
        "virtual_hosts[0].routes[0].match",
        "only prefix, path, safe_regex and path_separated_prefix matches are supported",
    );
}

#[test]
fn a_tcp_proxy_needs_a_cluster() {
    let tcp = TcpProxy::default();
    assert_edit_rejected(
        |l| {
            l.filter_chains[0].filters[0].config_type =
                Some(filter::ConfigType::TypedConfig(pack(TCP_PROXY, &tcp)))
        },
        "filter_chains[0].tcp_proxy.cluster_specifier",
        "a cluster is required",
    );
}

#[test]
fn tls_termination_in_front_of_a_tcp_proxy_is_kept() {
    // A gateway TLS server that terminates TLS and routes by `tcp` routes.
    let mut l = base();
    l.filter_chains[0].transport_socket = Some(transport_socket(
        DOWNSTREAM_TLS,
        &DownstreamTlsContext::default(),
    ));
    let converted = convert(&l).expect("converts");
    let chain = &converted.filter_chains[0];
    assert!(chain.tls.is_some());
    assert!(matches!(chain.action, ChainAction::Tcp(_)));
}

/// Envoy's listener filter timeout: 15 s when unset, none when zero, and
/// the connection closed on timeout unless the listener asks to go on
/// (istiod asks on its TLS-inspecting outbound listeners).
#[test]
fn listener_filters_timeout_as_envoy_reads_it() {
    use crate::model::listener::FiltersTimeout;
    let secrets = SecretSources::default();
    let unset = listener_from_proto(&base(), &secrets).unwrap();
    assert_eq!(
        unset.filters_timeout,
        FiltersTimeout {
            timeout: Some(std::time::Duration::from_secs(15)),
            continue_on_timeout: false,
        }
    );
    let zero = Listener {
        listener_filters_timeout: Some(Duration::default()),
        ..base()
    };
    assert_eq!(
        listener_from_proto(&zero, &secrets)
            .unwrap()
            .filters_timeout
            .timeout,
        None
    );
    let set = Listener {
        listener_filters_timeout: Some(Duration {
            seconds: 0,
            nanos: 250_000_000,
        }),
        continue_on_listener_filters_timeout: true,
        ..base()
    };
    assert_eq!(
        listener_from_proto(&set, &secrets).unwrap().filters_timeout,
        FiltersTimeout {
            timeout: Some(std::time::Duration::from_millis(250)),
            continue_on_timeout: true,
        }
    );
}

#[test]
fn drain_type_modify_only_is_rejected_and_default_accepted() {
    use proto::pb::envoy::config::listener::v3::listener::DrainType;
    let mut l = base();
    l.drain_type = DrainType::Default as i32;
    convert(&l).expect("DEFAULT, Envoy's default, converts");
    // Envoy's MODIFY_ONLY keeps a listener out of /healthcheck/fail draining.
    l.drain_type = DrainType::ModifyOnly as i32;
    assert_rejected(
        convert(&l),
        "listener",
        "0.0.0.0_443",
        "drain_type",
        starting("only DEFAULT is supported"),
    );
}

#[test]
fn a_connection_buffer_limit_other_than_envoys_default_is_rejected() {
    let mut l = base();
    l.per_connection_buffer_limit_bytes = Some(proto::wkt::UInt32Value { value: 1_048_576 });
    convert(&l).expect("Envoy's default 1 MiB converts");
    // Istio's edge advice (32 KiB) would shrink what a retry may resend.
    l.per_connection_buffer_limit_bytes = Some(proto::wkt::UInt32Value { value: 32_768 });
    assert_rejected(
        convert(&l),
        "listener",
        "0.0.0.0_443",
        "per_connection_buffer_limit_bytes",
        starting("only Envoy's default of 1048576 is supported"),
    );
}
