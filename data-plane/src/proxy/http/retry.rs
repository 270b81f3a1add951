//! The upstream attempts of one request: retried as the route's retry
//! policy says (Envoy's `retry_on` conditions, decided in
//! `model::route::RetryPolicy`), after a jittered backoff, avoiding the
//! hosts already tried under `previous_hosts`; each try bounded by the
//! per-try timeout and all of them by the route timeout. A request body is
//! sent again from what [`Replay`] kept of it, and a body past the buffer
//! limit is not retried. Both timeouts start once the downstream request
//! is complete, as Envoy's do. Counted as Envoy counts them (`upstream_rq_retry`,
//! `_success`, `_limit_exceeded`, `_backoff_exponential`,
//! `upstream_rq_per_try_timeout`, the retried responses under `retry.`;
//! `_overflow` by the circuit breaker).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use http::header::{HeaderName, HeaderValue};
use http::request::Parts;
use http::{Request, Response};
use http_body::Body as _;
use hyper::body::Incoming;
use parking_lot::Mutex;

use crate::model::route::{AttemptFailure, RetryPolicy};
use crate::proxy::stats::{ClusterStats, Stats};
use crate::upstream::{self, Body, UpstreamError, UpstreamInfo, Upstreams};

use super::replay::Replay;
use super::request_end::RequestEnd;

/// Why forwarding failed: the upstream, the per-try timeout of the last
/// try, or the route timeout.
#[derive(Debug, thiserror::Error)]
pub(super) enum ForwardError {
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error("upstream request timeout")]
    Timeout,
    #[error("upstream per-try timeout")]
    PerTryTimeout,
    /// The request body passed the buffer limit while a retry waited.
    #[error("exceeded request buffer limit while retrying upstream")]
    RetryBufferLimit,
}

type Outcome = Result<(Response<Incoming>, UpstreamInfo), ForwardError>;

/// How the attempts ended.
pub(super) struct Sent {
    pub(super) outcome: Outcome,
    /// The last outcome would have been retried but no retry was left
    /// (Envoy's URX flag).
    pub(super) retry_limit_exceeded: bool,
    /// At least one retry was sent (Envoy's body then says "retried").
    pub(super) retried: bool,
    /// The last outcome would have been retried but the cluster's
    /// `max_retries` circuit breaker was open (Envoy's UO flag).
    pub(super) retry_overflow: bool,
}

impl Sent {
    fn last(outcome: Outcome, retried: bool) -> Self {
        Self {
            outcome,
            retry_limit_exceeded: false,
            retried,
            retry_overflow: false,
        }
    }
}

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
    /// How much of a request body is kept for retries.
    pub(super) buffer_limit: usize,
    pub(super) stats: &'a Arc<ClusterStats>,
}

