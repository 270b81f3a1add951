//! `proxy-config listeners`: one row per filter chain, with the listener's
//! addresses and port, what the chain matches and where it sends, as
//! istioctl prints it.

use clap::Args;
use prost::Message;
use proto::pb::envoy::config::core::v3::{Address, address, socket_address};
use proto::pb::envoy::config::listener::v3::{
    Filter, FilterChain, FilterChainMatch, Listener, filter,
};
use proto::pb::envoy::config::route::v3::{
    RouteConfiguration, RouteMatch, VirtualHost, route, route_action, route_match,
};
use proto::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, http_connection_manager,
};
use proto::pb::envoy::extensions::filters::network::tcp_proxy::v3::{TcpProxy, tcp_proxy};

use super::Sent;

pub const HEADER: [&str; 4] = ["ADDRESSES", "PORT", "MATCH", "DESTINATION"];

const HTTP_CONNECTION_MANAGER: &str =
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
const TCP_PROXY: &str = "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy";

/// The ALPN lists Istio sets, named as istioctl names them.
const ALPN_NAMES: [(&str, &[&str]); 4] = [
    (
        "App: HTTP TLS",
        &[
            "http/1.0",
            "http/1.1",
            "h2c",
            "istio-http/1.0",
            "istio-http/1.1",
            "istio-h2",
        ],
    ),
    (
        "App: Istio HTTP Plain",
        &["istio", "istio-http/1.0", "istio-http/1.1", "istio-h2"],
    ),
    ("App: TCP TLS", &["istio-peer-exchange", "istio"]),
    ("App: HTTP", &["http/1.0", "http/1.1", "h2c"]),
];

/// istioctl's listener filters.
#[derive(Args, Default)]
pub struct ListenerFilter {
    /// Only listeners on this address.
    #[arg(long)]
    pub address: Option<String>,
    /// Only listeners on this port.
    #[arg(long)]
    pub port: Option<u32>,
    /// Only listeners of this type: HTTP, TCP or HTTP+TCP.
    #[arg(long = "type")]
    pub kind: Option<String>,
}

impl ListenerFilter {
    pub fn keep(&self, listener: &Listener) -> bool {
        self.address.as_ref().is_none_or(|a| {
            addresses(listener)
                .iter()
                .any(|l| l.eq_ignore_ascii_case(a))
        }) && self.port.is_none_or(|p| port(listener) == p)
            && self
                .kind
                .as_ref()
                .is_none_or(|k| listener_type(listener).eq_ignore_ascii_case(k))
    }
}

/// The rows: listeners by port then address, each chain's row by
/// destination (descending), as istioctl orders them.
pub fn rows(listeners: &[Sent<Listener>]) -> Vec<Vec<String>> {
    let mut sorted: Vec<&Listener> = listeners.iter().map(|s| &s.message).collect();
    sorted.sort_by_key(|l| (port(l), addresses(l), listener_type(l)));
    let mut rows = Vec::new();
    for listener in sorted {
        let mut chains: Vec<(String, String)> = chains(listener)
            .map(|chain| {
                (
                    describe_match(chain.filter_chain_match.as_ref()),
                    destination(&chain.filters),
                )
            })
            .collect();
        chains.sort_by(|a, b| b.1.cmp(&a.1));
        for (matched, destination) in chains {
            rows.push(vec![
                addresses(listener).join(","),
                port(listener).to_string(),
                matched,
                destination,
            ]);
        }
    }
    rows
}

fn chains(listener: &Listener) -> impl Iterator<Item = &FilterChain> {
    listener
        .filter_chains
        .iter()
        .chain(listener.default_filter_chain.as_ref())
}

fn socket(address: Option<&Address>) -> Option<(&str, u32)> {
    match address?.address.as_ref()? {
        address::Address::SocketAddress(s) => Some((
            s.address.as_str(),
            match s.port_specifier {
                Some(socket_address::PortSpecifier::PortValue(port)) => port,
                _ => 0,
            },
        )),
        _ => None,
    }
}

fn addresses(listener: &Listener) -> Vec<String> {
    std::iter::once(listener.address.as_ref())
        .chain(
            listener
                .additional_addresses
                .iter()
                .map(|a| a.address.as_ref()),
        )
        .filter_map(socket)
        .map(|(address, _)| address.to_string())
        .collect()
}

fn port(listener: &Listener) -> u32 {
    socket(listener.address.as_ref()).map_or(0, |(_, port)| port)
}

/// HTTP, TCP, HTTP+TCP or UNKNOWN, by the chains' filters (a TCP proxy to
/// the BlackHoleCluster does not count).
fn listener_type(listener: &Listener) -> &'static str {
    let (mut http, mut tcp) = (false, false);
    for filter in chains(listener).flat_map(|c| &c.filters) {
        match decoded(filter) {
            Some(Decoded::Http(_)) => http = true,
            Some(Decoded::Tcp(proxy))
                if tcp_destination(&proxy) != shared::naming::BLACKHOLE_CLUSTER =>
            {
                tcp = true;
            }
            _ => {}
        }
    }
    match (http, tcp) {
        (true, false) => "HTTP",
        (true, true) => "HTTP+TCP",
        (false, true) => "TCP",
        (false, false) => "UNKNOWN",
    }
}

