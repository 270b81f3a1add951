//! Envoy's DataSource: bytes from a file, inline, or an environment variable.

use proto::pb::envoy::config::core::v3::{DataSource, data_source};

/// Why a DataSource could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DataSourceError {
    #[error("cannot read {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("environment variable {0} is not set")]
    MissingVariable(String),
    #[error("empty data source")]
    Empty,
}

/// The bytes a DataSource holds.
pub fn read(source: &DataSource) -> Result<Vec<u8>, DataSourceError> {
    match &source.specifier {
        Some(data_source::Specifier::Filename(path)) => {
            std::fs::read(path).map_err(|error| DataSourceError::Read {
                path: path.clone(),
                error,
            })
        }
        Some(data_source::Specifier::InlineBytes(bytes)) => Ok(bytes.clone()),
        Some(data_source::Specifier::InlineString(text)) => Ok(text.clone().into_bytes()),
        Some(data_source::Specifier::EnvironmentVariable(var)) => std::env::var(var)
            .map(String::into_bytes)
            .map_err(|_| DataSourceError::MissingVariable(var.clone())),
        None => Err(DataSourceError::Empty),
    }
}
