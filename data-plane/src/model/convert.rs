//! Envoy protos → model. Every function names the resource and field it
//! rejects, so the NACK's error_detail tells the operator what to fix.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use proto::pb::envoy::config::cluster::v3 as pb_cluster;
use proto::pb::envoy::config::core::v3::{
    self as pb_core, DataSource, address, data_source, socket_address,
};
use proto::pb::envoy::config::endpoint::v3 as pb_endpoint;
use proto::pb::envoy::config::listener::v3 as pb_listener;
use proto::pb::envoy::config::route::v3 as pb_route;
use proto::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, http_connection_manager,
};
use proto::pb::envoy::extensions::filters::network::tcp_proxy::v3::{
    TcpProxy as PbTcpProxy, tcp_proxy,
};
use proto::pb::envoy::extensions::transport_sockets::tls::v3::{
    CertificateValidationContext, CommonTlsContext, DownstreamTlsContext, Secret as PbSecret,
    TlsCertificate, UpstreamTlsContext, common_tls_context, secret, subject_alt_name_matcher,
};
use proto::pb::envoy::extensions::upstreams::http::v3::{
    HttpProtocolOptions, http_protocol_options::UpstreamProtocolOptions,
    http_protocol_options::explicit_http_config::ProtocolConfig,
};
use proto::pb::envoy::r#type::matcher::v3::{StringMatcher, string_matcher};
use proto::wkt::Any;

use super::Error;
use super::cluster::{
    ClientCert, Cluster, Discovery, Endpoint, LbPolicy, LoadAssignment, Trust, UpstreamTls,
};
use super::listener::{ChainAction, DownstreamTls, FilterChain, HttpManager, Listener, TcpProxy};
use super::route::{
    ClusterTarget, Forward, HeaderMatch, HeaderToAdd, PathMatch, QueryMatch, Redirect, RetryPolicy,
    Route, RouteAction, RouteConfig, RouteMatch, StringMatch, VirtualHost,
};
use super::secret::{Secret, Secrets};

const HCM: &str = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
const TCP_PROXY: &str =
    "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy";
const ROUTER: &str = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router";
const TLS_INSPECTOR: &str =
    "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector";
const ORIGINAL_DST: &str =
    "type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst";
const HTTP_INSPECTOR: &str =
    "type.googleapis.com/envoy.extensions.filters.listener.http_inspector.v3.HttpInspector";
const UPSTREAM_TLS: &str =
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext";
const DOWNSTREAM_TLS: &str =
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext";
const RAW_BUFFER: &str =
    "type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer";
const HTTP_OPTIONS: &str = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";
/// Envoy's default route timeout when a route sets none.
const DEFAULT_ROUTE_TIMEOUT: Duration = Duration::from_secs(15);
/// Envoy's default cluster connect timeout.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

fn decode<M: Message + Default>(
    any: &Any,
    expected: &str,
    err: impl Fn(String) -> Error,
) -> Result<M, Error> {
    if any.type_url != expected {
        return Err(err(format!("expected {expected}, got {}", any.type_url)));
    }
    M::decode(any.value.as_slice()).map_err(|e| err(format!("cannot decode {expected}: {e}")))
}

fn duration(d: &proto::wkt::Duration) -> Duration {
    Duration::new(
        u64::try_from(d.seconds).unwrap_or(0),
        u32::try_from(d.nanos).unwrap_or(0),
    )
}

fn socket_addr(
    addr: Option<&pb_core::Address>,
    err: impl Fn(String) -> Error,
) -> Result<SocketAddr, Error> {
    let Some(address::Address::SocketAddress(sa)) = addr.and_then(|a| a.address.as_ref()) else {
        return Err(err("only socket addresses are supported".into()));
    };
    let ip: IpAddr = sa
        .address
        .parse()
        .map_err(|_| err(format!("{:?} is not an IP address", sa.address)))?;
    let port = match sa.port_specifier {
        Some(socket_address::PortSpecifier::PortValue(port)) => {
            u16::try_from(port).map_err(|_| err(format!("port {port} is out of range")))?
        }
        _ => return Err(err("a port number is required".into())),
    };
    Ok(SocketAddr::new(ip, port))
}

/// Reads a DataSource (file or inline).
pub fn read_data_source(source: &DataSource) -> Result<Vec<u8>, String> {
    match &source.specifier {
        Some(data_source::Specifier::Filename(path)) => {
            std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))
        }
        Some(data_source::Specifier::InlineBytes(bytes)) => Ok(bytes.clone()),
        Some(data_source::Specifier::InlineString(text)) => Ok(text.clone().into_bytes()),
        Some(data_source::Specifier::EnvironmentVariable(var)) => std::env::var(var)
            .map(String::into_bytes)
            .map_err(|_| format!("environment variable {var} is not set")),
        None => Err("empty data source".into()),
    }
}

// === Listener ===

