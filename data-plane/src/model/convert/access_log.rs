//! A listener's access loggers (`access_log` of an HTTP connection manager
//! or a TCP proxy) → model: Envoy's gRPC loggers (`http_grpc` on an HTTP
//! connection manager, `tcp_grpc` on a TCP proxy) sending to the
//! `envoy_accesslog_service` cluster, which the agent serves by streaming
//! to the control plane; file, stdout and stderr loggers, each writing its
//! format (compiled in `access_log_format`) to its path, opened here so a
//! path the agent cannot write is refused; any other logger is refused.

use std::sync::Arc;

use proto::pb::envoy::config::accesslog::v3::{AccessLog, access_log};
use proto::pb::envoy::config::core::v3::{ApiVersion, GrpcService, grpc_service};
use proto::pb::envoy::extensions::access_loggers::file::v3::{FileAccessLog, file_access_log};
use proto::pb::envoy::extensions::access_loggers::grpc::v3::{
    CommonGrpcAccessLogConfig, HttpGrpcAccessLogConfig, TcpGrpcAccessLogConfig,
};
use proto::pb::envoy::extensions::access_loggers::stream::v3::{
    StderrAccessLog, StdoutAccessLog, stderr_access_log, stdout_access_log,
};
use proto::pb::envoy::r#type::metadata::v3::{MetadataKey, metadata_key, metadata_kind};
use proto::pb::envoy::r#type::tracing::v3::{CustomTag as PbCustomTag, custom_tag};

use shared::egress::{ACCESS_LOG_SERVICE_CLUSTER, EGRESS_POLICY_FIELD, METADATA_NAMESPACE};

use super::{At, access_log_format, decode};
use crate::model::Error;
use crate::model::access_log::{CustomTag, FileAccessLog as FileLogger, GrpcAccessLog, TagValue};
use crate::proxy::access_log::sink;

pub(super) const HTTP_GRPC: &str =
    "type.googleapis.com/envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig";
pub(super) const TCP_GRPC: &str =
    "type.googleapis.com/envoy.extensions.access_loggers.grpc.v3.TcpGrpcAccessLogConfig";
pub(super) const FILE: &str =
    "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog";
pub(super) const STDOUT: &str =
    "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog";
pub(super) const STDERR: &str =
    "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StderrAccessLog";

/// Which filter the loggers belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Filter {
    HttpConnectionManager,
    TcpProxy,
}

/// What a filter's loggers ask for.
#[derive(Debug, Default)]
pub(super) struct Loggers {
    /// The file loggers, in order.
    pub(super) files: Vec<FileLogger>,
    pub(super) grpc: Option<Arc<GrpcAccessLog>>,
}

/// The loggers (`access_log`) of `filter`, which is at `at`.
pub(super) fn loggers(logs: &[AccessLog], filter: Filter, at: &At<'_>) -> Result<Loggers, Error> {
    let mut loggers = Loggers::default();
    for (i, log) in logs.iter().enumerate() {
        let at = at.field(format!("access_log[{i}]"));
        if log.filter.is_some() {
            return Err(at
                .field("filter")
                .error("access log filters are not supported: every entry is logged"));
        }
        let any = match &log.config_type {
            Some(access_log::ConfigType::TypedConfig(any))
                if any.type_url == HTTP_GRPC || any.type_url == TCP_GRPC =>
            {
                any
            }
            Some(access_log::ConfigType::TypedConfig(any)) => {
                loggers
                    .files
                    .push(file_logger(any, &at.field("typed_config"))?);
                continue;
            }
            None => {
                return Err(at
                    .field("typed_config")
                    .error("a logger config is required"));
            }
        };
        let common = match (filter, any.type_url.as_str()) {
            (Filter::HttpConnectionManager, HTTP_GRPC) => {
                http_common(decode(any, HTTP_GRPC, &at.field("typed_config"))?, &at)?
            }
            (Filter::TcpProxy, TCP_GRPC) => {
                let config: TcpGrpcAccessLogConfig =
                    decode(any, TCP_GRPC, &at.field("typed_config"))?;
                config.common_config
            }
            (Filter::HttpConnectionManager, _) => {
                return Err(at.field("typed_config").error(
                    "tcp_grpc logs TCP connections: an HTTP connection manager takes http_grpc",
                ));
            }
            (Filter::TcpProxy, _) => {
                return Err(at
                    .field("typed_config")
                    .error("http_grpc logs HTTP requests: a TCP proxy takes tcp_grpc"));
            }
        };
        if loggers.grpc.is_some() {
            return Err(at.error("only one gRPC access logger per filter is supported"));
        }
        let common = common.ok_or_else(|| {
            at.field("typed_config.common_config")
                .error("common_config is required")
        })?;
        let grpc = grpc_logger(&common, &at.field("typed_config.common_config"))?;
        loggers.grpc = Some(Arc::new(grpc));
    }
    Ok(loggers)
}

