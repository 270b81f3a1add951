//! A file or stdout access logger's `log_format` → a compiled
//! [`LogFormat`]: a text format (inline) or a JSON format, every command
//! operator one the agent renders; none is Envoy's default text line.

use proto::pb::envoy::config::core::v3::{
    SubstitutionFormatString, data_source, substitution_format_string,
};

use super::At;
use crate::model::Error;
use crate::model::log_format::{ENVOY_DEFAULT_FORMAT, LogFormat, TextFormat, json_object};

/// The format of a logger whose `log_format` (at `at`) is `format`.
pub(super) fn log_format(
    format: Option<&SubstitutionFormatString>,
    at: &At<'_>,
) -> Result<LogFormat, Error> {
    let Some(format) = format else {
        return Ok(LogFormat::Text(
            TextFormat::parse(ENVOY_DEFAULT_FORMAT).map_err(|reason| at.error(reason))?,
        ));
    };
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
        None => ENVOY_DEFAULT_FORMAT,
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
        Some(substitution_format_string::Format::JsonFormat(fields)) => {
            return json_object(fields)
                .map(LogFormat::Json)
                .map_err(|reason| at.field("json_format").error(reason));
        }
    };
    TextFormat::parse(text)
        .map(LogFormat::Text)
        .map_err(|reason| at.error(reason))
}
