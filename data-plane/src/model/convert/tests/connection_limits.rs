//! Envoy's connection limits in a listener: the agent limits connections
//! with its own flags, so the connection limit filter and a listener that
//! opts out of the global limit are refused, never ignored.

use proto::pb::envoy::config::listener::v3::{Filter, FilterChain, Listener, filter};
use proto::pb::envoy::extensions::filters::network::tcp_proxy::v3::{TcpProxy, tcp_proxy};

use super::{assert_rejected, pack, socket_address};
use crate::model::convert::listener::TCP_PROXY;
use crate::model::listener_from_proto;
use crate::model::secret::SecretSources;

const CONNECTION_LIMIT: &str =
    "type.googleapis.com/envoy.extensions.filters.network.connection_limit.v3.ConnectionLimit";

fn filter(name: &str, type_url: &str) -> Filter {
    Filter {
        name: name.into(),
        config_type: Some(filter::ConfigType::TypedConfig(pack(
            type_url,
            &proto::wkt::Empty {},
        ))),
    }
}

fn tcp_proxy() -> Filter {
    let tcp = TcpProxy {
        stat_prefix: "a".into(),
        cluster_specifier: Some(tcp_proxy::ClusterSpecifier::Cluster("a".into())),
        ..Default::default()
    };
    Filter {
        name: "envoy.filters.network.tcp_proxy".into(),
        config_type: Some(filter::ConfigType::TypedConfig(pack(TCP_PROXY, &tcp))),
    }
}

/// A listener on 0.0.0.0:443 whose one chain runs `filters`.
fn listener(filters: Vec<Filter>) -> Listener {
    Listener {
        name: "0.0.0.0_443".into(),
        address: Some(socket_address("0.0.0.0", 443)),
        filter_chains: vec![FilterChain {
            name: "tcp".into(),
            filters,
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[test]
fn the_connection_limit_filter_is_rejected_by_name_or_type() {
    let reason = "the connection_limit filter is not supported: limit each listener's \
                  connections with the agent's --listener-connection-limit (Envoy's runtime \
                  envoy.resource_limits.listener.<name>.connection_limit)";
    for limit in [
        filter("envoy.filters.network.connection_limit", CONNECTION_LIMIT),
        filter("limit", CONNECTION_LIMIT),
        filter(
            "envoy.filters.network.connection_limit",
            "type.googleapis.com/udpa.type.v1.TypedStruct",
        ),
    ] {
        assert_rejected(
            listener_from_proto(
                &listener(vec![limit, tcp_proxy()]),
                &SecretSources::default(),
            ),
            "listener",
            "0.0.0.0_443",
            "filter_chains[0].filters[0]",
            reason,
        );
    }
}

#[test]
fn a_listener_ignoring_the_global_limit_is_rejected() {
    let mut l = listener(vec![tcp_proxy()]);
    listener_from_proto(&l, &SecretSources::default()).expect("a plain listener converts");
    l.ignore_global_conn_limit = true;
    assert_rejected(
        listener_from_proto(&l, &SecretSources::default()),
        "listener",
        "0.0.0.0_443",
        "ignore_global_conn_limit",
        "not supported: every listener counts toward the agent's \
         --global-downstream-max-connections",
    );
}
