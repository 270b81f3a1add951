//! An access log entry as Envoy's gRPC access loggers send it
//! (`HTTPAccessLogEntry`, `TCPAccessLogEntry`), built from the same
//! [`AccessLog`] the text line is written from, with the logger's custom
//! tags (`egress_policy`: the egress policy mark).

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderValue;
use proto::pb::envoy::config::core::v3::{
    Address, RequestMethod, SocketAddress, address, socket_address,
};
use proto::pb::envoy::data::accesslog::v3::http_access_log_entry::HttpVersion;
use proto::pb::envoy::data::accesslog::v3::{
    AccessLogCommon, AccessLogType, ConnectionProperties, HttpAccessLogEntry,
    HttpRequestProperties, HttpResponseProperties, ResponseFlags, TcpAccessLogEntry, TlsProperties,
};
use proto::wkt::{Timestamp, UInt32Value};

use crate::model::access_log::GrpcAccessLog;
use crate::proxy::access_log::AccessLog;
use shared::egress::EgressPolicy;

/// The entry of an HTTP request, at its end; a route metadata tag takes
/// the mark of the request's route.
pub fn http_entry(log: &AccessLog, logger: &GrpcAccessLog) -> HttpAccessLogEntry {
    let text = |value: &Option<HeaderValue>| {
        value
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    HttpAccessLogEntry {
        common_properties: Some(common(
            log,
            logger,
            log.egress_policy,
            AccessLogType::DownstreamEnd,
        )),
        protocol_version: http_version(log.protocol) as i32,
        request: Some(HttpRequestProperties {
            request_method: log
                .method
                .as_ref()
                .and_then(|m| RequestMethod::from_str_name(m.as_str()))
                .unwrap_or(RequestMethod::MethodUnspecified) as i32,
            authority: text(&log.authority),
            path: log
                .path
                .as_ref()
                .map(|p| p.as_str().to_string())
                .unwrap_or_default(),
            user_agent: text(&log.user_agent),
            forwarded_for: text(&log.forwarded_for),
            request_id: text(&log.request_id),
            request_body_bytes: log.bytes_received,
            ..Default::default()
        }),
        response: Some(HttpResponseProperties {
            response_code: Some(UInt32Value {
                value: u32::from(log.response_code),
            }),
            response_body_bytes: log.bytes_sent,
            response_code_details: dash_is_empty(&log.code_details()).to_string(),
            ..Default::default()
        }),
    }
}

/// The entry of a TCP connection, at its end.
pub fn tcp_entry(log: &AccessLog, logger: &GrpcAccessLog) -> TcpAccessLogEntry {
    TcpAccessLogEntry {
        common_properties: Some(common(log, logger, None, AccessLogType::TcpConnectionEnd)),
        connection_properties: Some(ConnectionProperties {
            received_bytes: log.bytes_received,
            sent_bytes: log.bytes_sent,
        }),
    }
}

fn common(
    log: &AccessLog,
    logger: &GrpcAccessLog,
    route_mark: Option<EgressPolicy>,
    access_log_type: AccessLogType,
) -> AccessLogCommon {
    AccessLogCommon {
        access_log_type: access_log_type as i32,
        sample_rate: 1.0,
        downstream_remote_address: log.downstream_remote.map(socket_address),
        downstream_local_address: log.downstream_local.map(socket_address),
        tls_properties: log.requested_server_name.as_ref().map(|sni| TlsProperties {
            tls_sni_hostname: sni.to_string(),
            ..Default::default()
        }),
        start_time: Some(timestamp(log.start_time)),
        duration: Some(duration(log.started.elapsed())),
        upstream_remote_address: log.upstream_host.map(socket_address),
        upstream_cluster: log
            .upstream_cluster
            .as_deref()
            .unwrap_or_default()
            .to_string(),
        response_flags: Some(response_flags(log.response_flags)),
        upstream_transport_failure_reason: log.transport_failure_reason.clone(),
        route_name: log.route_name.as_deref().unwrap_or_default().to_string(),
        connection_termination_details: log
            .connection_termination_details
            .unwrap_or_default()
            .to_string(),
        custom_tags: logger
            .tags(route_mark.map(EgressPolicy::as_str))
            .map(|(tag, value)| (tag.to_string(), value.to_string()))
            .collect(),
        ..Default::default()
    }
}

fn dash_is_empty(value: &str) -> &str {
    if value == "-" { "" } else { value }
}

fn http_version(protocol: &str) -> HttpVersion {
    match protocol {
        "HTTP/1.0" => HttpVersion::Http10,
        "HTTP/1.1" => HttpVersion::Http11,
        "HTTP/2" => HttpVersion::Http2,
        "HTTP/3" => HttpVersion::Http3,
        _ => HttpVersion::ProtocolUnspecified,
    }
}

fn socket_address(address: SocketAddr) -> Address {
    Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            address: address.ip().to_string(),
            port_specifier: Some(socket_address::PortSpecifier::PortValue(u32::from(
                address.port(),
            ))),
            ..Default::default()
        })),
    }
}

fn duration(elapsed: Duration) -> proto::wkt::Duration {
    proto::wkt::Duration {
        seconds: i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(elapsed.subsec_nanos()).unwrap_or(0),
    }
}

fn timestamp(time: SystemTime) -> Timestamp {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    Timestamp {
        seconds: i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(since_epoch.subsec_nanos()).unwrap_or(0),
    }
}

/// Envoy's short response flags (`UF,URX`) as the entry's booleans.
fn response_flags(flags: &str) -> ResponseFlags {
    let mut set = ResponseFlags::default();
    for flag in flags.split(',') {
        let field = match flag {
            "LH" => &mut set.failed_local_healthcheck,
            "UH" => &mut set.no_healthy_upstream,
            "UT" => &mut set.upstream_request_timeout,
            "LR" => &mut set.local_reset,
            "UR" => &mut set.upstream_remote_reset,
            "UF" => &mut set.upstream_connection_failure,
            "UC" => &mut set.upstream_connection_termination,
            "UO" => &mut set.upstream_overflow,
            "NR" => &mut set.no_route_found,
            "DI" => &mut set.delay_injected,
            "FI" => &mut set.fault_injected,
            "RL" => &mut set.rate_limited,
            "RLSE" => &mut set.rate_limit_service_error,
            "DC" => &mut set.downstream_connection_termination,
            "URX" => &mut set.upstream_retry_limit_exceeded,
            "SI" => &mut set.stream_idle_timeout,
            "IH" => &mut set.invalid_envoy_request_headers,
            "DPE" => &mut set.downstream_protocol_error,
            "UMSDR" => &mut set.upstream_max_stream_duration_reached,
            "RFCF" => &mut set.response_from_cache_filter,
            "NFCF" => &mut set.no_filter_config_found,
            "DT" => &mut set.duration_timeout,
            "UPE" => &mut set.upstream_protocol_error,
            "NC" => &mut set.no_cluster_found,
            "OM" => &mut set.overload_manager,
            "DF" => &mut set.dns_resolution_failure,
            "DR" => &mut set.downstream_remote_reset,
            _ => continue,
        };
        *field = true;
    }
    set
}
