//! A TCP proxy's timeouts: Envoy's one-hour idle timeout unless the proxy
//! sets one (`0s` disables it), and `max_downstream_connection_duration`.

use std::time::Duration as StdDuration;

use proto::pb::envoy::config::listener::v3::{Filter, FilterChain, Listener, filter};
use proto::pb::envoy::extensions::filters::network::tcp_proxy::v3::{TcpProxy, tcp_proxy};
use proto::wkt::Duration;

use super::{assert_rejected, pack, socket_address};
use crate::model::convert::listener::TCP_PROXY;
use crate::model::convert::tcp_timeouts::DEFAULT_IDLE_TIMEOUT;
use crate::model::listener::ChainAction;
use crate::model::secret::SecretSources;
use crate::model::{Error, listener_from_proto};

fn listener(tcp: &TcpProxy) -> Listener {
    Listener {
        name: "0.0.0.0_3306".into(),
        address: Some(socket_address("0.0.0.0", 3306)),
        filter_chains: vec![FilterChain {
            filters: vec![Filter {
                name: "envoy.filters.network.tcp_proxy".into(),
                config_type: Some(filter::ConfigType::TypedConfig(pack(TCP_PROXY, tcp))),
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn tcp_proxy() -> TcpProxy {
    TcpProxy {
        stat_prefix: "outbound|3306||db.example.com".into(),
        cluster_specifier: Some(tcp_proxy::ClusterSpecifier::Cluster(
            "outbound|3306||db.example.com".into(),
        )),
        ..Default::default()
    }
}

fn seconds(seconds: i64, nanos: i32) -> Option<Duration> {
    Some(Duration { seconds, nanos })
}

/// The idle timeout and maximum duration `tcp` converts to.
fn timeouts(tcp: &TcpProxy) -> Result<(Option<StdDuration>, Option<StdDuration>), Error> {
    let converted = listener_from_proto(&listener(tcp), &SecretSources::default())?;
    let ChainAction::Tcp(proxy) = &converted.filter_chains[0].action else {
        panic!("expected a TCP proxy");
    };
    Ok((proxy.idle_timeout, proxy.max_downstream_connection_duration))
}

#[test]
fn without_an_idle_timeout_envoy_closes_idle_connections_after_one_hour() {
    assert_eq!(DEFAULT_IDLE_TIMEOUT, StdDuration::from_secs(3600));
    assert_eq!(
        timeouts(&tcp_proxy()).unwrap(),
        (Some(StdDuration::from_secs(3600)), None)
    );
}

#[test]
fn an_idle_timeout_is_kept_and_zero_disables_it() {
    let mut tcp = tcp_proxy();
    tcp.idle_timeout = seconds(30, 500_000_000);
    assert_eq!(
        timeouts(&tcp).unwrap().0,
        Some(StdDuration::from_millis(30_500))
    );
    tcp.idle_timeout = seconds(0, 0);
    assert_eq!(timeouts(&tcp).unwrap().0, None, "0s disables it");
}

#[test]
fn a_max_downstream_connection_duration_is_kept() {
    let mut tcp = tcp_proxy();
    tcp.max_downstream_connection_duration = seconds(90, 0);
    assert_eq!(timeouts(&tcp).unwrap().1, Some(StdDuration::from_secs(90)));
    tcp.max_downstream_connection_duration = seconds(0, 1_000_000);
    assert_eq!(timeouts(&tcp).unwrap().1, Some(StdDuration::from_millis(1)));
}

#[test]
fn a_max_downstream_connection_duration_under_1ms_is_rejected_as_envoy_rejects_it() {
    let mut tcp = tcp_proxy();
    tcp.max_downstream_connection_duration = seconds(0, 0);
    assert_rejected(
        timeouts(&tcp),
        "listener",
        "0.0.0.0_3306",
        "filter_chains[0].tcp_proxy.max_downstream_connection_duration",
        "0ns is shorter than 1ms, the least Envoy accepts",
    );
}
