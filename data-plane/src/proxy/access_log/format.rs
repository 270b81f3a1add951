//! An access log format parsed once per config into literal and operator
//! pieces (Envoy's command operators) and rendered per entry into a reused
//! buffer: a text line, or a JSON object whose single-operator values keep
//! their type (numbers as numbers, `-` as null), as Envoy writes them.

use std::fmt::Write as _;

use http::HeaderValue;

use super::AccessLog;

/// One command operator, as written (`%NAME(argument):max_length%`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    pub name: String,
    pub argument: Option<String>,
    pub max_length: Option<usize>,
}

impl Operator {
    /// The operator as it was written.
    pub fn spelled(&self) -> String {
        let mut text = format!("%{}", self.name);
        if let Some(argument) = &self.argument {
            let _ = write!(text, "({argument})");
        }
        if let Some(length) = self.max_length {
            let _ = write!(text, ":{length}");
        }
        text.push('%');
        text
    }
}

/// A piece of a format string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    Literal(String),
    Operator(Operator),
}

/// The pieces of `format`, or why Envoy would refuse it.
pub fn tokens(format: &str) -> Result<Vec<Token>, String> {
    let mut found = Vec::new();
    let mut literal = String::new();
    let mut rest = format;
    while let Some(start) = rest.find('%') {
        literal.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        if let Some(tail) = after.strip_prefix('%') {
            literal.push('%');
            rest = tail;
            continue;
        }
        let name_len = after
            .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(after.len());
        let name = &after[..name_len];
        if name.is_empty() {
            return Err(format!(
                "a '%' at byte {} starts no command operator (a literal % is %%)",
                format.len() - rest.len() + start
            ));
        }
        let mut tail = &after[name_len..];
        let argument = match tail.strip_prefix('(') {
            Some(open) => {
                let close = open
                    .find(')')
                    .ok_or_else(|| format!("%{name}( has no closing parenthesis"))?;
                tail = &open[close + 1..];
                Some(open[..close].to_string())
            }
            None => None,
        };
        let max_length = match tail.strip_prefix(':') {
            Some(digits) => {
                let len = digits
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(digits.len());
                let length = digits[..len]
                    .parse()
                    .map_err(|_| format!("%{name}: a ':' must be followed by a length"))?;
                tail = &digits[len..];
                Some(length)
            }
            None => None,
        };
        rest = tail
            .strip_prefix('%')
            .ok_or_else(|| format!("%{name} is not closed by '%'"))?;
        if !literal.is_empty() {
            found.push(Token::Literal(std::mem::take(&mut literal)));
        }
        found.push(Token::Operator(Operator {
            name: name.to_string(),
            argument,
            max_length,
        }));
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        found.push(Token::Literal(literal));
    }
    Ok(found)
}

/// A value the agent keeps for an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    StartTime,
    Protocol,
    ResponseCode,
    ResponseFlags,
    ResponseCodeDetails,
    ConnectionTerminationDetails,
    UpstreamTransportFailureReason,
    BytesReceived,
    BytesSent,
    Duration,
    UpstreamHost,
    UpstreamCluster,
    UpstreamLocalAddress,
    DownstreamLocalAddress,
    DownstreamRemoteAddress,
    RequestedServerName,
    RouteName,
    Method,
    Path,
    OriginalPathOrPath,
    Authority,
    ForwardedFor,
    UserAgent,
    RequestId,
    UpstreamServiceTime,
}

