//! The one place where failures become what the client sees, as Envoy
//! under Istio answers: no route 404 (NR), blocked 502 (with a line naming
//! the host no ServiceEntry allows), no healthy
//! upstream 503 (UH, also a DNS cluster whose names do not resolve),
//! connect failure 503 (UF: Envoy 1.40's body names the reset reason only,
//! the transport failure reason goes to the access log and details), route
//! timeout 504 (UT).

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};

use crate::upstream::{ResetReason, UpstreamError};

use super::http::ResponseBody;

/// Envoy's details for a request a circuit breaker refused.
const OVERFLOW_DETAILS: &str = "upstream_reset_before_response_started{overflow}";

/// How Envoy's router opens the body of an upstream reset.
const RESET_BODY: &str = "upstream connect error or disconnect/reset before headers. ";

/// A locally generated answer and what the access log says about it.
#[derive(Debug, Clone)]
pub struct LocalReply {
    pub status: StatusCode,
    pub body: String,
    pub flags: &'static str,
    pub details: &'static str,
    pub transport_failure: String,
}

impl LocalReply {
    pub fn no_route() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            String::new(),
            "NR",
            "route_not_found",
        )
    }

    /// A route's cluster the config does not hold: Envoy's router answers
    /// the route's `cluster_not_found_response_code` (503 unless told) with
    /// an empty body (the cluster is named in no reply).
    pub fn no_cluster(status: u16) -> Self {
        Self::new(
            StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            String::new(),
            "NC",
            "cluster_not_found",
        )
    }

    pub fn timeout() -> Self {
        Self::new(
            StatusCode::GATEWAY_TIMEOUT,
            "upstream request timeout".into(),
            "UT",
            "response_timeout",
        )
    }

    /// The 504 of a last try that hit the route's per-try timeout.
    pub fn per_try_timeout() -> Self {
        Self {
            details: "upstream_per_try_timeout",
            ..Self::timeout()
        }
    }

    /// This reply to a request whose retries ran out on a retriable
    /// failure: Envoy's router sets `URX` before the flag of the failure
    /// itself, and Envoy 1.40 prints flags in the order they were set
    /// (`URX,UF` for a TLS handshake that failed on every try).
    pub fn retry_limit_exceeded(self) -> Self {
        let flags = match self.flags {
            "UT" => "URX,UT",
            "UR" => "URX,UR",
            "UF" => "URX,UF",
            "UC" => "URX,UC",
            "UO" => "URX,UO",
            _ => "URX",
        };
        Self { flags, ..self }
    }

    /// This reply to a request that would have been retried but for the
    /// cluster's `max_retries` circuit breaker: Envoy's router sets `UO`
    /// before the flag of the failure itself.
    pub fn retry_overflow(self) -> Self {
        let flags = match self.flags {
            "UT" => "UO,UT",
            "UR" => "UO,UR",
            "UF" => "UO,UF",
            "UC" => "UO,UC",
            _ => "UO",
        };
        Self { flags, ..self }
    }

    /// Envoy's 507 to a request whose body passed the buffer limit while
    /// its retry waited for the backoff: no attempt could take the body.
    pub fn retry_buffer_limit() -> Self {
        Self::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "exceeded request buffer limit while retrying upstream".into(),
            "-",
            "request_payload_exceeded_retry_buffer_limit",
        )
    }

    /// This reply to a request that was retried: Envoy's router says so in
    /// the body of an upstream reset ("retried and the latest reset
    /// reason: ...").
    pub fn after_retries(self) -> Self {
        let body = match self.body.strip_prefix(RESET_BODY) {
            Some(rest) => format!("{RESET_BODY}retried and the latest {rest}"),
            None => self.body,
        };
        Self { body, ..self }
    }

    /// Envoy's 400 to a path `normalize_path` refuses (an escaped NUL).
    pub fn path_normalization_failed() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            String::new(),
            "-",
            "path_normalization_failed",
        )
    }

    /// Envoy's 400 for a request its connection manager refuses before
    /// routing: no body, `details` saying why.
    pub fn bad_request(details: &'static str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, String::new(), "-", details)
    }

    /// Envoy's 403 to an upgrade its connection manager and route do not
    /// allow.
    pub fn upgrade_failed() -> Self {
        Self::new(StatusCode::FORBIDDEN, String::new(), "-", "upgrade_failed")
    }

    /// A route's direct response.
    pub fn direct(status: StatusCode, body: String) -> Self {
        Self::new(status, body, "-", "direct_response")
    }

    /// What REGISTRY_ONLY answers a request to `authority`, which no
    /// ServiceEntry allows: 502, naming the host, on every path.
    pub fn blocked(authority: &str) -> Self {
        Self::direct(
            StatusCode::BAD_GATEWAY,
            shared::egress::blocked_body(authority),
        )
    }

    fn new(status: StatusCode, body: String, flags: &'static str, details: &'static str) -> Self {
        Self {
            status,
            body,
            flags,
            details,
            transport_failure: String::new(),
        }
    }

    /// Envoy's answer to an upstream failure.
    pub fn upstream_failure(error: &UpstreamError) -> Self {
        match error {
            UpstreamError::NoHealthyUpstream(_) | UpstreamError::Resolve { .. } => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "no healthy upstream".into(),
                error.response_flag(),
                "no_healthy_upstream",
            ),
            UpstreamError::UnknownCluster(_) => {
                Self::no_cluster(StatusCode::SERVICE_UNAVAILABLE.as_u16())
            }
            other => {
                let reset = other
                    .reset_reason()
                    .unwrap_or(ResetReason::RemoteConnectionFailure);
                Self {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    body: format!("{RESET_BODY}reset reason: {}", reset.words()),
                    flags: other.response_flag(),
                    details: reset.details(),
                    transport_failure: other.transport_failure_reason(),
                }
            }
        }
    }

    pub fn into_response(self) -> Response<ResponseBody> {
        let length = self.body.len();
        let mut response = Response::new(
            Full::new(Bytes::from(self.body))
                .map_err(|never| match never {})
                .boxed(),
        );
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        if length > 0 {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        }
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
        if self.details == OVERFLOW_DETAILS {
            // Envoy's router marks a request a circuit breaker dropped.
            headers.insert("x-envoy-overloaded", HeaderValue::from_static("true"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;
    use crate::upstream::{DnsError, TlsError};

    #[test]
    fn a_blocked_request_is_a_502_naming_its_host() {
        let reply = LocalReply::blocked("evil.example:8080");
        assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
        assert_eq!(
            reply.body,
            "no ServiceEntry allows evil.example:8080 (REGISTRY_ONLY)\n"
        );
        assert_eq!((reply.flags, reply.details), ("-", "direct_response"));
        let response = reply.into_response();
        assert_eq!(response.headers()[header::CONTENT_TYPE], "text/plain");
        assert_eq!(response.headers()[header::CONTENT_LENGTH], "57");
    }

    #[test]
    fn a_dns_cluster_whose_names_do_not_resolve_answers_no_healthy_upstream() {
        let reply = LocalReply::upstream_failure(&UpstreamError::Resolve {
            host: "nothing.invalid".into(),
            reason: DnsError::NoIpv4Address,
        });
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(reply.body, "no healthy upstream");
        assert_eq!((reply.flags, reply.details), ("UH", "no_healthy_upstream"));
        assert_eq!(reply.transport_failure, "");
    }

    #[test]
    fn a_tls_failure_on_every_try_reads_as_envoy_after_its_retries() {
        let reply = LocalReply::upstream_failure(&UpstreamError::Tls {
            addr: "127.0.0.1:443".parse().unwrap(),
            reason: TlsError::TimedOut,
        })
        .after_retries()
        .retry_limit_exceeded();
        assert_eq!(
            reply.body,
            "upstream connect error or disconnect/reset before headers. retried and the latest reset reason: connection timeout"
        );
        assert_eq!(reply.flags, "URX,UF");
    }

    #[test]
    fn a_local_reply_that_is_no_reset_keeps_its_body_after_retries() {
        let reply = LocalReply::timeout().after_retries();
        assert_eq!(reply.body, "upstream request timeout");
    }

    #[test]
    fn a_refused_connection_answers_as_envoy_does() {
        let reply = LocalReply::upstream_failure(&UpstreamError::Connect {
            addr: "127.0.0.1:9".parse().unwrap(),
            source: io::Error::from_raw_os_error(111),
        });
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            (reply.flags, reply.details),
            (
                "UF",
                "upstream_reset_before_response_started{remote_connection_failure}"
            )
        );
        assert_eq!(
            reply.body,
            "upstream connect error or disconnect/reset before headers. reset reason: remote connection failure"
        );
        assert_eq!(
            reply.transport_failure,
            "delayed connect error: Connection refused"
        );
    }

    #[test]
    fn a_connect_timeout_has_no_transport_failure_reason() {
        let reply = LocalReply::upstream_failure(&UpstreamError::ConnectTimeout {
            addr: "10.255.255.1:80".parse().unwrap(),
        });
        assert_eq!(
            (reply.flags, reply.details),
            (
                "UF",
                "upstream_reset_before_response_started{connection_timeout}"
            )
        );
        assert_eq!(
            reply.body,
            "upstream connect error or disconnect/reset before headers. reset reason: connection timeout"
        );
        assert_eq!(reply.transport_failure, "");
    }

    #[test]
    fn a_certificate_that_fails_verification_is_worded_as_boringssl_does() {
        let reply = LocalReply::upstream_failure(&UpstreamError::Tls {
            addr: "127.0.0.1:443".parse().unwrap(),
            reason: TlsError::Handshake(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            )),
        });
        assert_eq!(reply.flags, "UF");
        assert_eq!(
            reply.body,
            "upstream connect error or disconnect/reset before headers. reset reason: remote connection failure"
        );
        assert_eq!(
            reply.transport_failure,
            "TLS_error:|268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:verify cert failed: X509_verify_cert: certificate verification error at depth 0: unable to get local issuer certificate:TLS_error_end"
        );
    }

    #[test]
    fn an_open_circuit_breaker_answers_envoys_overflow_reply() {
        let reply = LocalReply::upstream_failure(&UpstreamError::Overflow("c".into()));
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            reply.body,
            "upstream connect error or disconnect/reset before headers. reset reason: overflow"
        );
        assert_eq!(
            (reply.flags, reply.details),
            ("UO", "upstream_reset_before_response_started{overflow}")
        );
        assert_eq!(reply.transport_failure, "");
        let response = reply.into_response();
        assert_eq!(response.headers()["x-envoy-overloaded"], "true");
        let other = LocalReply::no_route().into_response();
        assert!(!other.headers().contains_key("x-envoy-overloaded"));
    }
}
