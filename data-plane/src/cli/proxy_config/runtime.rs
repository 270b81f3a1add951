//! ProxyConfig's `runtimeValues`: the Envoy runtime keys Istio's bootstrap
//! layers over its own defaults. The agent reads those that set its
//! connection limits, `overload.global_downstream_max_connections` and
//! `envoy.resource_limits.listener.<listener name>.connection_limit`; any
//! other key is refused by name. As in Istio, a value is a string, and the
//! empty string removes the bootstrap's default (for the global limit, the
//! limit itself).

use std::collections::BTreeMap;

/// Istio's runtime key for the overload manager's global limit.
const GLOBAL_MAX_CONNECTIONS: &str = "overload.global_downstream_max_connections";
/// Envoy's runtime key for one listener's limit is this, the listener's
/// name, then [`LISTENER_LIMIT_SUFFIX`].
const LISTENER_LIMIT_PREFIX: &str = "envoy.resource_limits.listener.";
const LISTENER_LIMIT_SUFFIX: &str = ".connection_limit";

/// The keys read, as the error messages list them.
const READ: &str = "overload.global_downstream_max_connections, envoy.resource_limits.listener.<name>.connection_limit";

/// What `runtimeValues` set.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RuntimeValues {
    /// The global limit, when given: `Some(None)` is the default
    /// removed (no limit).
    pub global_downstream_max_connections: Option<Option<u64>>,
    /// The limits of the listeners named.
    pub listener_connection_limits: BTreeMap<String, u64>,
}

/// A runtime value the agent cannot apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuntimeError {
    #[error(
        "PROXY_CONFIG runtimeValues.{0}: a runtime key this agent does not read; remove it (read: {READ})"
    )]
    Unknown(String),
    #[error(
        "PROXY_CONFIG runtimeValues.{key}: {value:?} is not a number of connections; give a whole number as a string (\"10000\"){unset}",
        unset = if key == GLOBAL_MAX_CONNECTIONS { ", or \"\" for no limit" } else { "" }
    )]
    NotANumber { key: String, value: String },
}

impl RuntimeValues {
    /// Reads `values`, refusing any key not read.
    pub fn read(values: &BTreeMap<String, String>) -> Result<Self, RuntimeError> {
        let mut read = Self::default();
        for (key, value) in values {
            if key == GLOBAL_MAX_CONNECTIONS {
                read.global_downstream_max_connections = Some(match value.as_str() {
                    "" => None,
                    number => Some(connections(key, number)?),
                });
            } else if let Some(listener) = key
                .strip_prefix(LISTENER_LIMIT_PREFIX)
                .and_then(|rest| rest.strip_suffix(LISTENER_LIMIT_SUFFIX))
                .filter(|listener| !listener.is_empty())
            {
                // Istio has no default here: "" leaves the listener unlimited.
                if !value.is_empty() {
                    read.listener_connection_limits
                        .insert(listener.to_string(), connections(key, value)?);
                }
            } else {
                return Err(RuntimeError::Unknown(key.clone()));
            }
        }
        Ok(read)
    }
}

/// A count of connections, as Envoy's runtime reads an integer.
fn connections(key: &str, value: &str) -> Result<u64, RuntimeError> {
    value.trim().parse().map_err(|_| RuntimeError::NotANumber {
        key: key.to_string(),
        value: value.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect()
    }

    #[test]
    fn reads_the_global_limit_and_each_named_listeners() {
        let read = RuntimeValues::read(&values(&[
            ("overload.global_downstream_max_connections", "10000"),
            (
                "envoy.resource_limits.listener.0.0.0.0_8080.connection_limit",
                "100",
            ),
            (
                "envoy.resource_limits.listener.virtualOutbound.connection_limit",
                "2000",
            ),
        ]))
        .unwrap();
        assert_eq!(read.global_downstream_max_connections, Some(Some(10_000)));
        assert_eq!(
            read.listener_connection_limits,
            BTreeMap::from([
                ("0.0.0.0_8080".to_string(), 100),
                ("virtualOutbound".to_string(), 2000),
            ])
        );
    }

    #[test]
    fn nothing_given_changes_nothing_and_an_empty_value_removes_the_default() {
        assert_eq!(
            RuntimeValues::read(&BTreeMap::new()).unwrap(),
            RuntimeValues::default()
        );
        let read = RuntimeValues::read(&values(&[
            ("overload.global_downstream_max_connections", ""),
            ("envoy.resource_limits.listener.a.connection_limit", ""),
        ]))
        .unwrap();
        assert_eq!(read.global_downstream_max_connections, Some(None));
        assert!(read.listener_connection_limits.is_empty());
    }

    #[test]
    fn any_other_key_is_refused_by_name() {
        for key in [
            "re2.max_program_size.error_level",
            "envoy.reloadable_features.http_reject_path_with_fragment",
            "envoy.resource_limits.listener..connection_limit",
            "envoy.resource_limits.listener.a.connection_limits",
            "overload.global_downstream_max_connections ",
        ] {
            let error = RuntimeValues::read(&values(&[(key, "1")]))
                .unwrap_err()
                .to_string();
            assert!(
                error.starts_with(&format!("PROXY_CONFIG runtimeValues.{key}: ")),
                "{error}"
            );
            assert!(error.contains("does not read"), "{error}");
            assert!(
                error.contains("overload.global_downstream_max_connections, envoy.resource_limits.listener.<name>.connection_limit"),
                "{error}"
            );
        }
    }

    #[test]
    fn a_value_that_is_not_a_count_is_refused_with_what_to_write() {
        let error = RuntimeValues::read(&values(&[(GLOBAL_MAX_CONNECTIONS, "lots")]))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("runtimeValues.overload.global_downstream_max_connections: \"lots\"")
                && error.contains("or \"\" for no limit"),
            "{error}"
        );
        for value in ["-1", "1.5", "1e4"] {
            assert!(
                RuntimeValues::read(&values(&[(
                    "envoy.resource_limits.listener.a.connection_limit",
                    value
                )]))
                .is_err(),
                "{value}"
            );
        }
    }
}
