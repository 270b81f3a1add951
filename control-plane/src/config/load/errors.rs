//! How I/O failures and the YAML parser's errors become [`ConfigError`]s
//! that name the file, document, line and field.

use std::path::Path;

use crate::config::error::{ConfigError, Location, Problem};

pub(super) fn io_error(path: &Path, error: &std::io::Error) -> ConfigError {
    ConfigError::new(
        Location::file(path),
        Problem::Io {
            message: error.to_string(),
        },
    )
}

pub(super) fn syntax_error(file: &Path, document: usize, error: &serde_yaml::Error) -> ConfigError {
    ConfigError::new(
        Location {
            line: error.location().map(|location| location.line()),
            ..Location::document(file, document)
        },
        Problem::Syntax {
            message: error.to_string(),
        },
    )
}

/// A schema error: the field path comes from `serde_path_to_error`, the line
/// from the YAML parser; the message is the parser's without those two.
pub(super) fn schema_error(
    location: Location,
    prefix: &str,
    error: &serde_path_to_error::Error<serde_yaml::Error>,
) -> ConfigError {
    let path = error.path().to_string();
    let inner = error.inner();
    let mut message = inner.to_string();
    if let Some(at) = inner.location() {
        let suffix = format!(" at line {} column {}", at.line(), at.column());
        if let Some(stripped) = message.strip_suffix(&suffix) {
            message = stripped.to_string();
        }
    }
    // The parser names the path too, sometimes only its parent.
    if let Some((head, rest)) = message.split_once(": ")
        && (head == "." || path.starts_with(head))
    {
        message = rest.to_string();
    }
    let field = (path != ".").then(|| format!("{prefix}{path}"));
    let field =
        field.or_else(|| (!prefix.is_empty()).then(|| prefix.trim_end_matches('.').to_string()));
    let hint = schema_hint(&message);
    ConfigError::new(
        Location {
            line: inner.location().map(|at| at.line()),
            field,
            ..location
        },
        Problem::Schema { message, hint },
    )
}

fn schema_hint(message: &str) -> &'static str {
    if message.starts_with("unknown field") {
        "fix the spelling (Istio field names are camelCase, as in its reference) or remove the field"
    } else if message.starts_with("missing field") {
        "add the field"
    } else if message.starts_with("unknown variant") {
        "use one of the values listed"
    } else if message.starts_with("invalid type") || message.starts_with("invalid value") {
        "give a value of the expected type"
    } else {
        ""
    }
}