/// A file logger (its path), or a stdout or stderr logger, with its
/// format.
fn file_logger(any: &proto::wkt::Any, at: &At<'_>) -> Result<FileLogger, Error> {
    let (path, format) = match any.type_url.as_str() {
        FILE => {
            let file: FileAccessLog = decode(any, FILE, at)?;
            if file.path.is_empty() {
                return Err(at.field("path").error("a path is required"));
            }
            #[allow(deprecated)]
            let format = match file.access_log_format {
                None => None,
                Some(file_access_log::AccessLogFormat::LogFormat(format)) => Some(format),
                Some(_) => {
                    return Err(at.error(
                        "the deprecated format, json_format and typed_json_format fields are not supported: use log_format",
                    ));
                }
            };
            (file.path, format)
        }
        STDOUT => {
            let stdout: StdoutAccessLog = decode(any, STDOUT, at)?;
            let format = stdout.access_log_format.map(|format| match format {
                stdout_access_log::AccessLogFormat::LogFormat(format) => format,
            });
            ("/dev/stdout".to_string(), format)
        }
        STDERR => {
            let stderr: StderrAccessLog = decode(any, STDERR, at)?;
            let format = stderr.access_log_format.map(|format| match format {
                stderr_access_log::AccessLogFormat::LogFormat(format) => format,
            });
            ("/dev/stderr".to_string(), format)
        }
        other => {
            return Err(at.error(format!(
                "access logger {other} is not supported: the agent writes file, stdout, stderr and gRPC access logs"
            )));
        }
    };
    let format = access_log_format::log_format(format.as_ref(), &at.field("log_format"))?;
    let sink = sink::open(&path).map_err(|error| {
        at.field("path")
            .error(format!("cannot open {path:?} for append: {error}"))
    })?;
    Ok(FileLogger {
        format: Arc::new(format),
        sink,
    })
}

/// The common config of an `http_grpc` logger, which must not ask for
/// extra headers: the agent's entries carry none.
fn http_common(
    config: HttpGrpcAccessLogConfig,
    at: &At<'_>,
) -> Result<Option<CommonGrpcAccessLogConfig>, Error> {
    let extra = [
        (
            "additional_request_headers_to_log",
            config.additional_request_headers_to_log.is_empty(),
        ),
        (
            "additional_response_headers_to_log",
            config.additional_response_headers_to_log.is_empty(),
        ),
        (
            "additional_response_trailers_to_log",
            config.additional_response_trailers_to_log.is_empty(),
        ),
    ];
    match extra.iter().find(|(_, empty)| !empty) {
        Some((field, _)) => Err(at
            .field("typed_config")
            .field(field)
            .error("logging extra headers is not supported")),
        None => Ok(config.common_config),
    }
}

fn grpc_logger(common: &CommonGrpcAccessLogConfig, at: &At<'_>) -> Result<GrpcAccessLog, Error> {
    if common.log_name.is_empty() {
        return Err(at.field("log_name").error("a log name is required"));
    }
    grpc_service(common.grpc_service.as_ref(), &at.field("grpc_service"))?;
    match ApiVersion::try_from(common.transport_api_version) {
        Ok(ApiVersion::V3 | ApiVersion::Auto) => {}
        _ => {
            return Err(at
                .field("transport_api_version")
                .error("only V3 is supported"));
        }
    }
    let unsupported = [
        (
            "buffer_flush_interval",
            common.buffer_flush_interval.is_some(),
        ),
        ("buffer_size_bytes", common.buffer_size_bytes.is_some()),
        (
            "grpc_stream_retry_policy",
            common.grpc_stream_retry_policy.is_some(),
        ),
    ];
    if let Some((field, _)) = unsupported.iter().find(|(_, set)| *set) {
        return Err(at.field(field).error(
            "not supported: the agent sends entries as they come and reconnects with its own backoff",
        ));
    }
    let custom_tags = common
        .custom_tags
        .iter()
        .enumerate()
        .map(|(i, tag)| custom_tag(tag, &at.field(format!("custom_tags[{i}]"))))
        .collect::<Result<_, _>>()?;
    Ok(GrpcAccessLog {
        log_name: common.log_name.as_str().into(),
        custom_tags,
    })
}

