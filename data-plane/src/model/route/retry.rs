//! A route's retry policy and the decisions Envoy's retry state makes from
//! it: which responses and failures are retried (`retry_on`), how long to
//! back off before each retry, and which hosts a retry avoids.

use std::time::Duration;

/// Envoy's default backoff base interval (`upstream.base_retry_backoff_ms`).
pub const DEFAULT_BACKOFF_BASE: Duration = Duration::from_millis(25);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    pub num_retries: u32,
    pub per_try_timeout: Option<Duration>,
    pub on: RetryOn,
    /// Retried under `retriable-status-codes`.
    pub retriable_status_codes: Vec<u16>,
    /// The `previous_hosts` predicate: a retry avoids the hosts already
    /// tried, re-picking up to `host_selection_max_attempts` times.
    pub previous_hosts: bool,
    pub host_selection_max_attempts: u32,
    pub backoff: Backoff,
}

/// The `retry_on` conditions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetryOn {
    pub five_xx: bool,
    pub gateway_error: bool,
    pub reset: bool,
    pub reset_before_request: bool,
    pub connect_failure: bool,
    pub retriable_4xx: bool,
    pub refused_stream: bool,
    pub retriable_status_codes: bool,
    pub envoy_ratelimited: bool,
    pub grpc_cancelled: bool,
    pub grpc_deadline_exceeded: bool,
    pub grpc_internal: bool,
    pub grpc_resource_exhausted: bool,
    pub grpc_unavailable: bool,
}

/// The fully jittered exponential backoff between retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    /// Envoy's: 25ms base, ten times the base at most.
    fn default() -> Self {
        Self {
            base: DEFAULT_BACKOFF_BASE,
            max: DEFAULT_BACKOFF_BASE * 10,
        }
    }
}

/// Why an attempt got no response, as Envoy's retry state tells resets
/// apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptFailure {
    /// The connection could not be made (refused, timed out, TLS).
    ConnectFailure,
    /// The stream was reset after the request was sent.
    Reset,
    /// The upstream refused the HTTP/2 stream.
    RefusedStream,
    /// The per-try timeout fired (Envoy resets the stream locally).
    PerTryTimeout,
    /// A circuit breaker refused the request, or no host was there to
    /// take it: never retried.
    Overflow,
    NoHealthyUpstream,
}

impl RetryPolicy {
    /// Whether the policy retries anything (Envoy's retry state is enabled
    /// by any `retry_on` condition; only then does the router keep the
    /// request body).
    pub fn enabled(&self) -> bool {
        self.on != RetryOn::default()
    }

    /// Whether a response is retried, as Envoy's `wouldRetryFromHeaders`:
    /// never an overloaded one (`x-envoy-overloaded`).
    pub fn retries_response(&self, status: u16, headers: &http::HeaderMap) -> bool {
        if headers.contains_key("x-envoy-overloaded") {
            return false;
        }
        let on = &self.on;
        if on.envoy_ratelimited && headers.contains_key("x-envoy-ratelimited") {
            return true;
        }
        if headers.contains_key("x-envoy-ratelimited") {
            return false;
        }
        (on.five_xx && (500..600).contains(&status))
            || (on.gateway_error && matches!(status, 502..=504))
            || (on.retriable_4xx && status == 409)
            || (on.retriable_status_codes && self.retriable_status_codes.contains(&status))
            || self.retries_grpc_status(headers)
    }

    /// The gRPC conditions, on a `grpc-status` in the response headers.
    fn retries_grpc_status(&self, headers: &http::HeaderMap) -> bool {
        let Some(status) = headers
            .get("grpc-status")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u32>().ok())
        else {
            return false;
        };
        let on = &self.on;
        match status {
            1 => on.grpc_cancelled,
            4 => on.grpc_deadline_exceeded,
            8 => on.grpc_resource_exhausted,
            13 => on.grpc_internal,
            14 => on.grpc_unavailable,
            _ => false,
        }
    }

    /// Whether a failed attempt is retried, as Envoy's
    /// `wouldRetryFromReset`: connect failures on `connect-failure`, any
    /// reset (a per-try timeout included) on `5xx`, `gateway-error` and
    /// `reset`, a refused stream on `refused-stream`, a connection that was
    /// never made on `reset-before-request`; never an overflow.
    pub fn retries_failure(&self, failure: AttemptFailure) -> bool {
        let on = &self.on;
        let any_reset = on.five_xx || on.gateway_error || on.reset;
        match failure {
            AttemptFailure::Overflow | AttemptFailure::NoHealthyUpstream => false,
            AttemptFailure::ConnectFailure => {
                on.connect_failure || any_reset || on.reset_before_request
            }
            AttemptFailure::RefusedStream => on.refused_stream || any_reset,
            AttemptFailure::Reset | AttemptFailure::PerTryTimeout => any_reset,
        }
    }
}

impl Backoff {
    /// The wait before retry number `retry` (1 for the first): a uniform
    /// draw (`roll`) below the interval, which starts at the base and
    /// doubles per retry up to the max.
    pub fn delay(&self, retry: u32, roll: u64) -> Duration {
        let base = self.base.as_millis().max(1);
        let max = self.max.as_millis().max(1);
        let mut interval = base;
        for _ in 1..retry {
            interval = if interval > max / 2 {
                max
            } else {
                interval * 2
            };
        }
        let millis = (u128::from(roll) % interval).min(max);
        Duration::from_millis(u64::try_from(millis).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests;
