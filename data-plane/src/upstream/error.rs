//! Why an upstream request or connection failed, and how Envoy would flag it
//! in an access log.

use std::error::Error as StdError;
use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use super::dns::DnsError;
use super::tls::TlsConfigError;
use super::tls_reason::VerifyFailure;

/// A failure on the way to (or while talking to) an upstream host.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("unknown cluster {0:?}")]
    UnknownCluster(String),
    /// Nothing to connect to: BlackHoleCluster, an empty EDS assignment,
    /// a DNS name without addresses, or no original destination.
    #[error("no healthy upstream in cluster {0:?}")]
    NoHealthyUpstream(String),
    #[error("cannot resolve {host:?}: {reason} (check the DNS server and that the name exists)")]
    Resolve { host: String, reason: DnsError },
    #[error(
        "connection to {addr} timed out (check that the host is reachable and nothing drops the SYN)"
    )]
    ConnectTimeout { addr: SocketAddr },
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("TLS handshake with {addr} failed: {reason}")]
    Tls { addr: SocketAddr, reason: TlsError },
    /// A circuit breaker of the cluster is open (Envoy's overflow).
    #[error("circuit breaker of cluster {0:?} is open (overflow)")]
    Overflow(String),
    #[error("upstream request failed: {}", chain(.0))]
    Http(#[source] hyper_util::client::legacy::Error),
}