/// Only `envoy_grpc` to `envoy_accesslog_service`, with nothing else set.
fn grpc_service(service: Option<&GrpcService>, at: &At<'_>) -> Result<(), Error> {
    let Some(service) = service else {
        return Err(at.error(format!(
            "grpc_service is required: envoy_grpc with cluster_name {ACCESS_LOG_SERVICE_CLUSTER}"
        )));
    };
    let envoy_grpc = match &service.target_specifier {
        Some(grpc_service::TargetSpecifier::EnvoyGrpc(envoy_grpc)) => envoy_grpc,
        Some(grpc_service::TargetSpecifier::GoogleGrpc(_)) => {
            return Err(at.field("google_grpc").error(format!(
                "not supported: use envoy_grpc with cluster_name {ACCESS_LOG_SERVICE_CLUSTER}"
            )));
        }
        None => {
            return Err(at.error(format!(
                "envoy_grpc with cluster_name {ACCESS_LOG_SERVICE_CLUSTER} is required"
            )));
        }
    };
    if envoy_grpc.cluster_name != ACCESS_LOG_SERVICE_CLUSTER {
        return Err(at.field("envoy_grpc.cluster_name").error(format!(
            "{:?} is not supported: the agent streams access logs to its control plane, named by cluster {ACCESS_LOG_SERVICE_CLUSTER}",
            envoy_grpc.cluster_name
        )));
    }
    let unsupported = [
        ("envoy_grpc.authority", !envoy_grpc.authority.is_empty()),
        ("envoy_grpc.retry_policy", envoy_grpc.retry_policy.is_some()),
        (
            "envoy_grpc.max_receive_message_length",
            envoy_grpc.max_receive_message_length.is_some(),
        ),
        (
            "envoy_grpc.skip_envoy_headers",
            envoy_grpc.skip_envoy_headers,
        ),
        ("timeout", service.timeout.is_some()),
        ("initial_metadata", !service.initial_metadata.is_empty()),
        ("retry_policy", service.retry_policy.is_some()),
    ];
    match unsupported.iter().find(|(_, set)| *set) {
        Some((field, _)) => Err(at
            .field(field)
            .error("not supported: the agent's connection to its control plane is fixed")),
        None => Ok(()),
    }
}

/// A literal tag, or the route's `istio` / `egress_policy` metadata.
fn custom_tag(tag: &PbCustomTag, at: &At<'_>) -> Result<CustomTag, Error> {
    if tag.tag.is_empty() {
        return Err(at.field("tag").error("a tag name is required"));
    }
    let value = match &tag.r#type {
        Some(custom_tag::Type::Literal(literal)) => {
            TagValue::Literal(literal.value.as_str().into())
        }
        Some(custom_tag::Type::Metadata(metadata)) => {
            let is_route = matches!(
                metadata.kind.as_ref().and_then(|k| k.kind.as_ref()),
                Some(metadata_kind::Kind::Route(_))
            );
            if !is_route {
                return Err(at
                    .field("metadata.kind")
                    .error("only route metadata is supported"));
            }
            if !is_egress_policy_key(metadata.metadata_key.as_ref()) {
                return Err(at.field("metadata.metadata_key").error(
                    "only key istio with path egress_policy (the egress policy mark) is supported",
                ));
            }
            TagValue::RouteEgressPolicy {
                default_value: Some(metadata.default_value.as_str())
                    .filter(|v| !v.is_empty())
                    .map(Into::into),
            }
        }
        Some(
            custom_tag::Type::Environment(_)
            | custom_tag::Type::RequestHeader(_)
            | custom_tag::Type::Value(_),
        ) => {
            return Err(at.error("only literal and route metadata tags are supported"));
        }
        None => return Err(at.error("a tag value (literal or metadata) is required")),
    };
    Ok(CustomTag {
        tag: tag.tag.as_str().into(),
        value,
    })
}

fn is_egress_policy_key(key: Option<&MetadataKey>) -> bool {
    let Some(key) = key else { return false };
    let path: Vec<_> = key
        .path
        .iter()
        .map(|segment| match &segment.segment {
            Some(metadata_key::path_segment::Segment::Key(key)) => Some(key.as_str()),
            _ => None,
        })
        .collect();
    key.key == METADATA_NAMESPACE && path == [Some(EGRESS_POLICY_FIELD)]
}