impl Field {
    /// The field `operator` names, if the agent has a value for it.
    fn of(operator: &Operator) -> Option<Self> {
        let field = match (operator.name.as_str(), operator.argument.as_deref()) {
            ("START_TIME", None) => Self::StartTime,
            ("PROTOCOL", None) => Self::Protocol,
            ("RESPONSE_CODE", None) => Self::ResponseCode,
            ("RESPONSE_FLAGS", None) => Self::ResponseFlags,
            ("RESPONSE_CODE_DETAILS", None) => Self::ResponseCodeDetails,
            ("CONNECTION_TERMINATION_DETAILS", None) => Self::ConnectionTerminationDetails,
            ("UPSTREAM_TRANSPORT_FAILURE_REASON", None) => Self::UpstreamTransportFailureReason,
            ("BYTES_RECEIVED", None) => Self::BytesReceived,
            ("BYTES_SENT", None) => Self::BytesSent,
            ("DURATION", None) => Self::Duration,
            ("UPSTREAM_HOST", None) => Self::UpstreamHost,
            ("UPSTREAM_CLUSTER" | "UPSTREAM_CLUSTER_RAW", None) => Self::UpstreamCluster,
            ("UPSTREAM_LOCAL_ADDRESS", None) => Self::UpstreamLocalAddress,
            ("DOWNSTREAM_LOCAL_ADDRESS", None) => Self::DownstreamLocalAddress,
            ("DOWNSTREAM_REMOTE_ADDRESS", None) => Self::DownstreamRemoteAddress,
            ("REQUESTED_SERVER_NAME", None) => Self::RequestedServerName,
            ("ROUTE_NAME", None) => Self::RouteName,
            ("REQ", Some(header)) => match header.to_ascii_uppercase().as_str() {
                ":METHOD" => Self::Method,
                ":PATH" => Self::Path,
                "X-ENVOY-ORIGINAL-PATH?:PATH" => Self::OriginalPathOrPath,
                ":AUTHORITY" => Self::Authority,
                "X-FORWARDED-FOR" => Self::ForwardedFor,
                "USER-AGENT" => Self::UserAgent,
                "X-REQUEST-ID" => Self::RequestId,
                _ => return None,
            },
            ("RESP", Some(header))
                if header.eq_ignore_ascii_case("X-ENVOY-UPSTREAM-SERVICE-TIME") =>
            {
                Self::UpstreamServiceTime
            }
            _ => return None,
        };
        Some(field)
    }
}

/// A parsed piece: text as is, or a field (cut to a length).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Field(Field, Option<usize>),
}

/// A text format's pieces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pieces(Vec<Piece>);

impl Pieces {
    /// Parses `format`; an operator without a value is refused by name.
    fn parse(format: &str) -> Result<Self, String> {
        let mut pieces = Vec::new();
        let mut missing = Vec::new();
        for token in tokens(format)? {
            match token {
                Token::Literal(text) => pieces.push(Piece::Literal(text)),
                Token::Operator(operator) => match Field::of(&operator) {
                    Some(field) => pieces.push(Piece::Field(field, operator.max_length)),
                    None => missing.push(operator.spelled()),
                },
            }
        }
        if missing.is_empty() {
            Ok(Self(pieces))
        } else {
            Err(format!(
                "command operators the agent cannot render: {}",
                missing.join(", ")
            ))
        }
    }

    /// The one field that is the whole value, if so.
    fn single(&self) -> Option<(Field, Option<usize>)> {
        match self.0.as_slice() {
            [Piece::Field(field, length)] => Some((*field, *length)),
            _ => None,
        }
    }

    fn render(&self, log: &AccessLog, out: &mut String) {
        for piece in &self.0 {
            match piece {
                Piece::Literal(text) => out.push_str(text),
                Piece::Field(field, length) => {
                    let start = out.len();
                    write_field(log, *field, out);
                    truncate(out, start, *length);
                }
            }
        }
    }
}

/// A logger's format, parsed once per config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// A text line (ends with its own newline if the format has one).
    Text(Pieces),
    /// One JSON object per line, its keys in the configured order.
    Json(Vec<(String, Pieces)>),
}

impl Format {
    /// A text format.
    pub fn text(format: &str) -> Result<Self, String> {
        Pieces::parse(format).map(Self::Text)
    }