pub fn listener(l: &pb_listener::Listener, secrets: &Secrets) -> Result<Listener, Error> {
    let err = |field: &str, reason: String| Error::new("listener", &l.name, field, reason);
    let address = socket_addr(l.address.as_ref(), |r| err("address", r))?;
    let mut inspect_tls = false;
    for (i, filter) in l.listener_filters.iter().enumerate() {
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
                return Err(err(
                    &format!("listener_filters[{i}]"),
                    format!("unsupported listener filter {name} ({type_url})"),
                ));
            }
        }
    }
    let filter_chains = l
        .filter_chains
        .iter()
        .enumerate()
        .map(|(i, c)| filter_chain(&l.name, c, &format!("filter_chains[{i}]"), secrets))
        .collect::<Result<Vec<_>, _>>()?;
    let default_chain = l
        .default_filter_chain
        .as_ref()
        .map(|c| filter_chain(&l.name, c, "default_filter_chain", secrets))
        .transpose()?;
    Ok(Listener {
        name: l.name.as_str().into(),
        address,
        bind_to_port: l.bind_to_port.as_ref().is_none_or(|b| b.value),
        use_original_dst: l.use_original_dst.as_ref().is_some_and(|b| b.value),
        inspect_tls,
        filter_chains,
        default_chain,
    })
}

fn filter_chain(
    listener: &str,
    c: &pb_listener::FilterChain,
    at: &str,
    secrets: &Secrets,
) -> Result<FilterChain, Error> {
    let err = |field: &str, reason: String| {
        Error::new("listener", listener, format!("{at}.{field}"), reason)
    };
    let m = c.filter_chain_match.clone().unwrap_or_default();
    let unsupported = [
        ("prefix_ranges", !m.prefix_ranges.is_empty()),
        ("source_prefix_ranges", !m.source_prefix_ranges.is_empty()),
        (
            "direct_source_prefix_ranges",
            !m.direct_source_prefix_ranges.is_empty(),
        ),
        ("source_ports", !m.source_ports.is_empty()),
        ("application_protocols", !m.application_protocols.is_empty()),
        ("transport_protocol", !m.transport_protocol.is_empty()),
    ];
    if let Some((field, _)) = unsupported.iter().find(|(_, set)| *set) {
        return Err(err(
            &format!("filter_chain_match.{field}"),
            "this match field is not supported".into(),
        ));
    }
    let tls =
        match &c.transport_socket {
            None => None,
            Some(ts) => match &ts.config_type {
                Some(pb_core::transport_socket::ConfigType::TypedConfig(any))
                    if any.type_url == DOWNSTREAM_TLS =>
                {
                    let ctx: DownstreamTlsContext =
                        decode(any, DOWNSTREAM_TLS, |r| err("transport_socket", r))?;
                    Some(downstream_tls(&ctx, secrets).map_err(|(field, reason)| {
                        err(&format!("transport_socket.{field}"), reason)
                    })?)
                }
                Some(pb_core::transport_socket::ConfigType::TypedConfig(any))
                    if any.type_url == RAW_BUFFER =>
                {
                    None
                }
                _ => {
                    return Err(err(
                        "transport_socket",
                        format!("unsupported transport socket {}", ts.name),
                    ));
                }
            },
        };
    let destination_port = m
        .destination_port
        .map(|p| {
            u16::try_from(p.value)
                .map_err(|_| err("filter_chain_match.destination_port", "out of range".into()))
        })
        .transpose()?;
    let Some((last, _)) = c.filters.split_last() else {
        return Err(err(
            "filters",
            "a filter chain needs a terminal filter (http_connection_manager or tcp_proxy)".into(),
        ));
    };
    if c.filters.len() > 1 {
        return Err(err(
            "filters",
            format!(
                "only one network filter is supported, got {}",
                c.filters.len()
            ),
        ));
    }
    let Some(pb_listener::filter::ConfigType::TypedConfig(any)) = &last.config_type else {
        return Err(err("filters[0]", "typed_config is required".into()));
    };
    let action = match any.type_url.as_str() {
        HCM => {
            let hcm: HttpConnectionManager = decode(any, HCM, |r| err("filters[0]", r))?;
            ChainAction::Http(http_manager(listener, &hcm, at)?)
        }
        TCP_PROXY => {
            let tcp: PbTcpProxy = decode(any, TCP_PROXY, |r| err("filters[0]", r))?;
            ChainAction::Tcp(tcp_proxy_action(listener, &tcp, at)?)
        }
        other => {
            return Err(err(
                "filters[0]",
                format!("unsupported network filter {} ({other})", last.name),
            ));
        }
    };
    if tls.is_some() && matches!(action, ChainAction::Tcp(_)) {
        return Err(err(
            "transport_socket",
            "terminating TLS in front of a tcp_proxy is not supported; use an HTTP connection manager".into(),
        ));
    }
    Ok(FilterChain {
        name: c.name.as_str().into(),
        destination_port,
        tls,
        server_names: m
            .server_names
            .iter()
            .map(|s| s.to_ascii_lowercase())
            .collect(),
        action,
    })
}

