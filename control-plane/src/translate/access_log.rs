//! The file access log istiod puts on every HTTP connection manager and
//! TCP proxy from MeshConfig `accessLogFile`, `accessLogEncoding` and
//! `accessLogFormat`: `envoy.access_loggers.file` writing to that path a
//! text line (the format given, or Istio's) or a JSON object (the format
//! given, or Istio's fields). No file, no logger.

use proto::pb::envoy::config::accesslog::v3::{AccessLog, access_log};
use proto::pb::envoy::config::core::v3::{
    DataSource, SubstitutionFormatString, data_source, substitution_format_string,
};
use proto::pb::envoy::config::listener::v3::{Listener, filter};
use proto::pb::envoy::extensions::access_loggers::file::v3::{FileAccessLog, file_access_log};
use proto::pb::envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;
use proto::pb::envoy::extensions::filters::network::tcp_proxy::v3::TcpProxy;
use proto::pb::google::protobuf::{ListValue, NullValue, Struct, Value, value::Kind};
use proto::prost::Message;
use proto::{pack, pack_named};

use crate::config::model::{AccessLogEncoding, MeshConfig};
use shared::access_log::{ISTIO_JSON_FORMAT, ISTIO_TEXT_FORMAT};

const HCM: &str = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
const TCP_PROXY: &str =
    "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy";

/// A JSON `accessLogFormat` that is not a JSON object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "with accessLogEncoding JSON, accessLogFormat must be a JSON object of field names to command operators, e.g. {{\"code\": \"%RESPONSE_CODE%\"}}: {0}"
)]
pub struct JsonFormatError(String);

/// The JSON object `format` names, as a protobuf Struct.
pub fn json_format(format: &str) -> Result<Struct, JsonFormatError> {
    match serde_json::from_str(format) {
        Ok(serde_json::Value::Object(fields)) => Ok(to_struct(fields)),
        Ok(other) => Err(JsonFormatError(format!("got {other}"))),
        Err(error) => Err(JsonFormatError(error.to_string())),
    }
}

fn to_struct(fields: serde_json::Map<String, serde_json::Value>) -> Struct {
    Struct {
        fields: fields
            .into_iter()
            .map(|(key, value)| (key, to_value(value)))
            .collect(),
    }
}

fn to_value(value: serde_json::Value) -> Value {
    let kind = match value {
        serde_json::Value::Null => Kind::NullValue(NullValue::NullValue as i32),
        serde_json::Value::Bool(b) => Kind::BoolValue(b),
        serde_json::Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        serde_json::Value::String(s) => Kind::StringValue(s),
        serde_json::Value::Array(items) => Kind::ListValue(ListValue {
            values: items.into_iter().map(to_value).collect(),
        }),
        serde_json::Value::Object(fields) => Kind::StructValue(to_struct(fields)),
    };
    Value { kind: Some(kind) }
}

/// The file access log `mesh` asks for, if any.
pub fn file_access_log(mesh: &MeshConfig) -> Option<AccessLog> {
    if mesh.access_log_file.is_empty() {
        return None;
    }
    let format = match mesh.access_log_encoding {
        AccessLogEncoding::Text => {
            let text = if mesh.access_log_format.is_empty() {
                ISTIO_TEXT_FORMAT.to_string()
            } else {
                mesh.access_log_format.clone()
            };
            substitution_format_string::Format::TextFormatSource(DataSource {
                specifier: Some(data_source::Specifier::InlineString(text)),
                ..Default::default()
            })
        }
        AccessLogEncoding::Json => {
            let fields = match json_format(&mesh.access_log_format) {
                Ok(fields) if !fields.fields.is_empty() => fields,
                // Validation refuses a format that is not an object.
                _ => Struct {
                    fields: ISTIO_JSON_FORMAT
                        .iter()
                        .map(|(key, operator)| {
                            let value = Value {
                                kind: Some(Kind::StringValue((*operator).to_string())),
                            };
                            ((*key).to_string(), value)
                        })
                        .collect(),
                },
            };
            substitution_format_string::Format::JsonFormat(fields)
        }
    };
    let file = FileAccessLog {
        path: mesh.access_log_file.clone(),
        access_log_format: Some(file_access_log::AccessLogFormat::LogFormat(
            SubstitutionFormatString {
                format: Some(format),
                ..Default::default()
            },
        )),
    };
    Some(AccessLog {
        name: "envoy.access_loggers.file".to_string(),
        config_type: Some(access_log::ConfigType::TypedConfig(pack_named(
            "envoy.extensions.access_loggers.file.v3.FileAccessLog",
            &file,
        ))),
        ..Default::default()
    })
}

/// Puts `log` first on every HTTP connection manager and TCP proxy of
/// `listeners`, default chains included.
pub fn add_file_access_log(listeners: &mut [Listener], log: &AccessLog) {
    let chains = listeners.iter_mut().flat_map(|listener| {
        listener
            .filter_chains
            .iter_mut()
            .chain(listener.default_filter_chain.as_mut())
    });
    for chain in chains {
        for network_filter in &mut chain.filters {
            let Some(filter::ConfigType::TypedConfig(any)) = &mut network_filter.config_type else {
                continue;
            };
            match any.type_url.as_str() {
                HCM => {
                    if let Ok(mut hcm) = HttpConnectionManager::decode(any.value.as_slice()) {
                        hcm.access_log.insert(0, log.clone());
                        *any = pack(HCM, &hcm);
                    }
                }
                TCP_PROXY => {
                    if let Ok(mut tcp) = TcpProxy::decode(any.value.as_slice()) {
                        tcp.access_log.insert(0, log.clone());
                        *any = pack(TCP_PROXY, &tcp);
                    }
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests;
