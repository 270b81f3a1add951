//! The one place where failures become what the client sees, as Envoy
//! under Istio answers: no route 404 (NR), blocked 502 (with a line naming
//! the host no ServiceEntry allows), no healthy
//! upstream 503 (UH, also a DNS cluster whose names do not resolve),
//! connect failure 503 (UF), route timeout 504 (UT).

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};

use crate::upstream::UpstreamError;

use super::http::ResponseBody;

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

    pub fn no_cluster(name: &str) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("cluster not found: {name}"),
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
            UpstreamError::UnknownCluster(name) => Self::no_cluster(name),
            other => {
                let reason = other.to_string();
                let (kind, details) = if other.is_connect_failure() {
                    (
                        "connection failure",
                        "upstream_reset_before_response_started{connection_failure}",
                    )
                } else {
                    (
                        "remote reset",
                        "upstream_reset_before_response_started{remote_reset}",
                    )
                };
                Self {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    body: format!(
                        "upstream connect error or disconnect/reset before headers. reset reason: {kind}, transport failure reason: {reason}"
                    ),
                    flags: other.response_flag(),
                    details,
                    transport_failure: reason,
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
        response
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;
    use crate::upstream::DnsError;

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
    fn a_refused_connection_answers_with_the_transport_failure() {
        let reply = LocalReply::upstream_failure(&UpstreamError::Connect {
            addr: "127.0.0.1:9".parse().unwrap(),
            source: io::Error::from(io::ErrorKind::ConnectionRefused),
        });
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            (reply.flags, reply.details),
            (
                "UF",
                "upstream_reset_before_response_started{connection_failure}"
            )
        );
        assert!(
            reply.body.starts_with(
                "upstream connect error or disconnect/reset before headers. reset reason: connection failure, transport failure reason: cannot connect to 127.0.0.1:9"
            ),
            "{}",
            reply.body
        );
    }
}
