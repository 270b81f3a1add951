//! The proxy-config tables and outputs, from CSDS-like client configs.

use proto::pb::envoy::config::cluster::v3::Cluster;
use proto::pb::envoy::config::cluster::v3::cluster::{ClusterDiscoveryType, DiscoveryType};
use proto::pb::envoy::config::core::v3::{
    Address, Metadata, SocketAddress, address, socket_address,
};
use proto::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints, lb_endpoint,
};
use proto::pb::envoy::config::listener::v3::{
    Filter, FilterChain, FilterChainMatch, Listener, filter,
};
use proto::pb::envoy::config::route::v3::{
    Route, RouteConfiguration, RouteMatch, VirtualHost, route_match,
};
use proto::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, Rds, http_connection_manager,
};
use proto::pb::envoy::extensions::filters::network::tcp_proxy::v3::{TcpProxy, tcp_proxy};
use proto::pb::envoy::service::status::v3::client_config::GenericXdsConfig;
use proto::wkt::{Struct, Value, value};

use super::table::cells;
use super::*;

fn sent<M: Message>(type_url: &str, name: &str, message: &M) -> GenericXdsConfig {
    GenericXdsConfig {
        type_url: type_url.to_string(),
        name: name.to_string(),
        version_info: "1".to_string(),
        xds_config: Some(proto::pack(type_url, message)),
        client_status: ClientResourceStatus::Acked as i32,
        ..Default::default()
    }
}

fn socket(ip: &str, port: u32) -> Address {
    Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            address: ip.to_string(),
            port_specifier: Some(socket_address::PortSpecifier::PortValue(port)),
            ..Default::default()
        })),
    }
}

fn cluster(name: &str, kind: DiscoveryType) -> Cluster {
    Cluster {
        name: name.to_string(),
        cluster_discovery_type: Some(ClusterDiscoveryType::Type(kind as i32)),
        ..Default::default()
    }
}

