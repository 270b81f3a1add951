//! The upstream attempts of one request: retried as the route's retry
//! policy says (Envoy's `retry_on` conditions), each try bounded by the
//! per-try timeout and all of them by the route timeout.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use http::header::{HeaderName, HeaderValue};
use http::request::Parts;
use http::{Request, Response};
use http_body::Body as _;
use hyper::body::Incoming;
use parking_lot::Mutex;

use crate::model::route::RetryPolicy;
use crate::proxy::stats::ClusterStats;
use crate::upstream::{self, Body, UpstreamError, UpstreamInfo, Upstreams};

/// Why forwarding failed: the upstream, or a timeout (per try or route).
#[derive(Debug, thiserror::Error)]
pub(super) enum ForwardError {
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error("upstream request timeout")]
    Timeout,
}

type Outcome = Result<(Response<Incoming>, UpstreamInfo), ForwardError>;

/// How a request is sent to its cluster.
pub(super) struct Attempts<'a> {
    pub(super) upstreams: &'a Upstreams,
    pub(super) cluster: &'a str,
    /// The original destination (ORIGINAL_DST clusters).
    pub(super) destination: Option<SocketAddr>,
    pub(super) retry: Option<&'a RetryPolicy>,
    /// The route timeout, over all attempts.
    pub(super) timeout: Option<Duration>,
    /// Whether each attempt carries `x-envoy-attempt-count`.
    pub(super) include_attempt_count: bool,
    pub(super) stats: &'a ClusterStats,
}

impl Attempts<'_> {
    /// Sends the request until an attempt is not retried, the attempts run
    /// out, or the route times out. `chosen` holds the host of the latest
    /// attempt, for the log of a request that timed out.
    pub(super) async fn send(
        &self,
        head: Parts,
        body: Body,
        chosen: &Mutex<Option<SocketAddr>>,
    ) -> Outcome {
        let attempts = self.attempts(head, body, chosen);
        match self.timeout {
            Some(timeout) => tokio::time::timeout(timeout, attempts)
                .await
                .unwrap_or(Err(ForwardError::Timeout)),
            None => attempts.await,
        }
    }

    async fn attempts(
        &self,
        mut head: Parts,
        body: Body,
        chosen: &Mutex<Option<SocketAddr>>,
    ) -> Outcome {
        let max_attempts = max_attempts(self.retry, body.is_end_stream());
        let mut body = Some(body);
        let mut attempt = 1;
        // The cluster's `max_retries` circuit breaker counts each retry
        // while it runs; when it is open, Envoy stops retrying.
        let mut _retry_slot = None;
        loop {
            // Only a request that may be retried is copied; the last
            // attempt takes it.
            let mut attempt_head = if attempt < max_attempts {
                head.clone()
            } else {
                std::mem::replace(&mut head, Request::new(()).into_parts().0)
            };
            if self.include_attempt_count {
                attempt_head.headers.insert(
                    HeaderName::from_static("x-envoy-attempt-count"),
                    HeaderValue::from(attempt),
                );
            }
            let request = Request::from_parts(
                attempt_head,
                body.take().unwrap_or_else(upstream::empty_body),
            );
            let result = self.attempt(request, chosen).await;
            if let Err(ForwardError::Upstream(error)) = &result
                && error.is_connect_failure()
            {
                self.stats.cx_connect_fail.fetch_add(1, Ordering::Relaxed);
            }
            let retried = self.retry.is_some_and(|retry| retries(retry, &result));
            if !retried || attempt >= max_attempts {
                return result;
            }
            match self.upstreams.try_retry(self.cluster) {
                Some(slot) => _retry_slot = Some(slot),
                None => return result,
            }
            attempt += 1;
            tracing::debug!(cluster = %self.cluster, attempt, "retrying upstream request");
        }
    }

    async fn attempt(&self, request: Request<Body>, chosen: &Mutex<Option<SocketAddr>>) -> Outcome {
        let send = self
            .upstreams
            .send_http_to(self.cluster, request, self.destination, chosen);
        match self.retry.and_then(|r| r.per_try_timeout) {
            Some(per_try) => match tokio::time::timeout(per_try, send).await {
                Ok(result) => Ok(result?),
                Err(_) => Err(ForwardError::Timeout),
            },
            None => Ok(send.await?),
        }
    }
}

