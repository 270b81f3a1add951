//! Renders an [`AccessLog`] in a compiled format: a text line, or a JSON
//! object as Envoy writes it (sole numeric operators as numbers, missing
//! values as null). Each operator's value is written to a scratch buffer
//! first, so a line costs no allocation once the buffers have grown.

use std::fmt::Write as _;
use std::net::SocketAddr;

use http::HeaderValue;
use http::uri::PathAndQuery;

use super::{AccessLog, CodeDetails, Underscored};
use crate::model::log_format::{
    JsonObject, JsonValue, LogFormat, Operator, Piece, RequestHeader, TextFormat, Value,
    write_json_string,
};

/// What an operator wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Written {
    /// No value: `-` in text, null in JSON.
    Missing,
    Number,
    Text,
}

impl AccessLog {
    /// Appends the entry in `format` to `out` (a JSON object gets its
    /// newline; a text format has its own); `scratch` is working space.
    pub fn render(&self, format: &LogFormat, out: &mut String, scratch: &mut String) {
        match format {
            LogFormat::Text(text) => self.render_text(text, out, scratch),
            LogFormat::Json(object) => {
                self.render_object(object, out, scratch);
                out.push('\n');
            }
        }
    }

    fn render_text(&self, format: &TextFormat, out: &mut String, scratch: &mut String) {
        for piece in &format.pieces {
            match piece {
                Piece::Literal(text) => out.push_str(text),
                Piece::Operator(operator) => match self.operator(operator, scratch) {
                    Written::Missing => out.push('-'),
                    Written::Number | Written::Text => out.push_str(scratch),
                },
            }
        }
    }

    fn render_object(&self, object: &JsonObject, out: &mut String, scratch: &mut String) {
        out.push('{');
        for (i, (key, value)) in object.fields.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(key);
            match value {
                JsonValue::Constant(json) => out.push_str(json),
                JsonValue::Object(inner) => self.render_object(inner, out, scratch),
                JsonValue::Format(format) => match format.sole_operator() {
                    Some(operator) => match self.operator(operator, scratch) {
                        Written::Missing => out.push_str("null"),
                        Written::Number => out.push_str(scratch),
                        Written::Text => write_json_string(scratch, out),
                    },
                    None => {
                        let start = out.len();
                        self.render_text(format, out, scratch);
                        scratch.clear();
                        scratch.push_str(&out[start..]);
                        out.truncate(start);
                        write_json_string(scratch, out);
                    }
                },
            }
        }
        out.push('}');
    }

    /// Writes the value of `operator` to `scratch` (cleared first).
    fn operator(&self, operator: &Operator, scratch: &mut String) -> Written {
        scratch.clear();
        let written = self.value(&operator.value, scratch);
        if let Some(max) = operator.max_length
            && scratch.len() > max
        {
            let mut end = max;
            while !scratch.is_char_boundary(end) {
                end -= 1;
            }
            scratch.truncate(end);
        }
        written
    }

    fn value(&self, value: &Value, out: &mut String) -> Written {
        match value {
            Value::StartTime(None) => {
                let _ = write!(out, "{}", humantime::format_rfc3339_millis(self.start_time));
                Written::Text
            }
            Value::StartTime(Some(format)) => {
                format.write(self.start_time, out);
                Written::Text
            }
            Value::Request { main, alternative } => {
                let first = self.request_header(*main);
                let value = match (first, alternative) {
                    ("", Some(alternative)) => self.request_header(*alternative),
                    _ => first,
                };
                text(value, out)
            }
            Value::UpstreamServiceTime => display(self.upstream_service_time, out),
            Value::Protocol => text(self.protocol, out).or_missing_if(self.protocol == "-"),
            Value::ResponseCode => number(u64::from(self.response_code), out),
            Value::ResponseFlags => text(self.response_flags, out),
            Value::ResponseCodeDetails => {
                if self.response_code_details == "-" {
                    return Written::Missing;
                }
                let _ = write!(out, "{}", CodeDetails(self));
                Written::Text
            }
            Value::ConnectionTerminationDetails => {
                text(self.connection_termination_details.unwrap_or_default(), out)
            }
            Value::UpstreamTransportFailureReason => {
                let _ = write!(out, "{}", Underscored(&self.transport_failure_reason));
                text_if_any(out)
            }
            Value::BytesReceived => number(self.bytes_received, out),
            Value::BytesSent => number(self.bytes_sent, out),
            Value::Duration => number(
                u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
                out,
            ),
            Value::UpstreamHost => display(self.upstream_host, out),
            Value::UpstreamCluster => text(self.upstream_cluster.as_deref().unwrap_or(""), out),
            Value::UpstreamLocalAddress => display(self.upstream_local, out),
            Value::DownstreamLocalAddress => display(self.downstream_local, out),
            Value::DownstreamLocalAddressWithoutPort => {
                display(self.downstream_local.map(|a| a.ip()), out)
            }
            Value::DownstreamRemoteAddress => display(self.downstream_remote, out),
            Value::DownstreamRemoteAddressWithoutPort => {
                display(self.downstream_remote.map(|a: SocketAddr| a.ip()), out)
            }
            Value::RequestedServerName => {
                text(self.requested_server_name.as_deref().unwrap_or(""), out)
            }
            Value::RouteName => text(self.route_name.as_deref().unwrap_or(""), out),
            Value::DownstreamPeerUriSan => text(self.peer_identity.as_deref().unwrap_or(""), out),
        }
    }

    /// The value of `header`, empty when the request had none.
    fn request_header(&self, header: RequestHeader) -> &str {
        fn value(header: &Option<HeaderValue>) -> &str {
            header
                .as_ref()
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
        }
        match header {
            RequestHeader::Method => self.method.as_ref().map_or("", http::Method::as_str),
            RequestHeader::Path => self.path.as_ref().map_or("", PathAndQuery::as_str),
            RequestHeader::Authority => value(&self.authority),
            RequestHeader::ForwardedFor => value(&self.forwarded_for),
            RequestHeader::UserAgent => value(&self.user_agent),
            RequestHeader::RequestId => value(&self.request_id),
        }
    }
}

impl Written {
    fn or_missing_if(self, missing: bool) -> Self {
        if missing { Written::Missing } else { self }
    }
}

/// A text value; empty is missing.
fn text(value: &str, out: &mut String) -> Written {
    out.push_str(value);
    text_if_any(out)
}

fn text_if_any(out: &str) -> Written {
    if out.is_empty() {
        Written::Missing
    } else {
        Written::Text
    }
}

fn number(value: u64, out: &mut String) -> Written {
    let _ = write!(out, "{value}");
    Written::Number
}

/// A value shown as text, or missing.
fn display<T: std::fmt::Display>(value: Option<T>, out: &mut String) -> Written {
    match value {
        Some(value) => {
            let _ = write!(out, "{value}");
            Written::Text
        }
        None => Written::Missing,
    }
}