fn http_manager(
    listener: &str,
    hcm: &HttpConnectionManager,
    at: &str,
) -> Result<HttpManager, Error> {
    let err = |field: &str, reason: String| {
        Error::new(
            "listener",
            listener,
            format!("{at}.http_connection_manager.{field}"),
            reason,
        )
    };
    for (i, filter) in hcm.http_filters.iter().enumerate() {
        let type_url = match &filter.config_type {
            Some(proto::pb::envoy::extensions::filters::network::http_connection_manager::v3::http_filter::ConfigType::TypedConfig(any)) => any.type_url.as_str(),
            _ => "",
        };
        let is_router = type_url == ROUTER
            || (type_url.is_empty() && filter.name == "envoy.filters.http.router");
        if !is_router && !filter.is_optional {
            return Err(err(
                &format!("http_filters[{i}]"),
                format!("unsupported HTTP filter {} ({type_url})", filter.name),
            ));
        }
    }
    let (route_config_name, inline_routes) = match &hcm.route_specifier {
        Some(http_connection_manager::RouteSpecifier::Rds(rds)) => {
            (rds.route_config_name.as_str().into(), None)
        }
        Some(http_connection_manager::RouteSpecifier::RouteConfig(rc)) => {
            (rc.name.as_str().into(), Some(Arc::new(route_config(rc)?)))
        }
        _ => {
            return Err(err(
                "route_specifier",
                "rds or route_config is required".into(),
            ));
        }
    };
    Ok(HttpManager {
        stat_prefix: hcm.stat_prefix.as_str().into(),
        route_config_name,
        inline_routes,
        access_log: !hcm.access_log.is_empty(),
    })
}

fn tcp_proxy_action(listener: &str, tcp: &PbTcpProxy, at: &str) -> Result<TcpProxy, Error> {
    let err = |reason: String| {
        Error::new(
            "listener",
            listener,
            format!("{at}.tcp_proxy.cluster_specifier"),
            reason,
        )
    };
    let target = match &tcp.cluster_specifier {
        Some(tcp_proxy::ClusterSpecifier::Cluster(name)) => {
            ClusterTarget::Cluster(name.as_str().into())
        }
        Some(tcp_proxy::ClusterSpecifier::WeightedClusters(w)) => ClusterTarget::Weighted(
            w.clusters
                .iter()
                .map(|c| (c.name.as_str().into(), c.weight))
                .collect(),
        ),
        None => return Err(err("a cluster is required".into())),
    };
    Ok(TcpProxy {
        stat_prefix: tcp.stat_prefix.as_str().into(),
        target,
        access_log: !tcp.access_log.is_empty(),
        idle_timeout: tcp
            .idle_timeout
            .as_ref()
            .map(duration)
            .filter(|d| !d.is_zero()),
    })
}

// === Routes ===

pub fn route_config(rc: &pb_route::RouteConfiguration) -> Result<RouteConfig, Error> {
    let virtual_hosts = rc
        .virtual_hosts
        .iter()
        .enumerate()
        .map(|(i, vh)| virtual_host(&rc.name, vh, i))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RouteConfig {
        name: rc.name.as_str().into(),
        virtual_hosts,
    })
}