impl UpstreamError {
    /// Envoy's access-log response flag for this failure. A DNS cluster
    /// whose names do not resolve has no hosts: no healthy upstream.
    pub fn response_flag(&self) -> &'static str {
        match self {
            Self::UnknownCluster(_) => "NC",
            Self::NoHealthyUpstream(_) | Self::Resolve { .. } => "UH",
            Self::Overflow(_) => "UO",
            Self::ConnectTimeout { .. } | Self::Connect { .. } | Self::Tls { .. } => "UF",
            Self::Http(e) if e.is_connect() => "UF",
            Self::Http(_) => "UR",
        }
    }

    /// Whether the request had been given to an upstream connection when
    /// it failed (a reset or a protocol error), which is when Envoy counts
    /// it in `upstream_rq_total`; not when it never got one (overflow, no
    /// host, a failed connection).
    pub fn was_sent(&self) -> bool {
        matches!(self, Self::Http(e) if !e.is_connect())
    }

    /// Envoy's reset reason for this failure (the words of its 503 body and
    /// response code details), `None` when the request never got as far as
    /// an upstream connection.
    pub fn reset_reason(&self) -> Option<ResetReason> {
        match self {
            Self::UnknownCluster(_) | Self::NoHealthyUpstream(_) | Self::Resolve { .. } => None,
            Self::ConnectTimeout { .. }
            | Self::Tls {
                reason: TlsError::TimedOut,
                ..
            } => Some(ResetReason::ConnectionTimeout),
            Self::Connect { .. } | Self::Tls { .. } => Some(ResetReason::RemoteConnectionFailure),
            Self::Http(e) if e.is_connect() => Some(ResetReason::RemoteConnectionFailure),
            Self::Http(_) if self.is_refused_stream() => {
                Some(ResetReason::RemoteRefusedStreamReset)
            }
            Self::Http(_) => Some(ResetReason::RemoteReset),
            Self::Overflow(_) => Some(ResetReason::Overflow),
        }
    }

    /// Envoy's upstream transport failure reason: `delayed connect error:
    /// Connection refused`, BoringSSL's words for a failed handshake
    /// (`...CERTIFICATE_VERIFY_FAILED...`), or empty.
    pub fn transport_failure_reason(&self) -> String {
        match self {
            Self::Connect { source, .. } => {
                format!("delayed connect error: {}", os_error_text(source))
            }
            Self::Tls { reason, .. } => match reason {
                TlsError::Handshake(error) => super::tls_reason::transport_failure_reason(error),
                TlsError::Config(error) => error.to_string(),
                TlsError::Io(error) => os_error_text(error),
                TlsError::TimedOut => String::new(),
            },
            Self::Http(e) if e.is_connect() => chain(e),
            _ => String::new(),
        }
    }

    /// Whether the request never reached an upstream because the connection
    /// could not be made (Envoy's `connect-failure` retry condition).
    /// Whether the connection attempt timed out (Envoy's
    /// `upstream_cx_connect_timeout`).
    pub fn is_connect_timeout(&self) -> bool {
        matches!(self, Self::ConnectTimeout { .. })
    }

    pub fn is_connect_failure(&self) -> bool {
        match self {
            Self::ConnectTimeout { .. } | Self::Connect { .. } | Self::Tls { .. } => true,
            Self::Http(e) => e.is_connect(),
            Self::UnknownCluster(_)
            | Self::NoHealthyUpstream(_)
            | Self::Resolve { .. }
            | Self::Overflow(_) => false,
        }
    }

    /// Whether the upstream refused the HTTP/2 stream (`REFUSED_STREAM`:
    /// it never processed the request; Envoy's `refused-stream` retry
    /// condition).
    pub fn is_refused_stream(&self) -> bool {
        let Self::Http(error) = self else {
            return false;
        };
        let mut source = error.source();
        while let Some(cause) = source {
            if let Some(h2) = cause.downcast_ref::<h2::Error>() {
                return h2.reason() == Some(h2::Reason::REFUSED_STREAM);
            }
            source = cause.source();
        }
        false
    }

    /// Whether a TLS handshake failed because the peer's certificate did not
    /// carry the expected subject alt name (Envoy's `ssl.fail_verify_san`).
    pub fn is_san_mismatch(&self) -> bool {
        let Self::Tls {
            reason:
                TlsError::Handshake(rustls::Error::InvalidCertificate(rustls::CertificateError::Other(
                    other,
                ))),
            ..
        } = self
        else {
            return false;
        };
        matches!(
            other.0.downcast_ref::<VerifyFailure>(),
            Some(VerifyFailure::SanMatcher { .. } | VerifyFailure::SanList)
        )
    }

    /// Whether a TLS handshake failed because the peer's certificate did not
    /// verify against the trusted CAs (Envoy's `ssl.fail_verify_error`); a
    /// subject alt name mismatch is not one.
    pub fn is_chain_verify_failure(&self) -> bool {
        matches!(
            self,
            Self::Tls {
                reason: TlsError::Handshake(rustls::Error::InvalidCertificate(_)),
                ..
            }
        ) && !self.is_san_mismatch()
    }

    /// Converts an error of the pooled HTTP client, recovering the
    /// connector's own error when the connection could not be made.
    pub(crate) fn from_client(err: hyper_util::client::legacy::Error) -> Self {
        let mut source = err.source();
        while let Some(cause) = source {
            if let Some(ours) = cause
                .downcast_ref::<UpstreamError>()
                .and_then(UpstreamError::duplicate)
            {
                return ours;
            }
            source = cause.source();
        }
        Self::Http(err)
    }

    /// An owned copy of a connection-phase error (the ones the connector
    /// produces); `None` for the others.
    fn duplicate(&self) -> Option<Self> {
        Some(match self {
            Self::ConnectTimeout { addr } => Self::ConnectTimeout { addr: *addr },
            Self::Connect { addr, source } => Self::Connect {
                addr: *addr,
                source: duplicate_io(source),
            },
            Self::Tls { addr, reason } => Self::Tls {
                addr: *addr,
                reason: reason.duplicate(),
            },
            Self::Resolve { host, reason } => Self::Resolve {
                host: host.clone(),
                reason: reason.clone(),
            },
            Self::UnknownCluster(_)
            | Self::NoHealthyUpstream(_)
            | Self::Overflow(_)
            | Self::Http(_) => return None,
        })
    }
}

/// Envoy's stream reset reasons for an upstream that failed before its
/// response started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetReason {
    RemoteConnectionFailure,
    ConnectionTimeout,
    RemoteReset,
    /// The upstream refused the HTTP/2 stream.
    RemoteRefusedStreamReset,
    /// A circuit breaker refused the request.
    Overflow,
}

impl ResetReason {
    /// As Envoy's 503 body words it.
    pub fn words(self) -> &'static str {
        match self {
            Self::RemoteConnectionFailure => "remote connection failure",
            Self::ConnectionTimeout => "connection timeout",
            Self::RemoteReset => "remote reset",
            Self::RemoteRefusedStreamReset => "remote refused stream reset",
            Self::Overflow => "overflow",
        }
    }

    /// Envoy's response code details (the transport failure reason, when
    /// there is one, goes after a `|` inside the braces; see the access log).
    pub fn details(self) -> &'static str {
        match self {
            Self::RemoteConnectionFailure => {
                "upstream_reset_before_response_started{remote_connection_failure}"
            }
            Self::ConnectionTimeout => "upstream_reset_before_response_started{connection_timeout}",
            Self::RemoteReset => "upstream_reset_before_response_started{remote_reset}",
            Self::RemoteRefusedStreamReset => {
                "upstream_reset_before_response_started{remote_refused_stream_reset}"
            }
            Self::Overflow => "upstream_reset_before_response_started{overflow}",
        }
    }
}

