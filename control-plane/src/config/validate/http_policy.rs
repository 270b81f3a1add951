//! Checks of what an HTTP route does besides routing, as Istio's validation
//! makes them: `fault`, `mirror`/`mirrors`, `corsPolicy`, `retries` and
//! `timeout`. A part istiod would accept and then drop (a delay without
//! `fixedDelay`, an abort without a status, a mirror on a redirect) is
//! refused here, so it is never accepted and ignored.

use super::check::Check;
use crate::config::codes::{grpc_code, is_status_code};
use crate::config::duration::Duration;
use crate::config::error::Problem;
use crate::config::model::{
    CorsPolicy, HttpFaultInjection, HttpRetry, HttpRoute, Percent, StringMatch,
};

/// The methods Istio accepts in `allowMethods` (Go's, and `*`).
const CORS_METHODS: [&str; 10] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE", "*",
];

/// The `retryOn` conditions Istio accepts (Envoy's `x-envoy-retry-on` and
/// `x-envoy-retry-grpc-on` values), besides HTTP status codes.
const RETRY_ON: [&str; 16] = [
    "5xx",
    "gateway-error",
    "reset",
    "reset-before-request",
    "connect-failure",
    "retriable-4xx",
    "refused-stream",
    "retriable-status-codes",
    "retriable-headers",
    "envoy-ratelimited",
    "http3-post-connect-failure",
    "cancelled",
    "deadline-exceeded",
    "internal",
    "resource-exhausted",
    "unavailable",
];

/// An RFC 7230 token: what a header name may be.
pub(super) fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c))
}