fn virtual_host(rc: &str, vh: &pb_route::VirtualHost, index: usize) -> Result<VirtualHost, Error> {
    let routes = vh
        .routes
        .iter()
        .enumerate()
        .map(|(i, r)| route(rc, r, &format!("virtual_hosts[{index}].routes[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(VirtualHost {
        name: vh.name.as_str().into(),
        domains: vh.domains.iter().map(|d| d.to_ascii_lowercase()).collect(),
        routes,
        include_attempt_count: vh.include_request_attempt_count,
    })
}

fn regex(pattern: &str, err: impl Fn(String) -> Error) -> Result<regex::Regex, Error> {
    regex::Regex::new(pattern).map_err(|e| err(format!("invalid regex {pattern:?}: {e}")))
}

fn string_match(m: &StringMatcher, err: &impl Fn(String) -> Error) -> Result<StringMatch, Error> {
    Ok(match &m.match_pattern {
        Some(string_matcher::MatchPattern::Exact(s)) => StringMatch::Exact(s.clone()),
        Some(string_matcher::MatchPattern::Prefix(s)) => StringMatch::Prefix(s.clone()),
        Some(string_matcher::MatchPattern::Suffix(s)) => StringMatch::Suffix(s.clone()),
        Some(string_matcher::MatchPattern::Contains(s)) => StringMatch::Contains(s.clone()),
        Some(string_matcher::MatchPattern::SafeRegex(re)) => {
            StringMatch::Regex(regex(&re.regex, err)?)
        }
        _ => return Err(err("unsupported string matcher".into())),
    })
}

// Envoy still accepts the deprecated header match and append fields; so do we.
#[allow(deprecated)]
fn route(rc: &str, r: &pb_route::Route, at: &str) -> Result<Route, Error> {
    let err = |field: &str| {
        let field = format!("{at}.{field}");
        move |reason: String| Error::new("route configuration", rc, field.clone(), reason)
    };
    let m = r.r#match.clone().unwrap_or_default();
    let path = match &m.path_specifier {
        Some(pb_route::route_match::PathSpecifier::Prefix(p)) => PathMatch::Prefix(p.clone()),
        Some(pb_route::route_match::PathSpecifier::Path(p)) => PathMatch::Exact(p.clone()),
        Some(pb_route::route_match::PathSpecifier::SafeRegex(re)) => {
            PathMatch::Regex(regex(&re.regex, err("match.safe_regex"))?)
        }
        _ => {
            return Err(err("match")(
                "only prefix, path and safe_regex matches are supported".into(),
            ));
        }
    };
    let mut headers = Vec::new();
    for (i, h) in m.headers.iter().enumerate() {
        use pb_route::header_matcher::HeaderMatchSpecifier as S;
        let field_err = err(&format!("match.headers[{i}]"));
        let name = h.name.to_ascii_lowercase();
        if !name.starts_with(':') && http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(field_err(format!("invalid header name {:?}", h.name)));
        }
        let (pattern, ignore_case) = match &h.header_match_specifier {
            Some(S::StringMatch(sm)) => (string_match(sm, &field_err)?, sm.ignore_case),
            Some(S::ExactMatch(s)) => (StringMatch::Exact(s.clone()), false),
            Some(S::PrefixMatch(s)) => (StringMatch::Prefix(s.clone()), false),
            Some(S::SuffixMatch(s)) => (StringMatch::Suffix(s.clone()), false),
            Some(S::ContainsMatch(s)) => (StringMatch::Contains(s.clone()), false),
            Some(S::SafeRegexMatch(re)) => {
                (StringMatch::Regex(regex(&re.regex, &field_err)?), false)
            }
            Some(S::PresentMatch(true)) | None => (StringMatch::Present, false),
            _ => return Err(field_err("unsupported header match".into())),
        };
        headers.push(HeaderMatch {
            name,
            pattern,
            ignore_case,
            invert: h.invert_match,
        });
    }
    let mut query = Vec::new();
    for (i, q) in m.query_parameters.iter().enumerate() {
        use pb_route::query_parameter_matcher::QueryParameterMatchSpecifier as Q;
        let field_err = err(&format!("match.query_parameters[{i}]"));
        let (pattern, ignore_case) = match &q.query_parameter_match_specifier {
            Some(Q::StringMatch(sm)) => (string_match(sm, &field_err)?, sm.ignore_case),
            Some(Q::PresentMatch(_)) | None => (StringMatch::Present, false),
        };
        query.push(QueryMatch {
            name: q.name.clone(),
            pattern,
            ignore_case,
        });
    }
    let matcher = RouteMatch {
        path,
        case_sensitive: m.case_sensitive.as_ref().is_none_or(|b| b.value),
        headers,
        query,
    };
    let action = match &r.action {
        Some(pb_route::route::Action::Route(ra)) => {
            RouteAction::Forward(forward(ra, err("route"))?)
        }
        Some(pb_route::route::Action::Redirect(rd)) => RouteAction::Redirect(redirect(rd)),
        Some(pb_route::route::Action::DirectResponse(dr)) => RouteAction::Direct {
            status: u16::try_from(dr.status)
                .ok()
                .filter(|s| (200..600).contains(s))
                .ok_or_else(|| {
                    err("direct_response.status")(format!("{} is not an HTTP status", dr.status))
                })?,
            body: dr
                .body
                .as_ref()
                .map(read_data_source)
                .transpose()
                .map_err(err("direct_response.body"))?
                .map(|b| String::from_utf8_lossy(&b).into_owned()),
        },
        _ => {
            return Err(err("action")(
                "route, redirect or direct_response is required".into(),
            ));
        }
    };
    Ok(Route {
        name: r.name.as_str().into(),
        matcher,
        action,
        decorator: r
            .decorator
            .as_ref()
            .filter(|d| d.propagate.as_ref().is_none_or(|p| p.value))
            .map(|d| d.operation.as_str().into()),
        request_headers_to_add: headers_to_add(
            &r.request_headers_to_add,
            err("request_headers_to_add"),
        )?,
        request_headers_to_remove: r.request_headers_to_remove.clone(),
        response_headers_to_add: headers_to_add(
            &r.response_headers_to_add,
            err("response_headers_to_add"),
        )?,
        response_headers_to_remove: r.response_headers_to_remove.clone(),
    })
}

