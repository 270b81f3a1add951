//! A Secret that does not decode, worded from the field's path and a fixed text only: the parser's own message may quote the value, which may be key material.

use crate::config::error::{ConfigError, Location, Problem};
use crate::config::model::secret::NOT_BASE64;

/// The schema error of a Secret document: the field path (under `within`,
/// `metadata.` when the metadata was decoded alone) and line the parser
/// found, and what that field must hold. Never the parser's message.
pub(super) fn secret_schema_error(
    location: Location,
    prefix: &str,
    within: &str,
    error: &serde_path_to_error::Error<serde_yaml::Error>,
) -> ConfigError {
    let path = error.path().to_string();
    let path = if path == "." {
        within.trim_end_matches('.').to_string()
    } else {
        format!("{within}{path}")
    };
    let top = path.split('.').next().unwrap_or_default();
    let message = match top {
        "data" if let Some(ours) = not_base64(&error.inner().to_string()) => ours.to_string(),
        "data" => "data must be a map of key to base64-encoded value".to_string(),
        "stringData" => "stringData must be a map of key to text value".to_string(),
        "type" => "type must be a string (kubernetes.io/tls or Opaque)".to_string(),
        "immutable" => "immutable must be true or false".to_string(),
        "metadata" => {
            "metadata must hold name and namespace as strings, labels and annotations as maps of strings"
                .to_string()
        }
        _ => "the Secret does not match Kubernetes' Secret schema (type, data, stringData)"
            .to_string(),
    };
    let field = if path.is_empty() {
        (!prefix.is_empty()).then(|| prefix.trim_end_matches('.').to_string())
    } else {
        Some(format!("{prefix}{path}"))
    };
    ConfigError::new(
        Location {
            line: error.inner().location().map(|at| at.line()),
            field,
            ..location
        },
        Problem::Schema { message, hint: "" },
    )
}

/// The model's own message about a `data` value that is not base64
/// (`data.<key> is not base64; ...`): a key name and a fixed text.
fn not_base64(message: &str) -> Option<&str> {
    let start = message.find("data.")?;
    let end = message.find(NOT_BASE64)? + NOT_BASE64.len();
    message.get(start..end)
}

#[cfg(test)]
mod tests;
