//! A compiled access log format: Envoy's substitution format string (a text
//! line or a JSON object of command operators) parsed once, at config time,
//! into pieces the proxy renders for each request or connection.

mod json;
mod operator;
mod start_time;
#[cfg(test)]
mod tests;

pub use json::{JsonObject, JsonValue, json_object, write_json_string};
pub use operator::{Operator, RequestHeader, Value};
pub use start_time::{TimeFormat, TimePiece};

/// How a logger writes each entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogFormat {
    /// A text line, exactly as the format spells it (its newline included).
    Text(TextFormat),
    /// One JSON object per line, its keys sorted, as Envoy writes it.
    Json(JsonObject),
}

/// A format string: literal text and command operators, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextFormat {
    pub pieces: Box<[Piece]>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Literal(Box<str>),
    Operator(Operator),
}

/// Envoy's default format, for a file logger without `log_format`.
pub const ENVOY_DEFAULT_FORMAT: &str = "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" \
%RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% \
%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" \
\"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\"\n";

impl TextFormat {
    /// Parses `format` as Envoy reads it (`%NAME%`, `%NAME(arg)%`,
    /// `%NAME(arg):LEN%`, `%%` for a literal `%`), or says why Envoy would
    /// refuse it, or which operator the agent has no value for.
    pub fn parse(format: &str) -> Result<Self, String> {
        let mut pieces = Vec::new();
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
            let offset = format.len() - rest.len() + start;
            let (operator, tail) = Operator::parse(after, offset)?;
            if !literal.is_empty() {
                pieces.push(Piece::Literal(std::mem::take(&mut literal).into()));
            }
            pieces.push(Piece::Operator(operator));
            rest = tail;
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            pieces.push(Piece::Literal(literal.into()));
        }
        Ok(Self {
            pieces: pieces.into(),
        })
    }

    /// The operator this format consists of alone (JSON writes its value
    /// typed: a number, or null when missing).
    pub fn sole_operator(&self) -> Option<&Operator> {
        match &*self.pieces {
            [Piece::Operator(operator)] => Some(operator),
            _ => None,
        }
    }
}