#[allow(deprecated)]
fn headers_to_add(
    options: &[pb_core::HeaderValueOption],
    err: impl Fn(String) -> Error,
) -> Result<Vec<HeaderToAdd>, Error> {
    options
        .iter()
        .filter_map(|o| o.header.as_ref().map(|h| (o, h)))
        .map(|(o, h)| {
            let name = http::HeaderName::from_bytes(h.key.as_bytes())
                .map_err(|_| err(format!("invalid header name {:?}", h.key)))?;
            let value = http::HeaderValue::from_str(&h.value)
                .map_err(|_| err(format!("invalid value for header {:?}", h.key)))?;
            let overwrite = o.append_action
                == pb_core::header_value_option::HeaderAppendAction::OverwriteIfExistsOrAdd as i32
                || o.append.as_ref().is_some_and(|a| !a.value);
            Ok(HeaderToAdd {
                name,
                value,
                overwrite,
            })
        })
        .collect()
}

fn forward(ra: &pb_route::RouteAction, err: impl Fn(String) -> Error) -> Result<Forward, Error> {
    use pb_route::route_action::{ClusterSpecifier, HostRewriteSpecifier};
    let target = match &ra.cluster_specifier {
        Some(ClusterSpecifier::Cluster(name)) => ClusterTarget::Cluster(name.as_str().into()),
        Some(ClusterSpecifier::WeightedClusters(w)) => ClusterTarget::Weighted(
            w.clusters
                .iter()
                .map(|c| {
                    (
                        c.name.as_str().into(),
                        c.weight.as_ref().map_or(0, |w| w.value),
                    )
                })
                .collect(),
        ),
        _ => return Err(err("cluster or weighted_clusters is required".into())),
    };
    let timeout = match &ra.timeout {
        None => Some(DEFAULT_ROUTE_TIMEOUT),
        Some(d) => Some(duration(d)).filter(|d| !d.is_zero()),
    };
    let retry = ra.retry_policy.as_ref().map(retry_policy);
    let host_rewrite = match &ra.host_rewrite_specifier {
        Some(HostRewriteSpecifier::HostRewriteLiteral(host)) => Some(host.clone()),
        None => None,
        Some(_) => return Err(err("only host_rewrite_literal is supported".into())),
    };
    Ok(Forward {
        target,
        timeout,
        retry,
        prefix_rewrite: Some(ra.prefix_rewrite.clone()).filter(|p| !p.is_empty()),
        host_rewrite,
    })
}

fn retry_policy(rp: &pb_route::RetryPolicy) -> RetryPolicy {
    let on = |name: &str| rp.retry_on.split(',').any(|c| c.trim() == name);
    RetryPolicy {
        num_retries: rp.num_retries.as_ref().map_or(1, |n| n.value),
        per_try_timeout: rp
            .per_try_timeout
            .as_ref()
            .map(duration)
            .filter(|d| !d.is_zero()),
        on_connect_failure: on("connect-failure") || on("5xx") || on("gateway-error"),
        on_5xx: on("5xx"),
        on_gateway_error: on("gateway-error"),
        on_reset: on("reset") || on("5xx"),
        retriable_status_codes: if on("retriable-status-codes") {
            rp.retriable_status_codes
                .iter()
                .filter_map(|c| u16::try_from(*c).ok())
                .collect()
        } else {
            Vec::new()
        },
    }
}

fn redirect(rd: &pb_route::RedirectAction) -> Redirect {
    use pb_route::redirect_action::{
        PathRewriteSpecifier, RedirectResponseCode, SchemeRewriteSpecifier,
    };
    let status = match RedirectResponseCode::try_from(rd.response_code) {
        Ok(RedirectResponseCode::Found) => 302,
        Ok(RedirectResponseCode::SeeOther) => 303,
        Ok(RedirectResponseCode::TemporaryRedirect) => 307,
        Ok(RedirectResponseCode::PermanentRedirect) => 308,
        _ => 301,
    };
    Redirect {
        status,
        scheme: match &rd.scheme_rewrite_specifier {
            Some(SchemeRewriteSpecifier::HttpsRedirect(true)) => Some("https".into()),
            Some(SchemeRewriteSpecifier::SchemeRedirect(s)) => Some(s.clone()),
            _ => None,
        },
        host: Some(rd.host_redirect.clone()).filter(|h| !h.is_empty()),
        port: u16::try_from(rd.port_redirect).ok().filter(|p| *p != 0),
        path: match &rd.path_rewrite_specifier {
            Some(PathRewriteSpecifier::PathRedirect(p)) => Some(p.clone()),
            _ => None,
        },
    }
}

// === Clusters ===

