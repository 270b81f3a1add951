//! What an HTTP route does besides routing, as Istio's YAML spells it: fault
//! injection (`fault`), mirroring (`mirrors`, and the `mirror` +
//! `mirrorPercentage` of [`super::HttpRoute`]) and CORS (`corsPolicy`).

use serde::Deserialize;

use super::{Destination, StringMatch};
use crate::config::duration::Duration;

/// A percentage, `0.0` to `100.0` (Istio's `Percent`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Percent {
    #[serde(default)]
    pub value: f64,
}

/// `fault`: delay and/or abort a share of the route's requests.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpFaultInjection {
    pub delay: Option<FaultDelay>,
    pub abort: Option<FaultAbort>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultDelay {
    pub fixed_delay: Option<Duration>,
    pub percentage: Option<Percent>,
    /// Deprecated whole percent, read when `percentage` is absent.
    pub percent: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultAbort {
    pub http_status: Option<u32>,
    /// A gRPC status name, e.g. `UNAVAILABLE`.
    pub grpc_status: Option<String>,
    pub percentage: Option<Percent>,
}

/// One of `mirrors`: a copy of each request (or of `percentage` of them)
/// to `destination`, its response ignored.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpMirrorPolicy {
    pub destination: Destination,
    pub percentage: Option<Percent>,
}

/// `corsPolicy`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CorsPolicy {
    /// Deprecated exact origins, read when `allowOrigins` is empty.
    #[serde(default)]
    pub allow_origin: Vec<String>,
    #[serde(default)]
    pub allow_origins: Vec<StringMatch>,
    #[serde(default)]
    pub allow_methods: Vec<String>,
    #[serde(default)]
    pub allow_headers: Vec<String>,
    #[serde(default)]
    pub expose_headers: Vec<String>,
    pub max_age: Option<Duration>,
    pub allow_credentials: Option<bool>,
    pub unmatched_preflights: Option<UnmatchedPreflights>,
}

/// What the CORS filter does with a preflight request whose origin no
/// `allowOrigins` entry matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UnmatchedPreflights {
    /// Istio's default: forwarded upstream.
    Unspecified,
    Forward,
    /// Answered by the proxy, never forwarded.
    Ignore,
}