/// An OS error as `strerror` words it (`Connection refused`), without the
/// `(os error N)` Rust adds.
fn os_error_text(error: &io::Error) -> String {
    let text = error.to_string();
    match text.find(" (os error ") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

/// Why TLS origination to a host failed.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The cluster's TLS settings could not be turned into a configuration.
    #[error(transparent)]
    Config(Arc<TlsConfigError>),
    /// The handshake failed: the peer's certificate, an alert, the protocol.
    #[error(transparent)]
    Handshake(rustls::Error),
    /// The connection failed during the handshake.
    #[error(transparent)]
    Io(io::Error),
    #[error("handshake timed out")]
    TimedOut,
}

impl TlsError {
    fn duplicate(&self) -> Self {
        match self {
            Self::Config(error) => Self::Config(error.clone()),
            Self::Handshake(error) => Self::Handshake(error.clone()),
            Self::Io(error) => Self::Io(duplicate_io(error)),
            Self::TimedOut => Self::TimedOut,
        }
    }
}

/// A failed handshake: the TLS error it carries, else the I/O error.
impl From<io::Error> for TlsError {
    fn from(error: io::Error) -> Self {
        match error.downcast::<rustls::Error>() {
            Ok(tls) => Self::Handshake(tls),
            Err(io) => Self::Io(io),
        }
    }
}

/// An owned copy of an I/O error: the same OS error, else its kind and text.
fn duplicate_io(error: &io::Error) -> io::Error {
    match error.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::new(error.kind(), error.to_string()),
    }
}