// Envoy still accepts the deprecated cluster-level HTTP options; so do we.
#[allow(deprecated)]
pub fn cluster(c: &pb_cluster::Cluster, secrets: &Secrets) -> Result<Cluster, Error> {
    use pb_cluster::cluster::{ClusterDiscoveryType, DiscoveryType, LbPolicy as PbLb};
    let err = |field: &str, reason: String| Error::new("cluster", &c.name, field, reason);
    let kind = match &c.cluster_discovery_type {
        Some(ClusterDiscoveryType::Type(t)) => {
            DiscoveryType::try_from(*t).unwrap_or(DiscoveryType::Static)
        }
        None => DiscoveryType::Static,
        Some(ClusterDiscoveryType::ClusterType(custom)) => {
            return Err(err(
                "cluster_type",
                format!("custom cluster type {} is not supported", custom.name),
            ));
        }
    };
    let assignment = || {
        c.load_assignment
            .as_ref()
            .map(|la| load_assignment_named(&c.name, la))
            .transpose()
            .map(Option::unwrap_or_default)
    };
    let discovery = match kind {
        DiscoveryType::Static => Discovery::Static(assignment()?),
        DiscoveryType::StrictDns => Discovery::Dns {
            assignment: assignment()?,
            logical: false,
        },
        DiscoveryType::LogicalDns => Discovery::Dns {
            assignment: assignment()?,
            logical: true,
        },
        DiscoveryType::Eds => Discovery::Eds {
            service_name: c
                .eds_cluster_config
                .as_ref()
                .map(|e| e.service_name.as_str())
                .filter(|s| !s.is_empty())
                .unwrap_or(&c.name)
                .into(),
        },
        DiscoveryType::OriginalDst => Discovery::OriginalDst,
    };
    let lb = match PbLb::try_from(c.lb_policy) {
        Ok(PbLb::RoundRobin) => LbPolicy::RoundRobin,
        Ok(PbLb::LeastRequest) => LbPolicy::LeastRequest,
        Ok(PbLb::Random) => LbPolicy::Random,
        Ok(PbLb::ClusterProvided) => LbPolicy::RoundRobin,
        _ => {
            return Err(err(
                "lb_policy",
                "only ROUND_ROBIN, LEAST_REQUEST, RANDOM and CLUSTER_PROVIDED are supported".into(),
            ));
        }
    };
    let mut secret_names = Vec::new();
    let tls = match &c.transport_socket {
        None => None,
        Some(ts) => match &ts.config_type {
            Some(pb_core::transport_socket::ConfigType::TypedConfig(any))
                if any.type_url == UPSTREAM_TLS =>
            {
                let ctx: UpstreamTlsContext =
                    decode(any, UPSTREAM_TLS, |r| err("transport_socket", r))?;
                let (tls, names) = upstream_tls(&ctx, secrets)
                    .map_err(|(field, reason)| err(&format!("transport_socket.{field}"), reason))?;
                secret_names = names;
                Some(Arc::new(tls))
            }
            Some(pb_core::transport_socket::ConfigType::TypedConfig(any))
                if any.type_url == RAW_BUFFER =>
            {
                None
            }
            _ => {
                return Err(err(
                    "transport_socket",
                    format!("unsupported transport socket {}", ts.name),
                ));
            }
        },
    };
    let mut http2 = c.http2_protocol_options.is_some();
    let mut idle_timeout = None;
    let mut max_requests_per_connection = c.max_requests_per_connection.as_ref().map(|v| v.value);
    if let Some(any) = c.typed_extension_protocol_options.get(HTTP_OPTIONS) {
        let options: HttpProtocolOptions =
            decode(any, &format!("type.googleapis.com/{HTTP_OPTIONS}"), |r| {
                err("typed_extension_protocol_options", r)
            })?;
        if let Some(UpstreamProtocolOptions::ExplicitHttpConfig(explicit)) =
            &options.upstream_protocol_options
        {
            http2 = matches!(
                explicit.protocol_config,
                Some(ProtocolConfig::Http2ProtocolOptions(_))
            );
        }
        if let Some(common) = &options.common_http_protocol_options {
            idle_timeout = common
                .idle_timeout
                .as_ref()
                .map(duration)
                .filter(|d| !d.is_zero());
            if let Some(max) = &common.max_requests_per_connection {
                max_requests_per_connection = Some(max.value);
            }
        }
    }
    let max_connections = c
        .circuit_breakers
        .as_ref()
        .and_then(|cb| cb.thresholds.first())
        .and_then(|t| t.max_connections.as_ref())
        .map(|v| v.value);
    Ok(Cluster {
        name: c.name.as_str().into(),
        discovery,
        lb,
        connect_timeout: c
            .connect_timeout
            .as_ref()
            .map_or(DEFAULT_CONNECT_TIMEOUT, duration),
        tls,
        http2,
        idle_timeout,
        max_requests_per_connection,
        max_connections,
        secret_names,
    })
}