impl Check<'_> {
    /// The checks of `http[...]` at `field` besides matches and destinations.
    pub(super) fn http_policy(&mut self, field: &str, route: &HttpRoute) {
        if let Some(fault) = &route.fault {
            self.fault(&format!("{field}.fault"), fault);
        }
        if let Some(cors) = &route.cors_policy {
            self.cors(&format!("{field}.corsPolicy"), cors);
        }
        if let Some(percentage) = route.mirror_percentage {
            self.percent(&format!("{field}.mirrorPercentage.value"), percentage);
        }
        if let Some(percent) = route.mirror_percent {
            self.whole_percent(&format!("{field}.mirrorPercent"), percent);
        }
        for (at, mirror) in route.mirrors.iter().enumerate() {
            if let Some(percentage) = mirror.percentage {
                self.percent(
                    &format!("{field}.mirrors[{at}].percentage.value"),
                    percentage,
                );
            }
        }
        if route.redirect.is_some() {
            let forwarded = [
                ("fault", route.fault.is_some()),
                ("mirror", route.mirror.is_some()),
                ("mirrors", !route.mirrors.is_empty()),
            ];
            for (what, set) in forwarded {
                if set {
                    self.report(format!("{field}.{what}"), Problem::WithRedirect { what });
                }
            }
        }
        if let Some(retries) = &route.retries {
            self.retries(&format!("{field}.retries"), retries);
        }
        if let Some(timeout) = route.timeout {
            self.duration(&format!("{field}.timeout"), timeout);
        }
    }

    fn fault(&mut self, field: &str, fault: &HttpFaultInjection) {
        if fault.delay.is_none() && fault.abort.is_none() {
            self.report(field, Problem::FaultWithoutDelayOrAbort);
        }
        if let Some(delay) = &fault.delay {
            match delay.fixed_delay {
                Some(fixed) => self.duration(&format!("{field}.delay.fixedDelay"), fixed),
                None => self.report(format!("{field}.delay"), Problem::DelayWithoutFixedDelay),
            }
            if let Some(percentage) = delay.percentage {
                self.percent(&format!("{field}.delay.percentage.value"), percentage);
            }
            if let Some(percent) = delay.percent {
                self.whole_percent(&format!("{field}.delay.percent"), percent);
            }
        }
        if let Some(abort) = &fault.abort {
            let here = format!("{field}.abort");
            match (abort.http_status, &abort.grpc_status) {
                (None, None) => self.report(here.clone(), Problem::AbortWithoutStatus),
                (Some(_), Some(_)) => self.report(here.clone(), Problem::AbortWithTwoStatuses),
                (Some(status), None) if !(200..=599).contains(&status) => self.report(
                    format!("{here}.httpStatus"),
                    Problem::HttpStatusOutOfRange { status },
                ),
                (None, Some(status)) if grpc_code(status).is_none() => self.report(
                    format!("{here}.grpcStatus"),
                    Problem::UnknownGrpcStatus {
                        status: status.clone(),
                    },
                ),
                _ => {}
            }
            if let Some(percentage) = abort.percentage {
                self.percent(&format!("{here}.percentage.value"), percentage);
            }
        }
    }

    fn cors(&mut self, field: &str, cors: &CorsPolicy) {
        for (at, origin) in cors.allow_origins.iter().enumerate() {
            let here = format!("{field}.allowOrigins[{at}]");
            let (StringMatch::Exact(text) | StringMatch::Prefix(text) | StringMatch::Regex(text)) =
                origin;
            if text.is_empty() {
                self.report(here, Problem::EmptyOrigin);
            } else {
                self.string_match(&here, origin);
            }
        }
        for (at, method) in cors.allow_methods.iter().enumerate() {
            if !CORS_METHODS.contains(&method.as_str()) {
                self.report(
                    format!("{field}.allowMethods[{at}]"),
                    Problem::UnsupportedCorsMethod {
                        method: method.clone(),
                    },
                );
            }
        }
        let names = [
            ("allowHeaders", &cors.allow_headers),
            ("exposeHeaders", &cors.expose_headers),
        ];
        for (list, headers) in names {
            for (at, name) in headers.iter().enumerate() {
                if name != "*" && !is_header_name(name) {
                    self.report(
                        format!("{field}.{list}[{at}]"),
                        Problem::InvalidHeaderName { name: name.clone() },
                    );
                }
            }
        }
        if let Some(max_age) = cors.max_age {
            let here = format!("{field}.maxAge");
            self.duration(&here, max_age);
            if max_age.0.subsec_nanos() != 0 {
                self.report(
                    here,
                    Problem::MaxAgeFinerThanSeconds {
                        duration: max_age.to_string(),
                    },
                );
            }
        }
    }

    fn retries(&mut self, field: &str, retries: &HttpRetry) {
        if retries.attempts == 0
            && (retries.per_try_timeout.is_some()
                || retries.retry_on.as_deref().is_some_and(|r| !r.is_empty())
                || retries.retry_remote_localities.is_some())
        {
            self.report(field, Problem::RetryWithoutAttempts);
        }
        if let Some(timeout) = retries.per_try_timeout {
            self.duration(&format!("{field}.perTryTimeout"), timeout);
        }
        if let Some(backoff) = retries.backoff {
            self.duration(&format!("{field}.backoff"), backoff);
        }
        for condition in retries.retry_on.iter().flat_map(|r| r.split(',')) {
            if !RETRY_ON.contains(&condition) && !is_status_code(condition) {
                self.report(
                    format!("{field}.retryOn"),
                    Problem::UnknownRetryOn {
                        condition: condition.to_string(),
                    },
                );
            }
        }
    }

    /// Istio's duration rule: at least 1ms, in whole milliseconds.
    pub(super) fn duration(&mut self, field: &str, duration: Duration) {
        let text = duration.to_string();
        if duration.0 < std::time::Duration::from_millis(1) {
            self.report(
                field,
                Problem::DurationBelowOneMillisecond { duration: text },
            );
        } else if !duration.0.subsec_nanos().is_multiple_of(1_000_000) {
            self.report(
                field,
                Problem::DurationFinerThanMilliseconds { duration: text },
            );
        }
    }

    fn percent(&mut self, field: &str, percent: Percent) {
        if !(0.0..=100.0).contains(&percent.value) {
            self.report(
                field,
                Problem::PercentOutOfRange {
                    value: percent.value.to_string(),
                },
            );
        }
    }

    fn whole_percent(&mut self, field: &str, percent: u32) {
        self.percent(
            field,
            Percent {
                value: f64::from(percent),
            },
        );
    }
}