/// How many times a request may be sent: once, or once more per retry when
/// it has no body (so it can be sent again).
fn max_attempts(retry: Option<&RetryPolicy>, replayable: bool) -> u32 {
    match retry {
        Some(retry) if replayable => retry.num_retries.saturating_add(1),
        _ => 1,
    }
}

/// Whether an attempt's outcome is retried under `retry`.
fn retries(retry: &RetryPolicy, outcome: &Outcome) -> bool {
    match outcome {
        Ok((response, _)) => retry.retries_status(response.status().as_u16()),
        Err(error) => retries_error(retry, error),
    }
}

/// Whether a failed attempt is retried: a connection that could not be made
/// on `connect-failure`, a reset on `reset`, a timed-out try on `reset`,
/// `5xx` and `gateway-error`.
fn retries_error(retry: &RetryPolicy, error: &ForwardError) -> bool {
    match error {
        // Envoy never retries a request a circuit breaker refused.
        ForwardError::Upstream(UpstreamError::Overflow(_)) => false,
        ForwardError::Upstream(e) if e.is_connect_failure() => retry.on_connect_failure,
        ForwardError::Upstream(_) => retry.on_reset,
        ForwardError::Timeout => retry.on_reset || retry.on_5xx || retry.on_gateway_error,
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;

    fn policy(num_retries: u32) -> RetryPolicy {
        RetryPolicy {
            num_retries,
            per_try_timeout: None,
            on_connect_failure: false,
            on_5xx: false,
            on_gateway_error: false,
            on_reset: false,
            retriable_status_codes: Vec::new(),
        }
    }

    #[test]
    fn attempts_are_one_plus_the_retries_for_a_request_without_body() {
        assert_eq!(max_attempts(None, true), 1);
        assert_eq!(max_attempts(Some(&policy(0)), true), 1);
        assert_eq!(max_attempts(Some(&policy(2)), true), 3);
        assert_eq!(max_attempts(Some(&policy(2)), false), 1);
    }

    #[test]
    fn unbounded_retries_from_xds_do_not_overflow() {
        assert_eq!(max_attempts(Some(&policy(u32::MAX)), true), u32::MAX);
    }

    fn refused() -> ForwardError {
        ForwardError::Upstream(UpstreamError::Connect {
            addr: "127.0.0.1:9".parse().unwrap(),
            source: io::Error::from(io::ErrorKind::ConnectionRefused),
        })
    }

    fn no_host() -> ForwardError {
        ForwardError::Upstream(UpstreamError::NoHealthyUpstream("c".into()))
    }

    #[test]
    fn connect_failures_are_retried_on_connect_failure_only() {
        let mut retry = policy(1);
        assert!(!retries_error(&retry, &refused()));
        retry.on_reset = true;
        assert!(!retries_error(&retry, &refused()));
        retry.on_connect_failure = true;
        assert!(retries_error(&retry, &refused()));
    }

    #[test]
    fn other_upstream_failures_are_retried_on_reset() {
        let mut retry = policy(1);
        retry.on_connect_failure = true;
        assert!(!retries_error(&retry, &no_host()));
        retry.on_reset = true;
        assert!(retries_error(&retry, &no_host()));
    }

    #[test]
    fn an_overflow_is_never_retried() {
        let mut retry = policy(1);
        retry.on_reset = true;
        retry.on_5xx = true;
        retry.on_connect_failure = true;
        let overflow = ForwardError::Upstream(UpstreamError::Overflow("c".into()));
        assert!(!retries_error(&retry, &overflow));
    }

    #[test]
    fn timed_out_tries_are_retried_on_reset_5xx_or_gateway_error() {
        let mut retry = policy(1);
        retry.on_connect_failure = true;
        assert!(!retries_error(&retry, &ForwardError::Timeout));
        for set in [
            |r: &mut RetryPolicy| r.on_reset = true,
            |r: &mut RetryPolicy| r.on_5xx = true,
            |r: &mut RetryPolicy| r.on_gateway_error = true,
        ] {
            let mut retry = policy(1);
            set(&mut retry);
            assert!(retries_error(&retry, &ForwardError::Timeout));
        }
    }
}