type FieldError = (&'static str, String);

/// A certificate and key from files or inline PEM.
fn tls_certificate(cert: &TlsCertificate) -> Result<ClientCert, String> {
    let chain_pem = cert
        .certificate_chain
        .as_ref()
        .ok_or("certificate_chain is required")
        .map_err(str::to_string)
        .and_then(read_data_source)?;
    let key_pem = cert
        .private_key
        .as_ref()
        .ok_or("private_key is required")
        .map_err(str::to_string)
        .and_then(read_data_source)?;
    let chain = pem_certs(&chain_pem).map_err(|e| format!("certificate_chain: {e}"))?;
    let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .ok()
        .flatten()
        .ok_or("private_key: no PEM private key found")?;
    Ok(ClientCert {
        chain,
        key: key.secret_der().to_vec(),
    })
}

/// Trusted roots and DNS SANs from a validation context.
fn validation(vc: &CertificateValidationContext) -> Result<(Trust, Vec<String>), String> {
    let trust = match (&vc.trusted_ca, &vc.system_root_certs) {
        (Some(ca), _) => Trust::Roots(pem_certs(&read_data_source(ca)?)?),
        (None, Some(_)) => Trust::System,
        (None, None) => Trust::None,
    };
    let sans = vc
        .match_typed_subject_alt_names
        .iter()
        .filter(|m| m.san_type == subject_alt_name_matcher::SanType::Dns as i32)
        .filter_map(|m| match m.matcher.as_ref()?.match_pattern.as_ref()? {
            string_matcher::MatchPattern::Exact(s) => Some(s.clone()),
            _ => None,
        })
        .collect();
    Ok((trust, sans))
}

/// The certificate of the first `tls_certificates` or SDS reference, and the
/// SDS names used. A missing SDS secret yields no certificate yet.
fn certificate(
    common: &CommonTlsContext,
    secrets: &Secrets,
) -> Result<(Option<ClientCert>, Vec<Arc<str>>), FieldError> {
    if let Some(cert) = common.tls_certificates.first() {
        let cert =
            tls_certificate(cert).map_err(|e| ("common_tls_context.tls_certificates[0]", e))?;
        return Ok((Some(cert), Vec::new()));
    }
    let Some(sds) = common.tls_certificate_sds_secret_configs.first() else {
        return Ok((None, Vec::new()));
    };
    let cert = match secrets.get(sds.name.as_str()).map(|s| &**s) {
        Some(Secret::Certificate(cert)) => Some(cert.clone()),
        Some(Secret::Validation(_)) => {
            return Err((
                "common_tls_context.tls_certificate_sds_secret_configs[0]",
                format!(
                    "secret {:?} is a validation context, not a certificate",
                    sds.name
                ),
            ));
        }
        None => None,
    };
    Ok((cert, vec![sds.name.as_str().into()]))
}

/// How a peer's certificate is verified.
struct PeerValidation {
    trust: Trust,
    subject_alt_names: Vec<String>,
    verify_server_name: bool,
    /// The SDS secret the roots come from.
    secret_name: Option<Arc<str>>,
}

fn peer(
    trust: Trust,
    subject_alt_names: Vec<String>,
    verify_server_name: bool,
    secret_name: Option<Arc<str>>,
) -> PeerValidation {
    PeerValidation {
        trust,
        subject_alt_names,
        verify_server_name,
        secret_name,
    }
}

/// How peers are verified: a validation context, or roots from SDS (mesh
/// roots: chain only, since SPIFFE certificates carry no DNS names).
fn peer_validation(
    common: &CommonTlsContext,
    secrets: &Secrets,
) -> Result<PeerValidation, FieldError> {
    let sds_roots = |name: &str| match secrets.get(name).map(|s| &**s) {
        Some(Secret::Validation(roots)) => Ok(Trust::Roots(roots.clone())),
        Some(Secret::Certificate(_)) => Err((
            "common_tls_context.validation_context_sds_secret_config",
            format!("secret {name:?} is a certificate, not a validation context"),
        )),
        None => Ok(Trust::Roots(Vec::new())),
    };
    match &common.validation_context_type {
        None => Ok(peer(Trust::None, Vec::new(), true, None)),
        Some(common_tls_context::ValidationContextType::ValidationContext(vc)) => {
            let (trust, sans) =
                validation(vc).map_err(|e| ("common_tls_context.validation_context", e))?;
            Ok(peer(trust, sans, true, None))
        }
        Some(common_tls_context::ValidationContextType::ValidationContextSdsSecretConfig(sds)) => {
            Ok(peer(
                sds_roots(&sds.name)?,
                Vec::new(),
                false,
                Some(sds.name.as_str().into()),
            ))
        }
        Some(common_tls_context::ValidationContextType::CombinedValidationContext(combined)) => {
            let sds = combined
                .validation_context_sds_secret_config
                .clone()
                .unwrap_or_default();
            let sans = match &combined.default_validation_context {
                Some(vc) => {
                    validation(vc)
                        .map_err(|e| ("common_tls_context.combined_validation_context", e))?
                        .1
                }
                None => Vec::new(),
            };
            Ok(peer(
                sds_roots(&sds.name)?,
                sans,
                false,
                Some(sds.name.as_str().into()),
            ))
        }
        Some(_) => Err((
            "common_tls_context.validation_context_type",
            "this kind of validation context is not supported".into(),
        )),
    }
}

fn upstream_tls(
    ctx: &UpstreamTlsContext,
    secrets: &Secrets,
) -> Result<(UpstreamTls, Vec<Arc<str>>), FieldError> {
    let common = ctx.common_tls_context.clone().unwrap_or_default();
    let (client_cert, mut names) = certificate(&common, secrets)?;
    let PeerValidation {
        trust,
        subject_alt_names,
        verify_server_name,
        secret_name,
    } = peer_validation(&common, secrets)?;
    names.extend(secret_name);
    Ok((
        UpstreamTls {
            sni: ctx.sni.clone(),
            trust,
            subject_alt_names,
            client_cert,
            alpn: common.alpn_protocols.clone(),
            verify_server_name,
        },
        names,
    ))
}

/// Downstream TLS termination for a filter chain.
fn downstream_tls(
    ctx: &DownstreamTlsContext,
    secrets: &Secrets,
) -> Result<DownstreamTls, FieldError> {
    let common = ctx.common_tls_context.clone().unwrap_or_default();
    let (certificate, mut secret_names) = certificate(&common, secrets)?;
    let PeerValidation {
        trust, secret_name, ..
    } = peer_validation(&common, secrets)?;
    secret_names.extend(secret_name);
    let require_client_certificate = ctx
        .require_client_certificate
        .as_ref()
        .is_some_and(|b| b.value);
    let client_roots = match trust {
        Trust::Roots(roots) => Some(roots),
        Trust::None => None,
        Trust::System => {
            return Err((
                "common_tls_context.validation_context.system_root_certs",
                "verifying clients against the system roots is not supported".into(),
            ));
        }
    };
    DownstreamTls::new(
        certificate,
        client_roots,
        require_client_certificate,
        secret_names,
    )
    .map_err(|e| ("common_tls_context", e))
}

/// A secret from SDS.
pub fn secret(s: &PbSecret) -> Result<(Arc<str>, Secret), Error> {
    let err = |field: &str, reason: String| Error::new("secret", &s.name, field, reason);
    let secret = match &s.r#type {
        Some(secret::Type::TlsCertificate(cert)) => {
            Secret::Certificate(tls_certificate(cert).map_err(|e| err("tls_certificate", e))?)
        }
        Some(secret::Type::ValidationContext(vc)) => {
            match validation(vc).map_err(|e| err("validation_context", e))?.0 {
                Trust::Roots(roots) => Secret::Validation(roots),
                _ => {
                    return Err(err(
                        "validation_context.trusted_ca",
                        "trusted_ca is required".into(),
                    ));
                }
            }
        }
        _ => {
            return Err(err(
                "type",
                "only tls_certificate and validation_context secrets are supported".into(),
            ));
        }
    };
    Ok((s.name.as_str().into(), secret))
}

