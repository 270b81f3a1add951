//! The timeouts of an HTTP connection manager, as Envoy applies them to
//! downstream connections and streams, with Envoy's defaults for what the
//! connection manager leaves unset — except the request head timeout, which
//! Envoy leaves off and the agent defaults to 60 s (see
//! [`DEFAULT_REQUEST_HEADERS_TIMEOUT`]).

use std::time::Duration;

/// The request head timeout when the connection manager sets none.
/// Envoy has no default (a client may take forever to send its head, and
/// each such connection holds memory and a file descriptor); the agent
/// deviates and closes a head that is not complete within 60 s, as nginx's
/// `client_header_timeout` does. `request_headers_timeout: 0s` still turns
/// it off.
pub const DEFAULT_REQUEST_HEADERS_TIMEOUT: Duration = Duration::from_secs(60);

/// Envoy's `stream_idle_timeout` when the connection manager sets none.
pub const DEFAULT_STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// Envoy's downstream `common_http_protocol_options.idle_timeout` when the
/// connection manager sets none.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60 * 60);

/// A connection manager's timeouts; `None` is off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpTimeouts {
    /// From a request's first byte until its head is complete
    /// (`request_headers_timeout`): 408 `request header timeout`.
    pub request_headers: Option<Duration>,
    /// A stream with no activity either way for this long
    /// (`stream_idle_timeout`): 408 `stream timeout` (504 once the request
    /// is complete) before the response starts, a reset after.
    pub stream_idle: Option<Duration>,
    /// From a request's head until its body is complete
    /// (`request_timeout`): 408 `request timeout`.
    pub request: Option<Duration>,
    /// The longest a stream may last
    /// (`common_http_protocol_options.max_stream_duration`): 408
    /// `downstream duration timeout` (504 once the request is complete)
    /// before the response starts, a reset after.
    pub max_stream_duration: Option<Duration>,
    /// A connection with no stream for this long is closed
    /// (`common_http_protocol_options.idle_timeout`).
    pub idle: Option<Duration>,
    /// A connection this old is drained: `Connection: close` on HTTP/1.1,
    /// GOAWAY on HTTP/2
    /// (`common_http_protocol_options.max_connection_duration`).
    pub max_connection_duration: Option<Duration>,
}

impl Default for HttpTimeouts {
    /// A connection manager that sets no timeout: Envoy's defaults, and
    /// the agent's request head timeout.
    fn default() -> Self {
        Self {
            request_headers: Some(DEFAULT_REQUEST_HEADERS_TIMEOUT),
            stream_idle: Some(DEFAULT_STREAM_IDLE_TIMEOUT),
            request: None,
            max_stream_duration: None,
            idle: Some(DEFAULT_IDLE_TIMEOUT),
            max_connection_duration: None,
        }
    }
}

impl HttpTimeouts {
    /// Whether any timeout watches a stream once its head is in.
    pub fn watches_streams(&self) -> bool {
        self.stream_idle.is_some() || self.request.is_some() || self.max_stream_duration.is_some()
    }
}
