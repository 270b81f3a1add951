//! A file or stdout access logger's `log_format`, read as Envoy reads its
//! command operators (`%NAME%`, `%NAME(arg)%`, `%NAME(arg):LEN%`, `%%`).
//! The agent writes Istio's text line: that format (or none, Envoy's
//! default) is accepted; an operator the agent has no value for is refused
//! by name, and so is any other format, which it would not render.

use proto::pb::envoy::config::core::v3::{
    SubstitutionFormatString, data_source, substitution_format_string,
};
use shared::access_log::ISTIO_TEXT_FORMAT;

use super::At;
use crate::model::Error;

/// The header operators (`REQ`/`RESP` and their header) the agent keeps a
/// value for.
const HEADERS: &[(&str, &str)] = &[
    ("REQ", ":METHOD"),
    ("REQ", ":PATH"),
    ("REQ", "X-ENVOY-ORIGINAL-PATH?:PATH"),
    ("REQ", ":AUTHORITY"),
    ("REQ", "X-FORWARDED-FOR"),
    ("REQ", "USER-AGENT"),
    ("REQ", "X-REQUEST-ID"),
    ("RESP", "X-ENVOY-UPSTREAM-SERVICE-TIME"),
];

/// The operators without an argument the agent has a value for.
const PLAIN: &[&str] = &[
    "START_TIME",
    "PROTOCOL",
    "RESPONSE_CODE",
    "RESPONSE_FLAGS",
    "RESPONSE_CODE_DETAILS",
    "CONNECTION_TERMINATION_DETAILS",
    "UPSTREAM_TRANSPORT_FAILURE_REASON",
    "BYTES_RECEIVED",
    "BYTES_SENT",
    "DURATION",
    "UPSTREAM_HOST",
    "UPSTREAM_CLUSTER",
    "UPSTREAM_CLUSTER_RAW",
    "UPSTREAM_LOCAL_ADDRESS",
    "DOWNSTREAM_LOCAL_ADDRESS",
    "DOWNSTREAM_REMOTE_ADDRESS",
    "REQUESTED_SERVER_NAME",
    "ROUTE_NAME",
];

/// One command operator of a format, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Operator {
    pub(super) name: String,
    pub(super) argument: Option<String>,
    pub(super) max_length: Option<usize>,
}

impl Operator {
    fn spelled(&self) -> String {
        let mut text = format!("%{}", self.name);
        if let Some(argument) = &self.argument {
            text.push_str(&format!("({argument})"));
        }
        if let Some(length) = self.max_length {
            text.push_str(&format!(":{length}"));
        }
        text.push('%');
        text
    }

    /// Whether the agent has a value for it.
    fn rendered(&self) -> bool {
        match &self.argument {
            None => PLAIN.contains(&self.name.as_str()),
            Some(header) => HEADERS
                .iter()
                .any(|(op, name)| *op == self.name && name.eq_ignore_ascii_case(header)),
        }
    }
}

/// The operators of `format`, or why Envoy would refuse it.
pub(super) fn operators(format: &str) -> Result<Vec<Operator>, String> {
    let mut found = Vec::new();
    let mut rest = format;
    while let Some(start) = rest.find('%') {
        let after = &rest[start + 1..];
        if let Some(tail) = after.strip_prefix('%') {
            rest = tail;
            continue;
        }
        let name_len = after
            .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(after.len());
        let name = &after[..name_len];
        if name.is_empty() {
            return Err(format!(
                "a '%' at byte {start} starts no command operator (a literal % is %%)"
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
        found.push(Operator {
            name: name.to_string(),
            argument,
            max_length,
        });
    }
    Ok(found)
}

/// Checks a logger's `log_format` (at `at`): none, or Istio's text line.
pub(super) fn check(format: &SubstitutionFormatString, at: &At<'_>) -> Result<(), Error> {
    let unsupported = [
        ("omit_empty_values", format.omit_empty_values),
        ("content_type", !format.content_type.is_empty()),
        ("formatters", !format.formatters.is_empty()),
        ("json_format_options", format.json_format_options.is_some()),
    ];
    if let Some((field, _)) = unsupported.iter().find(|(_, set)| *set) {
        return Err(at
            .field(field)
            .error("not supported by the agent's access log"));
    }
    #[allow(deprecated)]
    let text = match &format.format {
        None => return Ok(()),
        Some(substitution_format_string::Format::TextFormat(text)) => text.as_str(),
        Some(substitution_format_string::Format::TextFormatSource(source)) => {
            match &source.specifier {
                Some(data_source::Specifier::InlineString(text)) => text.as_str(),
                _ => {
                    return Err(at
                        .field("text_format_source")
                        .error("only an inline_string format is supported"));
                }
            }
        }
        Some(substitution_format_string::Format::JsonFormat(_)) => {
            return Err(at.field("json_format").error(
                "the agent writes Istio's text line only: JSON access logs (accessLogEncoding JSON) are not rendered",
            ));
        }
    };
    let found = operators(text).map_err(|reason| at.error(reason))?;
    let missing: Vec<String> = found
        .iter()
        .filter(|operator| !operator.rendered())
        .map(Operator::spelled)
        .collect();
    if !missing.is_empty() {
        return Err(at.error(format!(
            "command operators the agent cannot render: {}",
            missing.join(", ")
        )));
    }
    if text != ISTIO_TEXT_FORMAT {
        return Err(at.error(
            "the agent writes Istio's text line only: a custom accessLogFormat is not rendered",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_envoys_operator_syntax() {
        let found = operators("%%[%START_TIME%] %REQ(X-ENVOY-ORIGINAL-PATH?:PATH):20% x").unwrap();
        assert_eq!(
            found,
            vec![
                Operator {
                    name: "START_TIME".into(),
                    argument: None,
                    max_length: None
                },
                Operator {
                    name: "REQ".into(),
                    argument: Some("X-ENVOY-ORIGINAL-PATH?:PATH".into()),
                    max_length: Some(20)
                },
            ]
        );
        assert!(operators("100% sure").is_err());
        assert!(operators("%REQ(:PATH%").is_err());
        assert!(operators("%DURATION").is_err());
    }

    #[test]
    fn istios_format_is_rendered_whole() {
        let found = operators(ISTIO_TEXT_FORMAT).unwrap();
        assert_eq!(found.len(), 24);
        assert!(found.iter().all(Operator::rendered), "{found:?}");
        let unknown = operators("%REQ(X-B3-TRACEID)% %FILTER_STATE(x)% %DURATION%").unwrap();
        let missing: Vec<String> = unknown
            .iter()
            .filter(|o| !o.rendered())
            .map(Operator::spelled)
            .collect();
        assert_eq!(missing, ["%REQ(X-B3-TRACEID)%", "%FILTER_STATE(x)%"]);
    }
}
