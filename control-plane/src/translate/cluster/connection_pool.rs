//! A DestinationRule's `connectionPool` on a cluster, as istiod applies it:
//! circuit breaker thresholds, the connect timeout, TCP keepalive and the
//! upstream HTTP protocol options (idle timeout, requests and duration per
//! connection, HTTP/2 streams, `h2UpgradePolicy`, `useClientProtocol`).

use proto::pb::envoy::config::cluster::v3::{
    CircuitBreakers, Cluster, UpstreamConnectionOptions, circuit_breakers::Thresholds,
};
use proto::pb::envoy::config::core::v3::{
    Http1ProtocolOptions, Http2ProtocolOptions, HttpProtocolOptions as CommonOptions,
    TcpKeepalive as EnvoyTcpKeepalive, UpstreamHttpProtocolOptions,
};
use proto::pb::envoy::extensions::upstreams::http::v3::{
    HttpProtocolOptions,
    http_protocol_options::{
        ExplicitHttpConfig, UpstreamProtocolOptions, UseDownstreamHttpConfig,
        explicit_http_config::ProtocolConfig,
    },
};

use crate::config::model::{ConnectionPoolSettings, H2UpgradePolicy, TcpKeepalive};
use crate::translate::filters;

/// Istio's default connect timeout (MeshConfig `connectTimeout`).
pub const DEFAULT_CONNECT_TIMEOUT_SECS: i64 = 10;

/// The cluster's connect timeout: `tcp.connectTimeout`, else Istio's default.
pub fn connect_timeout(pool: Option<&ConnectionPoolSettings>) -> proto::wkt::Duration {
    pool.and_then(|p| p.tcp.as_ref())
        .and_then(|tcp| tcp.connect_timeout)
        .map_or(filters::seconds(DEFAULT_CONNECT_TIMEOUT_SECS), |d| {
            filters::duration(d.0)
        })
}

