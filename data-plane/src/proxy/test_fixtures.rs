//! Fixtures the proxy's tests share: a bare context, one with Istio's
//! fall-through clusters, a fall-through-only `virtualOutbound`, a
//! connection dispatched as if captured, and a bare route and one-host
//! route configuration.

use std::net::SocketAddr;
use std::sync::Arc;

use proto::pb::envoy::config::cluster::v3::{Cluster, cluster};
use shared::egress::EgressPolicy;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::TcpListener;

use crate::access_log_service::AccessLogQueue;
use crate::model::listener::{ChainAction, FilterChain, Listener, TcpProxy};
use crate::model::route::{
    ClusterTarget, PathMatch, Route, RouteAction, RouteConfig, RouteMatch, VirtualHost,
};
use crate::proxy::ProxyContext;
use crate::proxy::outbound::{Destination, dispatch};
use crate::proxy::stats::Stats;
use crate::store::ConfigStore;
use crate::upstream::{DnsConfig, Upstreams};

/// A context with an empty config, a resolver nobody answers on and fresh
/// stats, reporting gRPC access log entries to `access_log_service`.
pub(crate) fn empty_context(access_log_service: Option<AccessLogQueue>) -> Arc<ProxyContext> {
    Arc::new(ProxyContext {
        store: Arc::new(ConfigStore::new(Box::new(|_| Ok(())))),
        upstreams: Arc::new(Upstreams::new(DnsConfig {
            server: Some("127.0.0.1:9".parse().unwrap()),
        })),
        stats: Arc::new(Stats::default()),
        activity: None,
        access_log_service,
    })
}

/// A context whose config has Istio's BlackHoleCluster and
/// PassthroughCluster.
pub(crate) fn fall_through_context() -> Arc<ProxyContext> {
    let upstreams = Arc::new(Upstreams::new(DnsConfig {
        server: Some("127.0.0.1:9".parse().unwrap()),
    }));
    let hook_upstreams = upstreams.clone();
    let store = Arc::new(ConfigStore::new(Box::new(move |config| {
        hook_upstreams.update(config);
        Ok(())
    })));
    let fall_through = |name: &str, kind: cluster::DiscoveryType| {
        proto::pack(
            shared::type_url::CLUSTER,
            &Cluster {
                name: name.into(),
                cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(kind as i32)),
                connect_timeout: Some(proto::wkt::Duration {
                    seconds: 1,
                    nanos: 0,
                }),
                lb_policy: cluster::LbPolicy::ClusterProvided as i32,
                ..Default::default()
            },
        )
    };
    store
        .update(
            shared::type_url::CLUSTER,
            &[
                fall_through("BlackHoleCluster", cluster::DiscoveryType::Static),
                fall_through("PassthroughCluster", cluster::DiscoveryType::OriginalDst),
            ],
        )
        .unwrap();
    Arc::new(ProxyContext {
        store,
        upstreams,
        stats: Arc::new(Stats::default()),
        activity: None,
        access_log_service: None,
    })
}

/// Accepts one connection as if it had been captured on its way to
/// `original_dst`, and dispatches it on `listener`.
pub(crate) async fn capture_once(
    listener: Listener,
    original_dst: SocketAddr,
    context: Arc<ProxyContext>,
) -> SocketAddr {
    let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let (stream, remote) = socket.accept().await.unwrap();
        let destination = Destination {
            port: original_dst.port(),
            original_dst: Some(original_dst),
            host: None,
        };
        let listener = Arc::new(listener);
        dispatch(stream, remote, Some(addr), &listener, destination, context).await;
    });
    addr
}

/// A route `name` matching `path` (case-sensitive, nothing else) to
/// `action`, with no decorator, header edits, egress mark or filter config.
pub(crate) fn route(name: &str, path: PathMatch, action: RouteAction) -> Route {
    Route {
        name: name.into(),
        matcher: RouteMatch {
            path,
            case_sensitive: true,
            headers: Vec::new(),
            query: Vec::new(),
        },
        action,
        decorator: None,
        request_headers_to_add: Vec::new(),
        request_headers_to_remove: Vec::new(),
        response_headers_to_add: Vec::new(),
        response_headers_to_remove: Vec::new(),
        egress_policy: None,
        filter_configs: Default::default(),
    }
}

/// Route configuration `80` with one virtual host `host` for `domains`,
/// holding `routes` (no `x-envoy-attempt-count`, no TLS required).
pub(crate) fn route_config(host: &str, domains: &[&str], routes: Vec<Route>) -> RouteConfig {
    RouteConfig {
        name: "80".into(),
        virtual_hosts: vec![VirtualHost {
            name: host.into(),
            domains: domains.iter().map(|d| d.to_string()).collect(),
            routes,
            include_attempt_count: false,
            require_tls: false,
        }],
    }
}

/// `virtualOutbound` with only its fall-through chain to `cluster`, marked
/// `mark`, logging connections to the agent's log when `access_log`.
pub(crate) fn fall_through_outbound(
    cluster: &str,
    mark: Option<EgressPolicy>,
    access_log: bool,
) -> Listener {
    Listener {
        name: "virtualOutbound".into(),
        address: "0.0.0.0:15001".parse().unwrap(),
        bind_to_port: true,
        use_original_dst: true,
        inspect_tls: false,
        filters_timeout: Default::default(),
        filter_chains: Vec::new(),
        default_chain: Some(FilterChain {
            name: "PassthroughFilterChain".into(),
            destination_port: None,
            destination_prefixes: Vec::new(),
            tls: None,
            server_names: Vec::new(),
            action: ChainAction::Tcp(TcpProxy {
                stat_prefix: cluster.into(),
                target: ClusterTarget::Cluster(cluster.into()),
                file_access_logs: if access_log {
                    crate::proxy::access_log::istio_stdout()
                } else {
                    Arc::new([])
                },
                grpc_access_log: None,
                idle_timeout: None,
                max_downstream_connection_duration: None,
                hash_source_ip: false,
            }),
            egress_policy: mark,
        }),
    }
}

/// Reads the proxy's whole answer on `client` and asserts it is
/// REGISTRY_ONLY's 502 whose body names `host`; returns it.
pub(crate) async fn read_blocked_reply(
    client: &mut (impl AsyncRead + Unpin),
    host: &str,
) -> String {
    let mut response = String::new();
    client.read_to_string(&mut response).await.unwrap();
    assert!(
        response.starts_with("HTTP/1.1 502 Bad Gateway\r\n"),
        "{response}"
    );
    assert!(
        response.ends_with(&format!(
            "\r\n\r\nno ServiceEntry allows {host} (REGISTRY_ONLY)\n"
        )),
        "{response}"
    );
    response
}

/// The context's stats, rendered, asserted to count one blocked HTTP
/// request to `destination`: on BlackHoleCluster, 502, marked blocked.
pub(crate) fn assert_one_blocked_request(context: &ProxyContext, destination: &str) -> String {
    let mut out = String::new();
    context.stats.render(&mut out);
    assert!(
        out.contains(&format!("destination_service=\"{destination}\",destination_service_name=\"BlackHoleCluster\",request_protocol=\"http\",response_code=\"502\",grpc_response_status=\"\",response_flags=\"-\",egress_policy=\"blocked\"}} 1\n")),
        "{out}"
    );
    out
}