/// What the chain matches: SNI, transport, ALPN, destination prefix and
/// port; `ALL` when nothing.
fn describe_match(matched: Option<&FilterChainMatch>) -> String {
    let default = FilterChainMatch::default();
    let matched = matched.unwrap_or(&default);
    let mut parts = Vec::new();
    if !matched.server_names.is_empty() {
        parts.push(format!("SNI: {}", matched.server_names.join(",")));
    }
    if !matched.transport_protocol.is_empty() {
        parts.push(format!("Trans: {}", matched.transport_protocol));
    }
    if !matched.application_protocols.is_empty() {
        let named = ALPN_NAMES
            .iter()
            .find(|(_, alpns)| matched.application_protocols == *alpns)
            .map(|(name, _)| name.to_string());
        parts.push(
            named.unwrap_or_else(|| format!("App: {}", matched.application_protocols.join(","))),
        );
    }
    let port = matched
        .destination_port
        .map(|p| format!(":{}", p.value))
        .unwrap_or_default();
    if !matched.prefix_ranges.is_empty() {
        let prefixes: Vec<String> = matched
            .prefix_ranges
            .iter()
            .map(|p| {
                format!(
                    "{}/{}",
                    p.address_prefix,
                    p.prefix_len.unwrap_or_default().value
                )
            })
            .collect();
        parts.push(format!("Addr: {}{port}", prefixes.join(",")));
    } else if !port.is_empty() {
        parts.push(format!("Addr: *{port}"));
    }
    if parts.is_empty() {
        "ALL".to_string()
    } else {
        parts.join("; ")
    }
}

enum Decoded {
    Http(Box<HttpConnectionManager>),
    Tcp(Box<TcpProxy>),
}

fn decoded(filter: &Filter) -> Option<Decoded> {
    let Some(filter::ConfigType::TypedConfig(any)) = &filter.config_type else {
        return None;
    };
    match shared::type_url::message_name(&any.type_url) {
        HTTP_CONNECTION_MANAGER => HttpConnectionManager::decode(any.value.as_slice())
            .ok()
            .map(|manager| Decoded::Http(Box::new(manager))),
        TCP_PROXY => TcpProxy::decode(any.value.as_slice())
            .ok()
            .map(|proxy| Decoded::Tcp(Box::new(proxy))),
        _ => None,
    }
}

/// Where the chain sends: `Route: <name>`, an inline route's summary, or
/// `Cluster: <name>` (`PassthroughCluster` and the like bare).
fn destination(filters: &[Filter]) -> String {
    for filter in filters {
        match decoded(filter) {
            Some(Decoded::Http(manager)) => {
                return match manager.route_specifier {
                    Some(http_connection_manager::RouteSpecifier::Rds(rds)) => {
                        format!("Route: {}", rds.route_config_name)
                    }
                    Some(http_connection_manager::RouteSpecifier::RouteConfig(config)) => {
                        describe_route_config(&config)
                    }
                    _ => "HTTP".to_string(),
                };
            }
            Some(Decoded::Tcp(proxy)) => return cluster_label(&tcp_destination(&proxy)),
            None => {}
        }
    }
    "Non-HTTP/Non-TCP".to_string()
}

fn tcp_destination(proxy: &TcpProxy) -> String {
    match &proxy.cluster_specifier {
        Some(tcp_proxy::ClusterSpecifier::Cluster(cluster)) => cluster.clone(),
        Some(tcp_proxy::ClusterSpecifier::WeightedClusters(weighted)) => weighted
            .clusters
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(","),
        None => String::new(),
    }
}

fn cluster_label(cluster: &str) -> String {
    if cluster.contains("Cluster") {
        cluster.to_string()
    } else {
        format!("Cluster: {cluster}")
    }
}

/// An inline route configuration: the cluster when it sends everything to
/// one, else `Inline Route: ` and each virtual host's domains and matches.
fn describe_route_config(config: &RouteConfiguration) -> String {
    if let [host] = config.virtual_hosts.as_slice()
        && host.domains == ["*"]
        && let [only] = host.routes.as_slice()
        && matches!(only.r#match.as_ref().and_then(|m| m.path_specifier.as_ref()), Some(route_match::PathSpecifier::Prefix(p)) if p == "/")
        && let Some(route::Action::Route(action)) = &only.action
        && let Some(route_action::ClusterSpecifier::Cluster(cluster)) = &action.cluster_specifier
    {
        return cluster_label(cluster);
    }
    let hosts: Vec<String> = config
        .virtual_hosts
        .iter()
        .map(|host| {
            let routes = describe_routes(host);
            if host.domains == ["*"] {
                routes
            } else {
                format!("{} {routes}", host.domains.join("/"))
            }
        })
        .collect();
    format!("Inline Route: {}", hosts.join("; "))
}

fn describe_routes(host: &VirtualHost) -> String {
    host.routes
        .iter()
        .map(|r| describe_path(r.r#match.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A route's path match as istioctl shows it: `/prefix*`, `/exact`, or
/// `regex <pattern>`.
pub fn describe_path(matched: Option<&RouteMatch>) -> String {
    match matched.and_then(|m| m.path_specifier.as_ref()) {
        Some(route_match::PathSpecifier::Prefix(prefix)) => format!("{prefix}*"),
        Some(route_match::PathSpecifier::Path(path)) => path.clone(),
        Some(route_match::PathSpecifier::SafeRegex(regex)) => format!("regex {}", regex.regex),
        Some(route_match::PathSpecifier::PathSeparatedPrefix(prefix)) => format!("{prefix}*"),
        _ => String::new(),
    }
}