impl Attempts<'_> {
    /// Sends the request until an attempt is not retried, the attempts run
    /// out, or the route times out. `chosen` holds the host of the latest
    /// attempt, for the log of a request that timed out.
    pub(super) async fn send(
        &self,
        head: Parts,
        body: Body,
        chosen: &Mutex<Option<UpstreamInfo>>,
    ) -> Sent {
        let (body, end) = RequestEnd::watch(body);
        let attempts = self.attempts(head, body, chosen, &end);
        match self.timeout {
            Some(timeout) => tokio::select! {
                sent = attempts => sent,
                () = expiry(&end, timeout) => Sent::last(Err(ForwardError::Timeout), false),
            },
            None => attempts.await,
        }
    }

    async fn attempts(
        &self,
        mut head: Parts,
        body: Body,
        chosen: &Mutex<Option<UpstreamInfo>>,
        end: &RequestEnd,
    ) -> Sent {
        let retry = self.retry.filter(|retry| retry.enabled());
        let max_attempts = retry.map_or(1, |retry| retry.num_retries.saturating_add(1));
        // Envoy's router keeps the body while a retry is possible.
        let (replay, mut body) = if retry.is_some() && !body.is_end_stream() {
            let replay = Replay::new(body, self.buffer_limit, self.stats.clone());
            (Some(replay), None)
        } else {
            (None, Some(body))
        };
        let mut tried = Vec::new();
        let mut attempt = 1;
        // The cluster's `max_retries` circuit breaker counts each retry
        // until the next retry decision; when it is open, Envoy stops
        // retrying.
        let mut retry_slot = None;
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
            let attempt_body = match &replay {
                Some(replay) => replay.attempt(),
                None => body.take().unwrap_or_else(upstream::empty_body),
            };
            let request = Request::from_parts(attempt_head, attempt_body);
            let outcome = self.attempt(request, chosen, &tried, end).await;
            self.count_attempt(&outcome);
            let Some(retry) = retry.filter(|_| max_attempts > 1) else {
                return Sent::last(outcome, false);
            };
            if replay.as_ref().is_some_and(|replay| !replay.replayable()) {
                // Past the buffer limit Envoy drops the retry state: the
                // outcome stands as it is, and nothing more is counted.
                return Sent::last(outcome, attempt > 1);
            }
            let retried = would_retry(retry, &outcome);
            if attempt > 1 && !retried {
                self.stats.rq_retry_success.fetch_add(1, Ordering::Relaxed);
            }
            if !retried || attempt >= max_attempts {
                if retried {
                    self.stats
                        .rq_retry_limit_exceeded
                        .fetch_add(1, Ordering::Relaxed);
                }
                return Sent {
                    retry_limit_exceeded: retried,
                    ..Sent::last(outcome, attempt > 1)
                };
            }
            // Envoy gives back the slot of the retry that just ended
            // before asking for the next one.
            drop(retry_slot.take());
            match self.upstreams.try_retry(self.cluster) {
                Some(slot) => retry_slot = Some(slot),
                None => {
                    return Sent {
                        retry_overflow: true,
                        ..Sent::last(outcome, attempt > 1)
                    };
                }
            }
            match &outcome {
                // Envoy charges the response of a try it retries apart.
                Ok((response, _)) => {
                    Stats::record_retried_response(self.stats, response.status().as_u16());
                }
                Err(ForwardError::PerTryTimeout) => Stats::record_retried_reset(self.stats),
                Err(ForwardError::Upstream(error)) if error.was_sent() => {
                    Stats::record_retried_reset(self.stats);
                }
                Err(_) => {}
            }
            if retry.previous_hosts
                && let Some(host) = chosen.lock().as_ref()
            {
                tried.push(host.address);
            }
            self.stats.rq_retry.fetch_add(1, Ordering::Relaxed);
            self.stats
                .rq_retry_backoff_exponential
                .fetch_add(1, Ordering::Relaxed);
            let backoff = tokio::time::sleep(retry.backoff.delay(attempt, fastrand::u64(..)));
            if let Some(replay) = &replay {
                tokio::select! {
                    () = backoff => {}
                    () = replay.passes_limit() => {
                        return Sent::last(Err(ForwardError::RetryBufferLimit), true);
                    }
                }
            } else {
                backoff.await;
            }
            attempt += 1;
            tracing::debug!(cluster = %self.cluster, attempt, "retrying upstream request");
        }
    }

    async fn attempt(
        &self,
        request: Request<Body>,
        chosen: &Mutex<Option<UpstreamInfo>>,
        tried: &[SocketAddr],
        end: &RequestEnd,
    ) -> Outcome {
        let selections = self
            .retry
            .filter(|r| r.previous_hosts)
            .map_or(1, |r| r.host_selection_max_attempts);
        let send = self.upstreams.send_http_avoiding(
            self.cluster,
            request,
            self.destination,
            chosen,
            tried,
            selections,
        );
        match self.retry.and_then(|r| r.per_try_timeout) {
            Some(per_try) => tokio::select! {
                result = send => Ok(result?),
                () = expiry(end, per_try) => Err(ForwardError::PerTryTimeout),
            },
            None => Ok(send.await?),
        }
    }

    fn count_attempt(&self, outcome: &Outcome) {
        match outcome {
            Err(ForwardError::Upstream(error)) if error.is_connect_failure() => {
                self.stats.cx_connect_fail.fetch_add(1, Ordering::Relaxed);
                if error.is_connect_timeout() {
                    self.stats
                        .cx_connect_timeout
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(ForwardError::PerTryTimeout) => {
                self.stats
                    .rq_per_try_timeout
                    .fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
        if let Err(ForwardError::Upstream(error)) = outcome
            && error.is_san_mismatch()
        {
            self.stats
                .ssl_fail_verify_san
                .fetch_add(1, Ordering::Relaxed);
        }
        if let Err(ForwardError::Upstream(error)) = outcome
            && error.is_chain_verify_failure()
        {
            self.stats
                .ssl_fail_verify_error
                .fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Resolves `timeout` after the downstream request is complete, when
/// Envoy's router starts the route timeout and a try's per-try timeout
/// (at once for a try started after that).
async fn expiry(end: &RequestEnd, timeout: Duration) {
    end.complete().await;
    tokio::time::sleep(timeout).await;
}

/// Whether an attempt's outcome is one `retry` retries.
fn would_retry(retry: &RetryPolicy, outcome: &Outcome) -> bool {
    match outcome {
        Ok((response, _)) => retry.retries_response(response.status().as_u16(), response.headers()),
        Err(error) => retry.retries_failure(failure(error)),
    }
}

/// A failed attempt as Envoy's retry state sees it.
fn failure(error: &ForwardError) -> AttemptFailure {
    match error {
        // Envoy never retries a request a circuit breaker refused.
        ForwardError::Upstream(UpstreamError::Overflow(_)) => AttemptFailure::Overflow,
        ForwardError::PerTryTimeout | ForwardError::Timeout => AttemptFailure::PerTryTimeout,
        ForwardError::RetryBufferLimit => AttemptFailure::Overflow,
        ForwardError::Upstream(e) if e.is_connect_failure() => AttemptFailure::ConnectFailure,
        ForwardError::Upstream(e) if e.is_refused_stream() => AttemptFailure::RefusedStream,
        ForwardError::Upstream(
            UpstreamError::NoHealthyUpstream(_)
            | UpstreamError::Resolve { .. }
            | UpstreamError::UnknownCluster(_),
        ) => AttemptFailure::NoHealthyUpstream,
        ForwardError::Upstream(_) => AttemptFailure::Reset,
    }
}

#[cfg(test)]
mod tests;