fn pem_certs(pem: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let certs: Vec<Vec<u8>> = rustls_pemfile::certs(&mut &pem[..])
        .map(|c| c.map(|c| c.to_vec()))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("invalid PEM: {e}"))?;
    if certs.is_empty() {
        return Err("no PEM certificate found".into());
    }
    Ok(certs)
}

// === Endpoints ===

pub fn load_assignment(la: &pb_endpoint::ClusterLoadAssignment) -> Result<LoadAssignment, Error> {
    load_assignment_named(&la.cluster_name, la)
}

fn load_assignment_named(
    name: &str,
    la: &pb_endpoint::ClusterLoadAssignment,
) -> Result<LoadAssignment, Error> {
    let mut endpoints = Vec::new();
    for (i, locality) in la.endpoints.iter().enumerate() {
        for (j, lb) in locality.lb_endpoints.iter().enumerate() {
            let err = |reason: String| {
                Error::new(
                    "endpoints",
                    name,
                    format!("endpoints[{i}].lb_endpoints[{j}]"),
                    reason,
                )
            };
            let Some(pb_endpoint::lb_endpoint::HostIdentifier::Endpoint(ep)) = &lb.host_identifier
            else {
                return Err(err("an endpoint address is required".into()));
            };
            let Some(address::Address::SocketAddress(sa)) =
                ep.address.as_ref().and_then(|a| a.address.as_ref())
            else {
                return Err(err("only socket addresses are supported".into()));
            };
            let port = match sa.port_specifier {
                Some(socket_address::PortSpecifier::PortValue(p)) => {
                    u16::try_from(p).map_err(|_| err(format!("port {p} is out of range")))?
                }
                _ => return Err(err("a port number is required".into())),
            };
            endpoints.push(Endpoint {
                host: sa.address.clone(),
                port,
                weight: lb
                    .load_balancing_weight
                    .as_ref()
                    .map_or(1, |w| w.value.max(1)),
            });
        }
    }
    Ok(LoadAssignment {
        cluster_name: name.into(),
        endpoints,
    })
}
