//! The mesh config file: MeshConfig YAML as Istio's `mesh` key holds it, or
//! the whole `istio` ConfigMap.

use std::fs;
use std::path::Path;

use serde::Deserialize;
use serde::de::Deserializer;
use serde_yaml::Value;

use super::depth::check_depth;
use super::errors::{io_error, schema_error, syntax_error, too_deep};
use crate::config::error::{ConfigError, ConfigErrors, Location, Problem};
use crate::config::model::{AccessLogEncoding, MeshConfig};
use crate::translate::access_log::json_format;

/// Reads the mesh config file: either MeshConfig YAML as Istio's `mesh` key
/// holds it, or the whole `istio` ConfigMap whose `data.mesh` holds it.
pub fn load_mesh_file(path: &Path) -> Result<MeshConfig, ConfigErrors> {
    let text = fs::read_to_string(path).map_err(|error| io_error(path, &error))?;
    parse_mesh(path, &text)
}

/// Parses mesh config text; `file` only names it in errors. An empty text
/// gives Istio's defaults.
pub fn parse_mesh(file: &Path, text: &str) -> Result<MeshConfig, ConfigErrors> {
    check_depth(text).map_err(|deep| too_deep(file, deep))?;
    let Some(document) = serde_yaml::Deserializer::from_str(text).next() else {
        return Ok(MeshConfig::default());
    };
    let value = Value::deserialize(document).map_err(|error| syntax_error(file, 0, &error))?;
    let is_config_map = value.get("kind").and_then(Value::as_str) == Some("ConfigMap");
    if !is_config_map {
        let Some(document) = serde_yaml::Deserializer::from_str(text).next() else {
            return Ok(MeshConfig::default());
        };
        return decode_mesh(document, Location::file(file), "");
    }
    let Some(mesh) = value
        .get("data")
        .and_then(|data| data.get("mesh"))
        .and_then(Value::as_str)
    else {
        let location = Location::file(file).at("data.mesh");
        return Err(ConfigError::new(location, Problem::MeshConfigMapWithoutMesh).into());
    };
    check_depth(mesh).map_err(|deep| {
        let mut error = too_deep(file, deep);
        error.location.line = None;
        error.location.field = Some("data.mesh".into());
        error
    })?;
    let Some(document) = serde_yaml::Deserializer::from_str(mesh).next() else {
        return Ok(MeshConfig::default());
    };
    // Lines inside the embedded string would not match the file's lines.
    decode_mesh(document, Location::file(file), "data.mesh.").map_err(|mut errors| {
        for error in &mut errors.0 {
            error.location.line = None;
            if error.location.field.is_none() {
                error.location.field = Some("data.mesh".into());
            }
        }
        errors
    })
}

fn decode_mesh<'de, D>(
    document: D,
    location: Location,
    prefix: &str,
) -> Result<MeshConfig, ConfigErrors>
where
    D: Deserializer<'de, Error = serde_yaml::Error>,
{
    let mesh = match serde_path_to_error::deserialize::<_, Option<MeshConfig>>(document) {
        Ok(mesh) => mesh.unwrap_or_default(),
        Err(error) => return Err(schema_error(location, prefix, &error).into()),
    };
    let json = mesh.access_log_encoding == AccessLogEncoding::Json;
    if json
        && !mesh.access_log_format.is_empty()
        && let Err(error) = json_format(&mesh.access_log_format)
    {
        let location = Location {
            field: Some(format!("{prefix}accessLogFormat")),
            ..location
        };
        let problem = Problem::Schema {
            message: error.to_string(),
            hint: "",
        };
        return Err(ConfigError::new(location, problem).into());
    }
    Ok(mesh)
}
