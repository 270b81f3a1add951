//! Who the proxy is, as pilot-agent learns it: flags, or pilot-agent's
//! variables (`INSTANCE_IP`, `POD_NAME`, `POD_NAMESPACE`,
//! `SERVICE_ACCOUNT`); node metadata from `ISTIO_META_*` (strings) and
//! `ISTIO_METAJSON_*` (JSON objects) variables, the ProxyConfig's
//! `proxyMetadata` and `--node-metadata`.

use std::collections::BTreeMap;

use clap::Args;
use proto::wkt::{Struct, Value, value::Kind};
use shared::node;

/// Environment variables that become node metadata, prefix stripped.
pub const META_PREFIX: &str = "ISTIO_META_";
/// Environment variables that become node metadata objects.
pub const META_JSON_PREFIX: &str = "ISTIO_METAJSON_";

#[derive(Args)]
pub struct NodeArgs {
    /// The full node id; otherwise built from --ip, --pod and --namespace.
    #[arg(long)]
    pub node_id: Option<String>,
    /// The workload's IP address.
    #[arg(long, env = "INSTANCE_IP", default_value = "127.0.0.1")]
    pub ip: String,
    /// The workload's (pod's) name.
    #[arg(long, env = "POD_NAME", default_value = "app")]
    pub pod: String,
    /// The workload's namespace.
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub namespace: String,
    /// Workload labels, k=v,k2=v2 [default: ISTIO_METAJSON_LABELS, a JSON
    /// object of strings].
    #[arg(long)]
    pub labels: Option<String>,
    /// The service account this proxy runs as (node metadata
    /// SERVICE_ACCOUNT); it must be the token's.
    #[arg(long, env = "SERVICE_ACCOUNT", default_value = "default")]
    pub service_account: String,
    /// More node metadata, KEY=VALUE, repeatable; wins over
    /// ISTIO_META_KEY=VALUE in the environment, which wins over the
    /// ProxyConfig's proxyMetadata.
    #[arg(long = "node-metadata", value_name = "KEY=VALUE")]
    pub node_metadata: Vec<String>,
}

/// Node metadata that cannot be sent as given.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("--node-metadata {0:?} must be KEY=VALUE")]
    NotAPair(String),
    #[error("node metadata {key} comes from {instead}; it cannot be set as metadata")]
    Reserved { key: String, instead: &'static str },
    #[error("{variable} must be a JSON object of strings: {reason}")]
    Json { variable: String, reason: String },
    #[error("{variable} labels: {source}")]
    Labels {
        variable: String,
        source: node::NodeIdError,
    },
    #[error("node metadata DNS_CAPTURE is {0:?}: expected true or false")]
    DnsCapture(String),
}

/// The node metadata gathered from every source.
#[derive(Debug, Default, PartialEq)]
pub struct NodeMetadata {
    /// Sent as they are.
    pub fields: BTreeMap<String, Value>,
    /// `ISTIO_METAJSON_LABELS`, the workload's labels.
    pub labels: Option<BTreeMap<String, String>>,
    /// `DNS_CAPTURE` said true.
    pub dns_capture: bool,
}

/// Which flag or variable sets a key the agent sends itself.
fn reserved(key: &str) -> Option<&'static str> {
    match key {
        node::META_NAMESPACE => Some("--namespace (POD_NAMESPACE)"),
        node::META_INSTANCE_IPS => Some("--ip (INSTANCE_IP)"),
        node::META_SERVICE_ACCOUNT => Some("--service-account (SERVICE_ACCOUNT)"),
        node::META_LABELS => Some("--labels (ISTIO_METAJSON_LABELS)"),
        _ => None,
    }
}

/// Gathers node metadata: `proxy_metadata` (the ProxyConfig's), then the
/// `ISTIO_META_*` and `ISTIO_METAJSON_*` variables of `environment`, then
/// `flags` (`KEY=VALUE`), each later source winning.
pub fn node_metadata(
    proxy_metadata: &BTreeMap<String, String>,
    environment: impl IntoIterator<Item = (String, String)>,
    flags: &[String],
) -> Result<NodeMetadata, MetadataError> {
    let mut strings: BTreeMap<String, String> = BTreeMap::new();
    let mut objects: BTreeMap<String, (String, BTreeMap<String, String>)> = BTreeMap::new();
    let from_config = proxy_metadata
        .iter()
        .map(|(name, value)| (name.clone(), value.clone()));
    for (name, value) in from_config.chain(environment) {
        if let Some(key) = name.strip_prefix(META_JSON_PREFIX) {
            let object = serde_json::from_str(&value).map_err(|error| MetadataError::Json {
                variable: name.clone(),
                reason: error.to_string(),
            })?;
            objects.insert(key.to_string(), (name.clone(), object));
        } else if let Some(key) = name.strip_prefix(META_PREFIX) {
            strings.insert(key.to_string(), value);
        }
    }
    for flag in flags {
        let (key, value) = flag
            .split_once('=')
            .ok_or_else(|| MetadataError::NotAPair(flag.clone()))?;
        strings.insert(key.to_string(), value.to_string());
    }
    let mut metadata = NodeMetadata::default();
    if let Some((variable, labels)) = objects.remove(node::META_LABELS) {
        for key in labels.keys() {
            node::parse_labels(&format!("{key}=x")).map_err(|source| MetadataError::Labels {
                variable: variable.clone(),
                source,
            })?;
        }
        metadata.labels = Some(labels);
    }
    if let Some(value) = strings.remove(node::META_DNS_CAPTURE) {
        metadata.dns_capture = match value.to_ascii_lowercase().as_str() {
            "true" | "1" => true,
            "false" | "0" | "" => false,
            _ => return Err(MetadataError::DnsCapture(value)),
        };
    }
    let keys = strings.keys().chain(objects.keys());
    if let Some((key, instead)) = keys
        .filter_map(|key| reserved(key).map(|instead| (key, instead)))
        .next()
    {
        return Err(MetadataError::Reserved {
            key: key.clone(),
            instead,
        });
    }
    let string = |s: String| Value {
        kind: Some(Kind::StringValue(s)),
    };
    metadata.fields = strings
        .into_iter()
        .map(|(key, value)| (key, string(value)))
        .chain(objects.into_iter().map(|(key, (_, object))| {
            let fields = object.into_iter().map(|(k, v)| (k, string(v))).collect();
            let value = Value {
                kind: Some(Kind::StructValue(Struct { fields })),
            };
            (key, value)
        }))
        .collect();
    Ok(metadata)
}

