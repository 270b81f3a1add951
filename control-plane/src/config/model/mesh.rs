//! MeshConfig: the mesh-wide settings this control plane acts on.

use serde::Deserialize;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OutboundTrafficPolicy {
    #[serde(default)]
    pub mode: OutboundMode,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OutboundMode {
    #[default]
    AllowAny,
    RegistryOnly,
}

/// `pathNormalization.normalization`: what proxies do to request paths
/// before routing (istiod's ProxyPathNormalization).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PathNormalization {
    /// BASE.
    #[default]
    Default,
    /// Paths as the client sent them.
    None,
    /// RFC 3986 normalization, backslashes as slashes.
    Base,
    /// BASE, then consecutive slashes merged.
    MergeSlashes,
    /// MERGE_SLASHES, with `%2F` and `%5C` unescaped first.
    DecodeAndMergeSlashes,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProxyPathNormalization {
    #[serde(default)]
    pub normalization: PathNormalization,
}

/// `accessLogEncoding`: how proxies write access log entries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AccessLogEncoding {
    /// A line of text per entry, in `accessLogFormat` or Istio's format.
    #[default]
    Text,
    /// A JSON object per line, its keys those of `accessLogFormat` or
    /// Istio's.
    Json,
}

/// The parts of Istio's MeshConfig this control plane acts on. Other
/// MeshConfig fields are accepted and ignored, so an existing `mesh` file
/// from an Istio install loads as it is.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeshConfig {
    #[serde(default)]
    pub outbound_traffic_policy: OutboundTrafficPolicy,
    #[serde(default = "default_root_namespace")]
    pub root_namespace: String,
    #[serde(default = "default_trust_domain")]
    pub trust_domain: String,
    /// Envoy's gRPC access loggers on sidecar outbound listeners, to the
    /// `envoy_accesslog_service` cluster.
    #[serde(default)]
    pub enable_envoy_access_log_service: bool,
    #[serde(default)]
    pub path_normalization: ProxyPathNormalization,
    /// `accessLogFile`: where every proxy writes its access log
    /// (`/dev/stdout`, or a path on the proxy's host); empty: no access
    /// log. Unset, this control plane says `/dev/stdout` (as Istio's demo
    /// profile does, where Istio's own default is none): write
    /// `accessLogFile: ""` to turn it off.
    #[serde(default = "default_access_log_file")]
    pub access_log_file: String,
    #[serde(default)]
    pub access_log_encoding: AccessLogEncoding,
    /// `accessLogFormat`: Envoy's command operators, a text line for TEXT,
    /// a JSON object of them for JSON; empty: Istio's format.
    #[serde(default)]
    pub access_log_format: String,
}

fn default_access_log_file() -> String {
    "/dev/stdout".into()
}

fn default_root_namespace() -> String {
    "istio-system".into()
}

fn default_trust_domain() -> String {
    shared::identity::DEFAULT_TRUST_DOMAIN.into()
}

impl Default for MeshConfig {
    fn default() -> Self {
        Self {
            outbound_traffic_policy: OutboundTrafficPolicy::default(),
            root_namespace: default_root_namespace(),
            trust_domain: default_trust_domain(),
            enable_envoy_access_log_service: false,
            path_normalization: ProxyPathNormalization::default(),
            access_log_file: default_access_log_file(),
            access_log_encoding: AccessLogEncoding::default(),
            access_log_format: String::new(),
        }
    }
}
