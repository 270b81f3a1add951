//! Listeners (LDS) → model: the address, listener filters, and each filter
//! chain's match, TLS termination and terminal network filter (HTTP
//! connection manager or TCP proxy).

use std::sync::Arc;

use proto::pb::envoy::config::listener::v3::{
    self as pb_listener, FilterChain as PbFilterChain, FilterChainMatch,
};
use proto::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, http_connection_manager,
};
use proto::pb::envoy::extensions::filters::network::tcp_proxy::v3::{
    TcpProxy as PbTcpProxy, tcp_proxy,
};

use super::access_log::{self, Filter};
use super::egress_policy::egress_policy;
use super::hcm_timeouts::hcm_timeouts;
use super::path_normalization::path_normalization;
use super::server_header::server_header;
use super::tcp_timeouts::tcp_timeouts;
use super::{At, decode, duration, http_filters, route, socket_addr, tls};
use crate::model::Error;
use crate::model::listener::{
    BUFFER_LIMIT_BYTES, ChainAction, CidrRange, FilterChain, FiltersTimeout, HttpManager, Listener,
    TcpProxy,
};
use crate::model::route::{ClusterTarget, WeightedCluster};
use crate::model::secret::SecretSources;

pub(super) const HCM: &str = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
pub(super) const TCP_PROXY: &str =
    "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy";
pub(super) const ROUTER: &str =
    "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router";
pub(super) const TLS_INSPECTOR: &str =
    "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector";
const ORIGINAL_DST: &str =
    "type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst";
const HTTP_INSPECTOR: &str =
    "type.googleapis.com/envoy.extensions.filters.listener.http_inspector.v3.HttpInspector";
const CONNECTION_LIMIT: &str =
    "type.googleapis.com/envoy.extensions.filters.network.connection_limit.v3.ConnectionLimit";

/// A listener from LDS, its TLS resolved against `secrets`.
pub fn listener(l: &pb_listener::Listener, secrets: &SecretSources) -> Result<Listener, Error> {
    let at = At::resource("listener", &l.name);
    if l.ignore_global_conn_limit {
        return Err(at.field("ignore_global_conn_limit").error(
            "not supported: every listener counts toward the agent's --global-downstream-max-connections",
        ));
    }
    if l.drain_type != pb_listener::listener::DrainType::Default as i32 {
        return Err(at.field("drain_type").error(
            "only DEFAULT is supported: the agent drains every listener alike, MODIFY_ONLY's \
             exemption from /healthcheck/fail draining is not honoured",
        ));
    }
    if l.per_connection_buffer_limit_bytes
        .is_some_and(|limit| usize::try_from(limit.value) != Ok(BUFFER_LIMIT_BYTES))
    {
        return Err(at.field("per_connection_buffer_limit_bytes").error(
            "only Envoy's default of 1048576 is supported: the agent keeps up to 1 MiB of a \
             request body for retries",
        ));
    }
    let address = socket_addr(l.address.as_ref(), &at.field("address"))?;
    let inspect_tls = inspects_tls(&l.listener_filters, &at)?;
    let filter_chains = l
        .filter_chains
        .iter()
        .enumerate()
        .map(|(i, c)| filter_chain(c, secrets, &at.field(format!("filter_chains[{i}]"))))
        .collect::<Result<Vec<_>, _>>()?;
    let default_chain = l
        .default_filter_chain
        .as_ref()
        .map(|c| filter_chain(c, secrets, &at.field("default_filter_chain")))
        .transpose()?;
    Ok(Listener {
        name: l.name.as_str().into(),
        address,
        bind_to_port: l.bind_to_port.as_ref().is_none_or(|b| b.value),
        use_original_dst: l.use_original_dst.as_ref().is_some_and(|b| b.value),
        inspect_tls,
        filters_timeout: filters_timeout(l),
        filter_chains,
        default_chain,
    })
}

/// The listener filters' timeout as Envoy reads it: unset is 15 s, zero
/// is none.
fn filters_timeout(l: &pb_listener::Listener) -> FiltersTimeout {
    let timeout = match &l.listener_filters_timeout {
        None => Some(FiltersTimeout::DEFAULT),
        Some(d) => Some(duration(d)).filter(|d| !d.is_zero()),
    };
    FiltersTimeout {
        timeout,
        continue_on_timeout: l.continue_on_listener_filters_timeout,
    }
}

