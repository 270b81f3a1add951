//! `PROXY_CONFIG` (or `--proxy-config`): Istio's ProxyConfig, YAML or
//! JSON, as injection hands it to pilot-agent. The fields this agent
//! honours are read; any other field is refused by name, never ignored.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_yaml::{Mapping, Value};

mod runtime;

use runtime::{RuntimeError, RuntimeValues};

/// The fields of Istio's ProxyConfig the agent applies; each yields to
/// the flag that says the same.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxyConfig {
    /// The control plane's address (`--xds-addr`).
    pub discovery_address: Option<String>,
    /// The admin port on loopback (`--admin-addr`).
    pub proxy_admin_port: Option<u16>,
    /// pilot-agent's status port on loopback (`--status-addr`).
    pub status_port: Option<u16>,
    /// Worker threads; 0 is one per CPU (`--concurrency`).
    pub concurrency: Option<usize>,
    /// How long a drain lasts (`--drain-time-s`).
    #[serde(default, deserialize_with = "duration")]
    pub drain_duration: Option<Duration>,
    /// How long the agent drains on SIGTERM before it exits
    /// (`--termination-drain-duration`).
    #[serde(default, deserialize_with = "duration")]
    pub termination_drain_duration: Option<Duration>,
    /// Node metadata, `ISTIO_META_<KEY>: value` (the environment's own
    /// variables win).
    #[serde(default)]
    pub proxy_metadata: BTreeMap<String, String>,
    /// Envoy runtime keys, as written (read into `runtime`).
    #[serde(default)]
    runtime_values: BTreeMap<String, String>,
    /// What `runtimeValues` set: the connection limits
    /// (`--global-downstream-max-connections`,
    /// `--listener-connection-limit`).
    #[serde(skip)]
    pub runtime: RuntimeValues,
}

/// The ProxyConfig fields read above.
const HONOURED: &[&str] = &[
    "discoveryAddress",
    "proxyAdminPort",
    "statusPort",
    "concurrency",
    "drainDuration",
    "terminationDrainDuration",
    "proxyMetadata",
    "runtimeValues",
];

/// Istio ProxyConfig fields this agent does not apply.
const NOT_APPLIED: &[&str] = &[
    "configPath",
    "binaryPath",
    "serviceCluster",
    "parentShutdownDuration",
    "discoveryRefreshDelay",
    "zipkinAddress",
    "statsdUdpAddress",
    "envoyMetricsServiceAddress",
    "availabilityZone",
    "controlPlaneAuthPolicy",
    "customConfigFile",
    "statNameLength",
    "proxyBootstrapTemplatePath",
    "interceptionMode",
    "tracing",
    "sds",
    "envoyAccessLogService",
    "envoyMetricsService",
    "extraStatTags",
    "gatewayTopology",
    "meshId",
    "readinessProbe",
    "proxyStatsMatcher",
    "holdApplicationUntilProxyStarts",
    "caCertificatesPem",
    "image",
    "privateKeyProvider",
    "proxyHeaders",
    "tracingServiceName",
    "fileFlushInterval",
    "fileFlushMinSizeKb",
];

/// A ProxyConfig the agent cannot apply as written.
#[derive(Debug, thiserror::Error)]
pub enum ProxyConfigError {
    #[error("PROXY_CONFIG is not YAML or JSON: {0}")]
    Syntax(serde_yaml::Error),
    #[error("PROXY_CONFIG must be a mapping of ProxyConfig fields")]
    NotAMapping,
    #[error(
        "PROXY_CONFIG field {0}: an Istio ProxyConfig field this agent does not apply; remove it (applied: {fields})",
        fields = HONOURED.join(", ")
    )]
    NotApplied(String),
    #[error(
        "PROXY_CONFIG field {0}: not a ProxyConfig field (applied: {fields})",
        fields = HONOURED.join(", ")
    )]
    Unknown(String),
    #[error("PROXY_CONFIG: {0}")]
    Value(serde_yaml::Error),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(
        "PROXY_CONFIG proxyMetadata.{0}: only ISTIO_META_* node metadata is applied from here; set {0} in the agent's environment or flags"
    )]
    Metadata(String),
}

impl ProxyConfig {
    /// Reads `text`; an empty text is an empty ProxyConfig.
    pub fn parse(text: &str) -> Result<Self, ProxyConfigError> {
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        let value: Value = serde_yaml::from_str(text).map_err(ProxyConfigError::Syntax)?;
        let Value::Mapping(fields) = &value else {
            return Err(ProxyConfigError::NotAMapping);
        };
        check_fields(fields)?;
        let mut config: Self = serde_yaml::from_value(value).map_err(ProxyConfigError::Value)?;
        config.runtime = RuntimeValues::read(&config.runtime_values)?;
        if let Some(key) = config
            .proxy_metadata
            .keys()
            .find(|key| !key.starts_with(super::node_args::META_PREFIX))
        {
            return Err(ProxyConfigError::Metadata(key.clone()));
        }
        Ok(config)
    }
}

