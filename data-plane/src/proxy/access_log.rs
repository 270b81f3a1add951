//! Access logs in Istio's default text format (Envoy's with upstream
//! details), one line per HTTP request or TCP connection, on stdout.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::time::SystemTime;

use tokio::time::Instant;

/// One request's or connection's log entry, filled in as it goes.
#[derive(Debug)]
pub struct AccessLog {
    pub start_time: SystemTime,
    pub started: Instant,
    pub method: String,
    pub path: String,
    pub protocol: &'static str,
    pub response_code: u16,
    pub response_flags: &'static str,
    pub response_code_details: &'static str,
    pub transport_failure_reason: String,
    pub bytes_received: u64,
    pub bytes_sent: u64,
    pub upstream_service_time: Option<u128>,
    pub forwarded_for: String,
    pub user_agent: String,
    pub request_id: String,
    pub authority: String,
    pub upstream_host: Option<SocketAddr>,
    pub upstream_cluster: String,
    pub downstream_local: Option<SocketAddr>,
    pub downstream_remote: Option<SocketAddr>,
    pub requested_server_name: String,
    pub route_name: String,
    /// The client's SPIFFE id (mesh mTLS).
    pub peer_identity: String,
}

impl AccessLog {
    pub fn new(
        protocol: &'static str,
        downstream_local: Option<SocketAddr>,
        downstream_remote: Option<SocketAddr>,
    ) -> Self {
        Self {
            start_time: SystemTime::now(),
            started: Instant::now(),
            method: String::new(),
            path: String::new(),
            protocol,
            response_code: 0,
            response_flags: "-",
            response_code_details: "-",
            transport_failure_reason: String::new(),
            bytes_received: 0,
            bytes_sent: 0,
            upstream_service_time: None,
            forwarded_for: String::new(),
            user_agent: String::new(),
            request_id: String::new(),
            authority: String::new(),
            upstream_host: None,
            upstream_cluster: String::new(),
            downstream_local,
            downstream_remote,
            requested_server_name: String::new(),
            route_name: String::new(),
            peer_identity: String::new(),
        }
    }

    /// The formatted line (without the newline).
    pub fn format(&self) -> String {
        fn or_dash(s: &str) -> &str {
            if s.is_empty() { "-" } else { s }
        }
        fn addr(a: Option<SocketAddr>) -> String {
            a.map_or_else(|| "-".to_string(), |a| a.to_string())
        }
        let mut line = String::with_capacity(256);
        let request = if self.method.is_empty() {
            "- - -".to_string()
        } else {
            format!("{} {} {}", self.method, or_dash(&self.path), self.protocol)
        };
        let _ = write!(
            line,
            "[{}] \"{}\" {} {} {} - \"{}\" {} {} {} {} \"{}\" \"{}\" \"{}\" \"{}\" \"{}\" {} - {} {} {} {} {}",
            humantime::format_rfc3339_millis(self.start_time),
            request,
            self.response_code,
            self.response_flags,
            self.response_code_details,
            or_dash(&self.transport_failure_reason),
            self.bytes_received,
            self.bytes_sent,
            self.started.elapsed().as_millis(),
            self.upstream_service_time
                .map_or_else(|| "-".to_string(), |t| t.to_string()),
            or_dash(&self.forwarded_for),
            or_dash(&self.user_agent),
            or_dash(&self.request_id),
            or_dash(&self.authority),
            addr(self.upstream_host),
            or_dash(&self.upstream_cluster),
            addr(self.downstream_local),
            addr(self.downstream_remote),
            or_dash(&self.requested_server_name),
            or_dash(&self.route_name),
            or_dash(&self.peer_identity),
        );
        line
    }

    /// Writes the line to stdout.
    pub fn emit(&self) {
        let mut line = self.format();
        line.push('\n');
        let _ = std::io::stdout().lock().write_all(line.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_istio() {
        let mut log = AccessLog::new(
            "HTTP/1.1",
            Some("10.0.0.1:80".parse().unwrap()),
            Some("10.0.0.2:5555".parse().unwrap()),
        );
        log.method = "GET".into();
        log.path = "/headers".into();
        log.response_code = 200;
        log.response_code_details = "via_upstream";
        log.authority = "httpbin.org".into();
        log.upstream_cluster = "outbound|80||httpbin.org".into();
        log.upstream_host = Some("127.0.0.1:8080".parse().unwrap());
        log.user_agent = "curl/8".into();
        let line = log.format();
        assert!(
            line.contains("\"GET /headers HTTP/1.1\" 200 - via_upstream - \"-\" 0 0 "),
            "{line}"
        );
        assert!(line.contains("\"httpbin.org\" \"127.0.0.1:8080\" outbound|80||httpbin.org - 10.0.0.1:80 10.0.0.2:5555 - - -"), "{line}");
        assert!(line.starts_with('['));
    }
}