/// Whether the listener filters include the TLS inspector. Original
/// destination and HTTP inspector are what the agent does anyway; any other
/// filter is rejected.
fn inspects_tls(filters: &[pb_listener::ListenerFilter], at: &At<'_>) -> Result<bool, Error> {
    let mut inspect_tls = false;
    for (i, filter) in filters.iter().enumerate() {
        let type_url = match &filter.config_type {
            Some(pb_listener::listener_filter::ConfigType::TypedConfig(any)) => {
                any.type_url.as_str()
            }
            _ => "",
        };
        match (filter.name.as_str(), type_url) {
            (_, TLS_INSPECTOR) | ("envoy.filters.listener.tls_inspector", "") => inspect_tls = true,
            (_, ORIGINAL_DST | HTTP_INSPECTOR)
            | (
                "envoy.filters.listener.original_dst" | "envoy.filters.listener.http_inspector",
                "",
            ) => {}
            (name, type_url) => {
                return Err(at
                    .field(format!("listener_filters[{i}]"))
                    .error(format!("unsupported listener filter {name} ({type_url})")));
            }
        }
    }
    Ok(inspect_tls)
}

fn filter_chain(
    c: &PbFilterChain,
    secrets: &SecretSources,
    at: &At<'_>,
) -> Result<FilterChain, Error> {
    let m = c.filter_chain_match.clone().unwrap_or_default();
    check_match_fields(&m, &at.field("filter_chain_match"))?;
    let tls = tls::downstream_tls(
        c.transport_socket.as_ref(),
        secrets,
        &at.field("transport_socket"),
    )?;
    let destination_port = m
        .destination_port
        .map(|p| {
            u16::try_from(p.value).map_err(|_| {
                at.field("filter_chain_match.destination_port")
                    .error("out of range")
            })
        })
        .transpose()?;
    let destination_prefixes = m
        .prefix_ranges
        .iter()
        .enumerate()
        .map(|(i, range)| {
            cidr_range(
                range,
                &at.field(format!("filter_chain_match.prefix_ranges[{i}]")),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let action = chain_action(c, at)?;
    Ok(FilterChain {
        name: c.name.as_str().into(),
        destination_port,
        destination_prefixes,
        tls,
        server_names: m
            .server_names
            .iter()
            .map(|s| s.to_ascii_lowercase())
            .collect(),
        action,
        egress_policy: egress_policy(c.metadata.as_ref(), &at.field("metadata"))?,
    })
}

/// An address range as Envoy validates it: an IP and a prefix length no
/// longer than the address.
fn cidr_range(
    range: &proto::pb::envoy::config::core::v3::CidrRange,
    at: &At<'_>,
) -> Result<CidrRange, Error> {
    let prefix: std::net::IpAddr = range.address_prefix.parse().map_err(|_| {
        at.field("address_prefix")
            .error(format!("{:?} is not an IP address", range.address_prefix))
    })?;
    let bits = if prefix.is_ipv4() { 32 } else { 128 };
    let len = range.prefix_len.as_ref().map_or(0, |l| l.value);
    let len = u8::try_from(len)
        .ok()
        .filter(|len| u32::from(*len) <= bits)
        .ok_or_else(|| {
            at.field("prefix_len")
                .error(format!("{len} is longer than the address ({bits} bits)"))
        })?;
    Ok(CidrRange { prefix, len })
}

/// Rejects the match fields the agent does not match on.
fn check_match_fields(m: &FilterChainMatch, at: &At<'_>) -> Result<(), Error> {
    let unsupported = [
        ("source_prefix_ranges", !m.source_prefix_ranges.is_empty()),
        (
            "direct_source_prefix_ranges",
            !m.direct_source_prefix_ranges.is_empty(),
        ),
        ("source_ports", !m.source_ports.is_empty()),
        ("application_protocols", !m.application_protocols.is_empty()),
        ("transport_protocol", !m.transport_protocol.is_empty()),
    ];
    match unsupported.iter().find(|(_, set)| *set) {
        Some((field, _)) => Err(at.field(field).error("this match field is not supported")),
        None => Ok(()),
    }
}

/// The chain's one network filter: an HTTP connection manager or a TCP proxy.
fn chain_action(c: &PbFilterChain, at: &At<'_>) -> Result<ChainAction, Error> {
    let Some((last, _)) = c.filters.split_last() else {
        return Err(at.field("filters").error(
            "a filter chain needs a terminal filter (http_connection_manager or tcp_proxy)",
        ));
    };
    if let Some(i) = c.filters.iter().position(is_connection_limit) {
        return Err(at.field(format!("filters[{i}]")).error(
            "the connection_limit filter is not supported: limit each listener's connections with the agent's --listener-connection-limit (Envoy's runtime envoy.resource_limits.listener.<name>.connection_limit)",
        ));
    }
    if c.filters.len() > 1 {
        return Err(at.field("filters").error(format!(
            "only one network filter is supported, got {}",
            c.filters.len()
        )));
    }
    let filter_at = at.field("filters[0]");
    let Some(pb_listener::filter::ConfigType::TypedConfig(any)) = &last.config_type else {
        return Err(filter_at.error("typed_config is required"));
    };
    match any.type_url.as_str() {
        HCM => {
            let hcm: HttpConnectionManager = decode(any, HCM, &filter_at)?;
            Ok(ChainAction::Http(http_manager(
                &hcm,
                &at.field("http_connection_manager"),
            )?))
        }
        TCP_PROXY => {
            let tcp: PbTcpProxy = decode(any, TCP_PROXY, &filter_at)?;
            Ok(ChainAction::Tcp(tcp_proxy_action(
                &tcp,
                &at.field("tcp_proxy"),
            )?))
        }
        other => Err(filter_at.error(format!(
            "unsupported network filter {} ({other})",
            last.name
        ))),
    }
}

/// Envoy's connection limit network filter, by name or type.
fn is_connection_limit(filter: &pb_listener::Filter) -> bool {
    filter.name == "envoy.filters.network.connection_limit"
        || matches!(&filter.config_type, Some(pb_listener::filter::ConfigType::TypedConfig(any)) if any.type_url == CONNECTION_LIMIT)
}

/// An HTTP connection manager: its HTTP filters, routes and loggers.
fn http_manager(hcm: &HttpConnectionManager, at: &At<'_>) -> Result<HttpManager, Error> {
    let http_filters = http_filters::http_filters(&hcm.http_filters, at)?;
    let (route_config_name, inline_routes) = match &hcm.route_specifier {
        Some(http_connection_manager::RouteSpecifier::Rds(rds)) => {
            (rds.route_config_name.as_str().into(), None)
        }
        Some(http_connection_manager::RouteSpecifier::RouteConfig(rc)) => (
            rc.name.as_str().into(),
            Some(Arc::new(route::route_config(rc)?)),
        ),
        _ => {
            return Err(at
                .field("route_specifier")
                .error("rds or route_config is required"));
        }
    };
    let loggers = access_log::loggers(&hcm.access_log, Filter::HttpConnectionManager, at)?;
    Ok(HttpManager {
        stat_prefix: hcm.stat_prefix.as_str().into(),
        route_config_name,
        inline_routes,
        file_access_logs: loggers.files.into(),
        grpc_access_log: loggers.grpc,
        http_filters,
        use_remote_address: hcm.use_remote_address.as_ref().is_some_and(|v| v.value),
        path_normalization: path_normalization(hcm, at)?,
        server_header: std::sync::Arc::new(server_header(hcm, at)?),
        timeouts: hcm_timeouts(hcm, at)?,
        suppress_envoy_headers: super::router_filter::suppress_envoy_headers(hcm, at)?,
        upgrades: super::upgrade::upgrade_configs(&hcm.upgrade_configs, at)?,
    })
}

fn tcp_proxy_action(tcp: &PbTcpProxy, at: &At<'_>) -> Result<TcpProxy, Error> {
    let target = match &tcp.cluster_specifier {
        Some(tcp_proxy::ClusterSpecifier::Cluster(name)) => {
            ClusterTarget::Cluster(name.as_str().into())
        }
        Some(tcp_proxy::ClusterSpecifier::WeightedClusters(w)) => ClusterTarget::Weighted(
            w.clusters
                .iter()
                .map(|c| WeightedCluster::new(&c.name, c.weight))
                .collect(),
        ),
        None => {
            return Err(at.field("cluster_specifier").error("a cluster is required"));
        }
    };
    let loggers = access_log::loggers(&tcp.access_log, Filter::TcpProxy, at)?;
    let (idle_timeout, max_downstream_connection_duration) = tcp_timeouts(tcp, at)?;
    Ok(TcpProxy {
        stat_prefix: tcp.stat_prefix.as_str().into(),
        target,
        file_access_logs: loggers.files.into(),
        grpc_access_log: loggers.grpc,
        idle_timeout,
        max_downstream_connection_duration,
        hash_source_ip: super::tcp_hash::source_ip(&tcp.hash_policy, at)?,
    })
}