/// The process's environment, its variables that are not UTF-8 left out.
pub fn environment() -> impl Iterator<Item = (String, String)> {
    std::env::vars_os()
        .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn text(value: &str) -> Value {
        Value {
            kind: Some(Kind::StringValue(value.to_string())),
        }
    }

    #[test]
    fn istio_meta_variables_become_metadata_with_the_prefix_stripped() {
        let metadata = node_metadata(
            &BTreeMap::new(),
            vars(&[
                ("ISTIO_META_CLUSTER_ID", "Kubernetes"),
                ("NOT_AN_ISTIO_META_FOO", "bar"),
                ("ISTIO_META_DNS_CAPTURE", "true"),
                ("ISTIO_METAJSON_LABELS", r#"{"app":"sleep","version":"v1"}"#),
                ("ISTIO_METAJSON_ANNOTATIONS", r#"{"a.io/b":"c"}"#),
            ]),
            &[],
        )
        .unwrap();
        assert_eq!(metadata.fields["CLUSTER_ID"], text("Kubernetes"));
        assert!(!metadata.fields.contains_key("NOT_AN_ISTIO_META_FOO"));
        assert!(!metadata.fields.contains_key("FOO"));
        assert!(metadata.dns_capture);
        assert!(
            !metadata.fields.contains_key("DNS_CAPTURE"),
            "sent by the agent"
        );
        let labels = metadata.labels.unwrap();
        assert_eq!(labels["app"], "sleep");
        assert!(matches!(
            &metadata.fields["ANNOTATIONS"].kind,
            Some(Kind::StructValue(s)) if s.fields["a.io/b"] == text("c")
        ));
    }

    #[test]
    fn flags_beat_the_environment_which_beats_proxy_metadata() {
        let proxy_metadata = BTreeMap::from([
            ("ISTIO_META_MESH_ID".to_string(), "from-config".to_string()),
            ("ISTIO_META_NETWORK".to_string(), "from-config".to_string()),
            ("ISTIO_META_OWNER".to_string(), "from-config".to_string()),
        ]);
        let metadata = node_metadata(
            &proxy_metadata,
            vars(&[
                ("ISTIO_META_MESH_ID", "from-env"),
                ("ISTIO_META_NETWORK", "from-env"),
            ]),
            &["MESH_ID=from-flag".to_string()],
        )
        .unwrap();
        assert_eq!(metadata.fields["MESH_ID"], text("from-flag"));
        assert_eq!(metadata.fields["NETWORK"], text("from-env"));
        assert_eq!(metadata.fields["OWNER"], text("from-config"));
    }

    #[test]
    fn refuses_what_it_cannot_send() {
        let refuse = |env: &[(&str, &str)], flags: &[&str]| {
            let flags: Vec<String> = flags.iter().map(ToString::to_string).collect();
            node_metadata(&BTreeMap::new(), vars(env), &flags)
                .unwrap_err()
                .to_string()
        };
        let error = refuse(&[("ISTIO_META_NAMESPACE", "x")], &[]);
        assert!(
            error.contains("NAMESPACE") && error.contains("POD_NAMESPACE"),
            "{error}"
        );
        let error = refuse(&[], &["SERVICE_ACCOUNT=x"]);
        assert!(error.contains("SERVICE_ACCOUNT"), "{error}");
        let error = refuse(&[], &["NOEQUALS"]);
        assert!(error.contains("KEY=VALUE"), "{error}");
        let error = refuse(&[("ISTIO_METAJSON_LABELS", "[1]")], &[]);
        assert!(error.contains("ISTIO_METAJSON_LABELS"), "{error}");
        let error = refuse(&[("ISTIO_META_DNS_CAPTURE", "maybe")], &[]);
        assert!(error.contains("DNS_CAPTURE"), "{error}");
        let error = refuse(&[("ISTIO_METAJSON_LABELS", r#"{"a,b":"c"}"#)], &[]);
        assert!(error.contains("labels"), "{error}");
    }
}