fn check_fields(fields: &Mapping) -> Result<(), ProxyConfigError> {
    for key in fields.keys() {
        let name = match key {
            Value::String(name) => name.as_str(),
            other => return Err(ProxyConfigError::Unknown(format!("{other:?}"))),
        };
        if HONOURED.contains(&name) {
            continue;
        }
        return Err(if NOT_APPLIED.contains(&name) {
            ProxyConfigError::NotApplied(name.to_string())
        } else {
            ProxyConfigError::Unknown(name.to_string())
        });
    }
    Ok(())
}

/// A protobuf JSON duration (`45s`, `0.5s`), or a humane one (`1m`).
fn duration<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Duration>, D::Error> {
    let text = String::deserialize(deserializer)?;
    let seconds = text
        .strip_suffix('s')
        .and_then(|number| number.parse::<f64>().ok());
    match seconds {
        Some(seconds) => Duration::try_from_secs_f64(seconds)
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("{text:?} is not a duration"))),
        None => humantime::parse_duration(&text)
            .map(Some)
            .map_err(|error| serde::de::Error::custom(format!("{text:?}: {error}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_fields_it_applies_from_yaml_or_json() {
        let yaml = "discoveryAddress: istiod.istio-system.svc:15012\n\
                    proxyAdminPort: 15100\n\
                    statusPort: 15120\n\
                    concurrency: 4\n\
                    drainDuration: 45s\n\
                    terminationDrainDuration: 5.5s\n\
                    proxyMetadata:\n  ISTIO_META_DNS_CAPTURE: \"true\"\n";
        let config = ProxyConfig::parse(yaml).unwrap();
        assert_eq!(
            config.discovery_address.as_deref(),
            Some("istiod.istio-system.svc:15012")
        );
        assert_eq!(config.proxy_admin_port, Some(15100));
        assert_eq!(config.status_port, Some(15120));
        assert_eq!(config.concurrency, Some(4));
        assert_eq!(config.drain_duration, Some(Duration::from_secs(45)));
        assert_eq!(
            config.termination_drain_duration,
            Some(Duration::from_millis(5500))
        );
        assert_eq!(config.proxy_metadata["ISTIO_META_DNS_CAPTURE"], "true");
        assert_eq!(config.runtime, RuntimeValues::default());
        let json = r#"{"discoveryAddress":"10.0.0.1:15012","drainDuration":"1m"}"#;
        let config = ProxyConfig::parse(json).unwrap();
        assert_eq!(config.discovery_address.as_deref(), Some("10.0.0.1:15012"));
        assert_eq!(config.drain_duration, Some(Duration::from_secs(60)));
        assert_eq!(ProxyConfig::parse("  ").unwrap(), ProxyConfig::default());
    }

    #[test]
    fn refuses_what_it_cannot_apply_by_name() {
        let error = ProxyConfig::parse("tracing:\n  zipkin:\n    address: zipkin:9411\n")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("field tracing") && error.contains("does not apply"),
            "{error}"
        );
        let error = ProxyConfig::parse("{\"discoveryAdress\": \"x:1\"}")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("discoveryAdress") && error.contains("not a ProxyConfig field"),
            "{error}"
        );
        let error = ProxyConfig::parse("proxyMetadata:\n  PROXY_XDS_VIA_AGENT: \"true\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("proxyMetadata.PROXY_XDS_VIA_AGENT"),
            "{error}"
        );
        assert!(ProxyConfig::parse("drainDuration: soon").is_err());
        assert!(ProxyConfig::parse("drainDuration: -1s").is_err());
        assert!(ProxyConfig::parse("- a").is_err());
        assert!(ProxyConfig::parse("proxyAdminPort: 70000").is_err());
    }

    #[test]
    fn reads_the_connection_limits_of_runtime_values_and_refuses_other_keys() {
        let yaml = "runtimeValues:\n  \"overload.global_downstream_max_connections\": \"10000\"\n";
        let config = ProxyConfig::parse(yaml).unwrap();
        assert_eq!(
            config.runtime.global_downstream_max_connections,
            Some(Some(10_000))
        );
        let json = r#"{"runtimeValues":{"envoy.resource_limits.listener.0.0.0.0_80.connection_limit":"3"}}"#;
        let config = ProxyConfig::parse(json).unwrap();
        assert_eq!(config.runtime.listener_connection_limits["0.0.0.0_80"], 3);
        let error =
            ProxyConfig::parse("runtimeValues:\n  re2.max_program_size.error_level: \"100\"\n")
                .unwrap_err()
                .to_string();
        assert!(
            error.starts_with("PROXY_CONFIG runtimeValues.re2.max_program_size.error_level: ")
                && error.contains("does not read"),
            "{error}"
        );
        // Istio's API takes strings only.
        assert!(
            ProxyConfig::parse(
                "runtimeValues:\n  overload.global_downstream_max_connections: 10000\n"
            )
            .is_err()
        );
    }
}