    /// A JSON format from its keys and string values (a nested or
    /// non-string value is refused by the caller).
    pub fn json<'a>(fields: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self, String> {
        fields
            .into_iter()
            .map(|(key, value)| {
                Pieces::parse(value)
                    .map(|pieces| (key.to_string(), pieces))
                    .map_err(|reason| format!("{key}: {reason}"))
            })
            .collect::<Result<_, _>>()
            .map(Self::Json)
    }

    /// Appends `log`'s line, with its newline, to `out`.
    pub fn render(&self, log: &AccessLog, out: &mut String) {
        match self {
            Self::Text(pieces) => {
                pieces.render(log, out);
                if !out.ends_with('\n') {
                    out.push('\n');
                }
            }
            Self::Json(fields) => {
                out.push('{');
                let mut scratch = String::new();
                for (i, (key, pieces)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    json_string(key, out);
                    out.push(':');
                    scratch.clear();
                    pieces.render(log, &mut scratch);
                    match pieces.single() {
                        Some(_) if scratch == "-" => out.push_str("null"),
                        Some((field, _)) if numeric(field) => out.push_str(&scratch),
                        _ => json_string(&scratch, out),
                    }
                }
                out.push_str("}\n");
            }
        }
    }
}

/// Operators Envoy gives as numbers in a JSON format.
fn numeric(field: Field) -> bool {
    matches!(
        field,
        Field::ResponseCode | Field::BytesReceived | Field::BytesSent | Field::Duration
    )
}

fn truncate(out: &mut String, start: usize, length: Option<usize>) {
    if let Some(length) = length {
        let end = out[start..]
            .char_indices()
            .nth(length)
            .map_or(out.len(), |(at, _)| start + at);
        out.truncate(end);
    }
}

fn json_string(text: &str, out: &mut String) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Writes `field` of `log`, `-` when it has none (as Envoy's text).
fn write_field(log: &AccessLog, field: Field, out: &mut String) {
    fn text(out: &mut String, value: &str) {
        out.push_str(if value.is_empty() { "-" } else { value });
    }
    fn header(out: &mut String, value: &Option<HeaderValue>) {
        text(
            out,
            value.as_ref().and_then(|v| v.to_str().ok()).unwrap_or(""),
        );
    }
    fn opt(out: &mut String, value: Option<impl std::fmt::Display>) {
        match value {
            Some(value) => {
                let _ = write!(out, "{value}");
            }
            None => out.push('-'),
        }
    }
    let path = log.path.as_ref().map(|p| p.as_str());
    match field {
        Field::StartTime => {
            let _ = write!(out, "{}", humantime::format_rfc3339_millis(log.start_time));
        }
        Field::Protocol => text(out, log.protocol),
        Field::ResponseCode => {
            let _ = write!(out, "{}", log.response_code);
        }
        Field::ResponseFlags => text(out, log.response_flags),
        Field::ResponseCodeDetails => {
            let _ = write!(out, "{}", super::CodeDetails(log));
        }
        Field::ConnectionTerminationDetails => {
            text(out, log.connection_termination_details.unwrap_or(""))
        }
        Field::UpstreamTransportFailureReason => {
            let start = out.len();
            let _ = write!(out, "{}", super::Underscored(&log.transport_failure_reason));
            if out.len() == start {
                out.push('-');
            }
        }
        Field::BytesReceived => {
            let _ = write!(out, "{}", log.bytes_received);
        }
        Field::BytesSent => {
            let _ = write!(out, "{}", log.bytes_sent);
        }
        Field::Duration => {
            let _ = write!(out, "{}", log.started.elapsed().as_millis());
        }
        Field::UpstreamHost => opt(out, log.upstream_host),
        Field::UpstreamCluster => text(out, log.upstream_cluster.as_deref().unwrap_or("")),
        Field::UpstreamLocalAddress => out.push('-'),
        Field::DownstreamLocalAddress => opt(out, log.downstream_local),
        Field::DownstreamRemoteAddress => opt(out, log.downstream_remote),
        Field::RequestedServerName => text(out, log.requested_server_name.as_deref().unwrap_or("")),
        Field::RouteName => text(out, log.route_name.as_deref().unwrap_or("")),
        Field::Method => opt(out, log.method.as_ref()),
        Field::Path | Field::OriginalPathOrPath => text(out, path.unwrap_or("")),
        Field::Authority => header(out, &log.authority),
        Field::ForwardedFor => header(out, &log.forwarded_for),
        Field::UserAgent => header(out, &log.user_agent),
        Field::RequestId => header(out, &log.request_id),
        Field::UpstreamServiceTime => opt(out, log.upstream_service_time),
    }
}

#[cfg(test)]
#[path = "format_tests.rs"]
mod tests;