fn endpoint(ip: &str, port: u32) -> LbEndpoint {
    LbEndpoint {
        host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(Endpoint {
            address: Some(socket(ip, port)),
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn assignment(cluster: &str, endpoints: Vec<LbEndpoint>) -> ClusterLoadAssignment {
    ClusterLoadAssignment {
        cluster_name: cluster.to_string(),
        endpoints: vec![LocalityLbEndpoints {
            lb_endpoints: endpoints,
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn network_filter(type_url: &str, message: &impl Message) -> Filter {
    Filter {
        name: String::new(),
        config_type: Some(filter::ConfigType::TypedConfig(proto::pack(
            type_url, message,
        ))),
    }
}

fn http_to_route(route: &str) -> Filter {
    network_filter(
        "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        &HttpConnectionManager {
            route_specifier: Some(http_connection_manager::RouteSpecifier::Rds(Rds {
                route_config_name: route.to_string(),
                ..Default::default()
            })),
            ..Default::default()
        },
    )
}

fn tcp_to(cluster: &str) -> Filter {
    network_filter(
        "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
        &TcpProxy {
            cluster_specifier: Some(tcp_proxy::ClusterSpecifier::Cluster(cluster.to_string())),
            ..Default::default()
        },
    )
}

/// A sidecar's view of edition.cnn.com: HTTP on 80 by route `80`, TLS on
/// 443 by SNI to `outbound|443||edition.cnn.com`.
fn sidecar() -> ClientConfig {
    let cnn_443 = "outbound|443||edition.cnn.com";
    let listener_80 = Listener {
        name: "0.0.0.0_80".to_string(),
        address: Some(socket("0.0.0.0", 80)),
        filter_chains: vec![FilterChain {
            filters: vec![http_to_route("80")],
            ..Default::default()
        }],
        ..Default::default()
    };
    let listener_443 = Listener {
        name: "0.0.0.0_443".to_string(),
        address: Some(socket("0.0.0.0", 443)),
        filter_chains: vec![FilterChain {
            filter_chain_match: Some(FilterChainMatch {
                server_names: vec!["edition.cnn.com".to_string()],
                transport_protocol: "tls".to_string(),
                ..Default::default()
            }),
            filters: vec![tcp_to(cnn_443)],
            ..Default::default()
        }],
        default_filter_chain: Some(FilterChain {
            filters: vec![tcp_to("PassthroughCluster")],
            ..Default::default()
        }),
        ..Default::default()
    };
    let vs_metadata = Metadata {
        filter_metadata: [(
            "istio".to_string(),
            Struct {
                fields: [(
                    "config".to_string(),
                    Value {
                        kind: Some(value::Kind::StringValue(
                            "/apis/networking.istio.io/v1/namespaces/default/virtual-service/cnn"
                                .to_string(),
                        )),
                    },
                )]
                .into(),
            },
        )]
        .into(),
        ..Default::default()
    };
    let route_80 = RouteConfiguration {
        name: "80".to_string(),
        virtual_hosts: vec![VirtualHost {
            name: "edition.cnn.com:80".to_string(),
            domains: vec![
                "edition.cnn.com".to_string(),
                "edition.cnn.com:80".to_string(),
            ],
            routes: vec![Route {
                r#match: Some(RouteMatch {
                    path_specifier: Some(route_match::PathSpecifier::Prefix("/".to_string())),
                    ..Default::default()
                }),
                metadata: Some(vs_metadata),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut dns = cluster(cnn_443, DiscoveryType::StrictDns);
    dns.load_assignment = Some(assignment(cnn_443, vec![endpoint("edition.cnn.com", 443)]));
    ClientConfig {
        generic_xds_configs: vec![
            sent(type_url::CLUSTER, cnn_443, &dns),
            sent(
                type_url::CLUSTER,
                "outbound|80|v1|httpbin.org",
                &cluster("outbound|80|v1|httpbin.org", DiscoveryType::Eds),
            ),
            sent(
                type_url::CLUSTER,
                "PassthroughCluster",
                &cluster("PassthroughCluster", DiscoveryType::OriginalDst),
            ),
            sent(
                type_url::ENDPOINT,
                "outbound|80|v1|httpbin.org",
                &assignment(
                    "outbound|80|v1|httpbin.org",
                    vec![endpoint("10.0.0.7", 8080)],
                ),
            ),
            sent(type_url::LISTENER, "0.0.0.0_443", &listener_443),
            sent(type_url::LISTENER, "0.0.0.0_80", &listener_80),
            sent(type_url::ROUTE, "80", &route_80),
        ],
        ..Default::default()
    }
}

fn parse(args: &[&str]) -> Kind {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        kind: Kind,
    }
    let mut all = vec!["proxy-config"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["sleep.default", "--plaintext"]);
    Cli::try_parse_from(all).expect("parses").kind
}

#[test]
fn clusters_split_istio_names_into_fqdn_port_subset_direction() {
    let table = render(&sidecar(), &parse(&["clusters"])).expect("renders");
    assert_eq!(
        cells(&table),
        [
            vec![
                "SERVICE FQDN",
                "PORT",
                "SUBSET",
                "DIRECTION",
                "TYPE",
                "DESTINATION RULE"
            ],
            vec!["PassthroughCluster", "-", "-", "-", "ORIGINAL_DST"],
            vec!["edition.cnn.com", "443", "-", "outbound", "STRICT_DNS"],
            vec!["httpbin.org", "80", "v1", "outbound", "EDS"],
        ]
    );
    let filtered = render(
        &sidecar(),
        &parse(&["clusters", "--fqdn", "cnn.com", "--port", "443"]),
    )
    .expect("renders");
    assert_eq!(cells(&filtered).len(), 2, "{filtered}");
    let subset = render(
        &sidecar(),
        &parse(&["clusters", "--subset", "v1", "--direction", "outbound"]),
    )
    .expect("renders");
    assert!(
        subset.contains("httpbin.org") && !subset.contains("cnn"),
        "{subset}"
    );
    let inbound =
        render(&sidecar(), &parse(&["clusters", "--direction", "inbound"])).expect("renders");
    assert_eq!(cells(&inbound).len(), 1, "{inbound}");
}

#[test]
fn listeners_show_each_filter_chain_match_and_destination() {
    let table = render(&sidecar(), &parse(&["listeners"])).expect("renders");
    assert_eq!(
        cells(&table),
        [
            vec!["ADDRESSES", "PORT", "MATCH", "DESTINATION"],
            vec!["0.0.0.0", "80", "ALL", "Route: 80"],
            vec!["0.0.0.0", "443", "ALL", "PassthroughCluster"],
            vec![
                "0.0.0.0",
                "443",
                "SNI: edition.cnn.com; Trans: tls",
                "Cluster: outbound|443||edition.cnn.com"
            ],
        ]
    );
    let http = render(&sidecar(), &parse(&["listeners", "--type", "http"])).expect("renders");
    assert_eq!(cells(&http).len(), 2, "{http}");
    let port = render(
        &sidecar(),
        &parse(&["listeners", "--port", "443", "--address", "0.0.0.0"]),
    )
    .expect("renders");
    assert_eq!(cells(&port).len(), 3, "{port}");
}

#[test]
fn routes_show_each_virtual_host_route_and_its_virtual_service() {
    let table = render(&sidecar(), &parse(&["routes"])).expect("renders");
    assert_eq!(
        cells(&table),
        [
            vec!["NAME", "VHOST NAME", "DOMAINS", "MATCH", "VIRTUAL SERVICE"],
            vec![
                "80",
                "edition.cnn.com:80",
                "edition.cnn.com",
                "/*",
                "cnn.default"
            ],
        ]
    );
    let none = render(&sidecar(), &parse(&["routes", "--name", "8080"])).expect("renders");
    assert_eq!(cells(&none).len(), 1, "{none}");
}

#[test]
fn endpoints_come_from_eds_and_from_the_clusters_own_assignments() {
    let table = render(&sidecar(), &parse(&["endpoints"])).expect("renders");
    assert_eq!(
        cells(&table),
        [
            vec!["ENDPOINT", "STATUS", "LOCALITY", "CLUSTER"],
            vec![
                "edition.cnn.com:443",
                "HEALTHY",
                "outbound|443||edition.cnn.com"
            ],
            vec!["10.0.0.7:8080", "HEALTHY", "outbound|80|v1|httpbin.org"],
        ]
    );
    let by_cluster = render(
        &sidecar(),
        &parse(&["endpoints", "--cluster", "outbound|443||edition.cnn.com"]),
    )
    .expect("renders");
    assert_eq!(cells(&by_cluster).len(), 2, "{by_cluster}");
    let by_port = render(
        &sidecar(),
        &parse(&["endpoints", "--port", "8080", "--address", "10.0.0.7"]),
    )
    .expect("renders");
    assert_eq!(cells(&by_port).len(), 2, "{by_port}");
}

#[test]
fn json_and_yaml_are_the_filtered_resources() {
    let json = render(
        &sidecar(),
        &parse(&["clusters", "--fqdn", "httpbin.org", "-o", "json"]),
    )
    .expect("renders");
    let parsed: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(parsed.as_array().map(Vec::len), Some(1), "{json}");
    assert_eq!(parsed[0]["name"], "outbound|80|v1|httpbin.org");
    assert_eq!(parsed[0]["type"], "EDS");
    let yaml = render(
        &sidecar(),
        &parse(&["listeners", "--port", "80", "-o", "yaml"]),
    )
    .expect("renders");
    let parsed: serde_json::Value = serde_yaml::from_str(&yaml).expect("YAML");
    assert_eq!(parsed[0]["name"], "0.0.0.0_80", "{yaml}");
}

#[test]
fn a_resource_that_does_not_decode_is_an_error_naming_it() {
    let mut config = sidecar();
    config.generic_xds_configs[0].xds_config = Some(proto::wkt::Any {
        type_url: type_url::CLUSTER.to_string(),
        value: vec![0xff, 0xff],
    });
    let error = render(&config, &parse(&["clusters"])).expect_err("fails");
    assert!(
        error
            .to_string()
            .starts_with("outbound|443||edition.cnn.com: "),
        "{error}"
    );
}