/// An error followed by its causes, `: `-separated.
fn chain(err: &dyn StdError) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let _ = write!(out, ": {cause}");
        source = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_san_check_that_failed_counts_as_envoys_fail_verify_san() {
        let failed = |failure: VerifyFailure| UpstreamError::Tls {
            addr: addr(),
            reason: TlsError::Handshake(failure.into_rustls()),
        };
        assert!(failed(VerifyFailure::SanList).is_san_mismatch());
        assert!(
            failed(VerifyFailure::SanMatcher {
                certificate_sans: vec!["a.example".into()]
            })
            .is_san_mismatch()
        );
        assert!(!failed(VerifyFailure::SelfSigned).is_san_mismatch());
        let timed_out = UpstreamError::Tls {
            addr: addr(),
            reason: TlsError::TimedOut,
        };
        assert!(!timed_out.is_san_mismatch());
    }

    #[test]
    fn a_chain_that_does_not_verify_counts_as_envoys_fail_verify_error() {
        let rejected = |error: rustls::CertificateError| UpstreamError::Tls {
            addr: addr(),
            reason: TlsError::Handshake(rustls::Error::InvalidCertificate(error)),
        };
        assert!(rejected(rustls::CertificateError::UnknownIssuer).is_chain_verify_failure());
        let failed = |failure: VerifyFailure| UpstreamError::Tls {
            addr: addr(),
            reason: TlsError::Handshake(failure.into_rustls()),
        };
        assert!(failed(VerifyFailure::SelfSigned).is_chain_verify_failure());
        assert!(!failed(VerifyFailure::SanList).is_chain_verify_failure());
        let timed_out = UpstreamError::Tls {
            addr: addr(),
            reason: TlsError::TimedOut,
        };
        assert!(!timed_out.is_chain_verify_failure());
    }

    fn addr() -> SocketAddr {
        "127.0.0.1:9".parse().unwrap()
    }

    #[test]
    fn connection_failures_are_flagged_uf() {
        let refused = UpstreamError::Connect {
            addr: addr(),
            source: io::Error::from(io::ErrorKind::ConnectionRefused),
        };
        assert_eq!(refused.response_flag(), "UF");
        assert!(refused.is_connect_failure());
        let timeout = UpstreamError::ConnectTimeout { addr: addr() };
        assert_eq!(timeout.response_flag(), "UF");
        assert!(timeout.is_connect_failure());
        let tls = UpstreamError::Tls {
            addr: addr(),
            reason: TlsError::TimedOut,
        };
        assert_eq!(tls.response_flag(), "UF");
        assert!(tls.is_connect_failure());
    }

    #[test]
    fn a_cluster_without_hosts_is_flagged_uh_even_when_its_names_do_not_resolve() {
        let empty = UpstreamError::NoHealthyUpstream("BlackHoleCluster".into());
        assert_eq!(empty.response_flag(), "UH");
        assert!(!empty.is_connect_failure());
        let nxdomain = UpstreamError::Resolve {
            host: "nothing.invalid".into(),
            reason: DnsError::NoIpv4Address,
        };
        assert_eq!(nxdomain.response_flag(), "UH");
        assert!(!nxdomain.is_connect_failure());
    }

    #[test]
    fn an_open_circuit_breaker_is_flagged_uo_and_is_no_connect_failure() {
        let overflow = UpstreamError::Overflow("c".into());
        assert_eq!(overflow.response_flag(), "UO");
        assert!(!overflow.is_connect_failure());
        assert!(overflow.duplicate().is_none());
    }

    /// The error an HTTP/2 client gets from a server that resets its
    /// stream with `reason`.
    async fn h2_reset(reason: h2::Reason) -> hyper_util::client::legacy::Error {
        use hyper_util::rt::{TokioExecutor, TokioIo};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let service = hyper::service::service_fn(move |_request| async move {
                Err::<http::Response<http_body_util::Empty<bytes::Bytes>>, _>(h2::Error::from(
                    reason,
                ))
            });
            let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        });
        let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .http2_only(true)
            .build_http::<http_body_util::Empty<bytes::Bytes>>();
        client
            .get(format!("http://{addr}/").parse().unwrap())
            .await
            .unwrap_err()
    }

    #[tokio::test]
    async fn a_refused_stream_is_told_apart_from_other_resets() {
        let refused = UpstreamError::Http(h2_reset(h2::Reason::REFUSED_STREAM).await);
        assert!(refused.is_refused_stream());
        assert!(!refused.is_connect_failure());
        // Envoy: reset reason `remote refused stream reset`, flagged UR.
        assert_eq!(
            refused.reset_reason(),
            Some(ResetReason::RemoteRefusedStreamReset)
        );
        assert_eq!(
            ResetReason::RemoteRefusedStreamReset.words(),
            "remote refused stream reset"
        );
        assert_eq!(refused.response_flag(), "UR");
        let reset = UpstreamError::Http(h2_reset(h2::Reason::INTERNAL_ERROR).await);
        assert!(!reset.is_refused_stream());
        assert_eq!(reset.reset_reason(), Some(ResetReason::RemoteReset));
    }

    #[test]
    fn an_unknown_cluster_is_flagged_nc() {
        assert_eq!(
            UpstreamError::UnknownCluster("x".into()).response_flag(),
            "NC"
        );
    }

    #[test]
    fn duplicates_keep_the_os_error() {
        let refused = UpstreamError::Connect {
            addr: addr(),
            source: io::Error::from_raw_os_error(111),
        };
        let copy = refused.duplicate().unwrap();
        assert_eq!(copy.to_string(), refused.to_string());
        assert!(
            UpstreamError::NoHealthyUpstream("c".into())
                .duplicate()
                .is_none()
        );
    }

    #[test]
    fn handshake_errors_keep_the_tls_error_and_its_text() {
        let rejected = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        let tls = UpstreamError::Tls {
            addr: addr(),
            reason: TlsError::from(rejected),
        };
        assert_eq!(
            tls.to_string(),
            "TLS handshake with 127.0.0.1:9 failed: invalid peer certificate: UnknownIssuer"
        );
        let copy = tls.duplicate().unwrap();
        assert!(
            matches!(
                &copy,
                UpstreamError::Tls {
                    reason: TlsError::Handshake(rustls::Error::InvalidCertificate(
                        rustls::CertificateError::UnknownIssuer
                    )),
                    ..
                }
            ),
            "{copy:?}"
        );

        let reset = TlsError::from(io::Error::from(io::ErrorKind::ConnectionReset));
        assert!(
            matches!(&reset, TlsError::Io(e) if e.kind() == io::ErrorKind::ConnectionReset),
            "{reset:?}"
        );
        assert_eq!(reset.duplicate().to_string(), reset.to_string());
        assert_eq!(TlsError::TimedOut.to_string(), "handshake timed out");
    }
}
