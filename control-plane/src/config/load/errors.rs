//! How I/O failures and the YAML parser's errors become [`ConfigError`]s
//! that name the file, document, line and field.

use std::io::ErrorKind;
use std::path::Path;

use super::depth::{MAX_DEPTH, TooDeep};
use crate::config::error::{ConfigError, Location, Problem};
use crate::config::model::fields::is_not_supported;

pub(super) fn io_error(path: &Path, error: &std::io::Error) -> ConfigError {
    ConfigError::new(
        Location::file(path),
        Problem::Io {
            message: error.to_string(),
            hint: io_hint(error.kind()),
        },
    )
}

/// What to do about a read that failed, by why it failed.
fn io_hint(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidData => "save the file as UTF-8 text (YAML is read as UTF-8)",
        ErrorKind::NotFound => "check that the path exists",
        ErrorKind::PermissionDenied => "make it readable by the control plane's user",
        _ => "check that the path exists and is readable",
    }
}

pub(super) fn too_deep(file: &Path, deep: TooDeep) -> ConfigError {
    ConfigError::new(
        Location {
            line: Some(deep.line),
            ..Location::document(file, deep.document)
        },
        Problem::TooDeep { limit: MAX_DEPTH },
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
    let kind = location
        .resource
        .as_ref()
        .map_or("", |resource| resource.kind.as_str());
    let problem = unknown_field(kind, &path, &message).unwrap_or_else(|| {
        let hint = schema_hint(&message);
        Problem::Schema { message, hint }
    });
    ConfigError::new(
        Location {
            line: inner.location().map(|at| at.line()),
            field,
            ..location
        },
        problem,
    )
}

/// A decoding error about a field the struct does not have, as serde words
/// it (``unknown field `x`, expected one of `a`, `b` ``): a valid Istio
/// field that is not supported, or a misspelling of the nearest field.
/// `path` leads to the field inside a resource of `kind`.
fn unknown_field(kind: &str, path: &str, message: &str) -> Option<Problem> {
    let rest = message.strip_prefix("unknown field `")?;
    let (field, rest) = rest.split_once('`')?;
    let expected: Vec<&str> = rest
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|name| !name.is_empty())
        .collect();
    if is_not_supported(kind, path) {
        return Some(Problem::NotSupported {
            field: field.to_string(),
        });
    }
    let suggestion = expected
        .iter()
        .map(|known| (strsim::damerau_levenshtein(field, known), *known))
        .filter(|(distance, known)| *distance <= known.len().max(field.len()) / 2)
        .min()
        .map(|(_, known)| known.to_string());
    Some(Problem::UnknownField {
        field: field.to_string(),
        suggestion,
        expected: expected.iter().map(|name| name.to_string()).collect(),
    })
}

fn schema_hint(message: &str) -> &'static str {
    if message.starts_with("missing field") {
        "add the field"
    } else if message.starts_with("unknown variant") {
        "use one of the values listed"
    } else if message.starts_with("invalid type") || message.starts_with("invalid value") {
        "give a value of the expected type"
    } else {
        ""
    }
}