/// Istio's thresholds: effectively unlimited unless the rule sets them (a
/// zero, which Istio cannot tell from unset, keeps the default).
pub fn circuit_breakers(pool: Option<&ConnectionPoolSettings>) -> CircuitBreakers {
    let tcp = pool.and_then(|p| p.tcp.as_ref());
    let http = pool.and_then(|p| p.http.as_ref());
    let limit = |value: Option<u32>| {
        Some(filters::u32_value(
            value.filter(|v| *v > 0).unwrap_or(u32::MAX),
        ))
    };
    CircuitBreakers {
        thresholds: vec![Thresholds {
            max_connections: limit(tcp.and_then(|t| t.max_connections)),
            max_pending_requests: limit(http.and_then(|h| h.http1_max_pending_requests)),
            max_requests: limit(http.and_then(|h| h.http2_max_requests)),
            max_retries: limit(http.and_then(|h| h.max_retries)),
            track_remaining: true,
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// `tcp.tcpKeepalive` as the upstream socket's keepalive: SO_KEEPALIVE
/// with the OS defaults for what it leaves out; times in whole seconds.
pub fn upstream_connection_options(
    pool: Option<&ConnectionPoolSettings>,
) -> Option<UpstreamConnectionOptions> {
    let keepalive: &TcpKeepalive = pool?.tcp.as_ref()?.tcp_keepalive.as_ref()?;
    let seconds = |d: crate::config::duration::Duration| {
        filters::u32_value(u32::try_from(d.0.as_secs()).unwrap_or(u32::MAX))
    };
    Some(UpstreamConnectionOptions {
        tcp_keepalive: Some(EnvoyTcpKeepalive {
            keepalive_probes: keepalive.probes.filter(|p| *p > 0).map(filters::u32_value),
            keepalive_time: keepalive.time.map(seconds),
            keepalive_interval: keepalive.interval.map(seconds),
        }),
        ..Default::default()
    })
}

/// The cluster's `HttpProtocolOptions`, in istiod's order: HTTP/2 for a
/// port that speaks it; the pool's common options (`http.idleTimeout`,
/// else `tcp.idleTimeout`; `maxRequestsPerConnection`;
/// `tcp.maxConnectionDuration`; `maxConcurrentStreams` on an HTTP/2
/// cluster); `useClientProtocol` speaks the downstream's protocol;
/// `h2UpgradePolicy: UPGRADE` makes it HTTP/2. Options without a protocol
/// are HTTP/1.1; `upstream` (the TLS origination's `auto_sni`) is set as
/// given. `None` when nothing is set.
pub fn http_protocol_options(
    http2_port: bool,
    pool: Option<&ConnectionPoolSettings>,
    upstream: Option<UpstreamHttpProtocolOptions>,
) -> Option<HttpProtocolOptions> {
    let http = pool.and_then(|p| p.http.as_ref());
    let tcp = pool.and_then(|p| p.tcp.as_ref());
    let mut options = http2_port.then(|| HttpProtocolOptions {
        upstream_protocol_options: Some(explicit(ProtocolConfig::Http2ProtocolOptions(
            Http2ProtocolOptions::default(),
        ))),
        ..Default::default()
    });

    let idle_timeout = http
        .and_then(|h| h.idle_timeout)
        .or_else(|| tcp.and_then(|t| t.idle_timeout))
        .map(|d| filters::duration(d.0));
    let max_requests = http
        .and_then(|h| h.max_requests_per_connection)
        .filter(|n| *n > 0)
        .map(filters::u32_value);
    let max_duration = tcp
        .and_then(|t| t.max_connection_duration)
        .map(|d| filters::duration(d.0));
    let max_streams = http
        .and_then(|h| h.max_concurrent_streams)
        .filter(|n| *n > 0);
    if idle_timeout.is_some()
        || max_requests.is_some()
        || max_duration.is_some()
        || max_streams.is_some()
    {
        let options = options.get_or_insert_with(Default::default);
        let common = options
            .common_http_protocol_options
            .get_or_insert_with(CommonOptions::default);
        if idle_timeout.is_some() {
            common.idle_timeout = idle_timeout;
        }
        if max_requests.is_some() {
            common.max_requests_per_connection = max_requests;
        }
        if max_duration.is_some() {
            common.max_connection_duration = max_duration;
        }
        if let (Some(streams), Some(UpstreamProtocolOptions::ExplicitHttpConfig(explicit))) =
            (max_streams, options.upstream_protocol_options.as_mut())
            && let Some(ProtocolConfig::Http2ProtocolOptions(h2)) = &mut explicit.protocol_config
        {
            h2.max_concurrent_streams = Some(filters::u32_value(streams));
        }
    }

    if http.and_then(|h| h.use_client_protocol) == Some(true) {
        let options = options.get_or_insert_with(Default::default);
        let http1 = match &options.upstream_protocol_options {
            Some(UpstreamProtocolOptions::ExplicitHttpConfig(ExplicitHttpConfig {
                protocol_config: Some(ProtocolConfig::HttpProtocolOptions(http1)),
            })) => http1.clone(),
            _ => Http1ProtocolOptions::default(),
        };
        options.upstream_protocol_options = Some(
            UpstreamProtocolOptions::UseDownstreamProtocolConfig(UseDownstreamHttpConfig {
                http_protocol_options: Some(http1),
                http2_protocol_options: Some(Http2ProtocolOptions::default()),
                ..Default::default()
            }),
        );
    }

    if http.and_then(|h| h.h2_upgrade_policy) == Some(H2UpgradePolicy::Upgrade) {
        let options = options.get_or_insert_with(Default::default);
        options.upstream_protocol_options = Some(explicit(ProtocolConfig::Http2ProtocolOptions(
            Http2ProtocolOptions::default(),
        )));
    }

    if upstream.is_some() {
        options
            .get_or_insert_with(Default::default)
            .upstream_http_protocol_options = upstream;
    }

    let mut options = options?;
    if options.upstream_protocol_options.is_none() {
        options.upstream_protocol_options = Some(explicit(ProtocolConfig::HttpProtocolOptions(
            Http1ProtocolOptions::default(),
        )));
    }
    Some(options)
}

fn explicit(config: ProtocolConfig) -> UpstreamProtocolOptions {
    UpstreamProtocolOptions::ExplicitHttpConfig(ExplicitHttpConfig {
        protocol_config: Some(config),
    })
}

/// Applies the pool to `cluster`: connect timeout, thresholds, keepalive.
pub fn apply(cluster: &mut Cluster, pool: Option<&ConnectionPoolSettings>) {
    cluster.connect_timeout = Some(connect_timeout(pool));
    cluster.circuit_breakers = Some(circuit_breakers(pool));
    cluster.upstream_connection_options = upstream_connection_options(pool);
}
