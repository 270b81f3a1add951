//! Access logs in Istio's default text format (Envoy's with upstream
//! details) and the egress mark last, one line per HTTP request or TCP
//! connection, on stdout.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Once};
use std::time::{Duration, SystemTime};

use http::uri::PathAndQuery;
use http::{HeaderValue, Method};
use parking_lot::{Condvar, Mutex};

use tokio::time::Instant;

use shared::egress::EgressPolicy;

/// One request's or connection's log entry, filled in as it goes. Its
/// texts share the request's own bytes (header values, the URI, the
/// config's names), so filling it in copies nothing.
#[derive(Debug)]
pub struct AccessLog {
    pub start_time: SystemTime,
    pub started: Instant,
    pub method: Option<Method>,
    pub path: Option<PathAndQuery>,
    pub protocol: &'static str,
    pub response_code: u16,
    pub response_flags: &'static str,
    pub response_code_details: &'static str,
    /// `%CONNECTION_TERMINATION_DETAILS%`: why the proxy closed the
    /// connection, when it did (`tcp_session_idle_timeout`).
    pub connection_termination_details: Option<&'static str>,
    pub transport_failure_reason: String,
    pub bytes_received: u64,
    pub bytes_sent: u64,
    pub upstream_service_time: Option<u128>,
    pub forwarded_for: Option<HeaderValue>,
    pub user_agent: Option<HeaderValue>,
    pub request_id: Option<HeaderValue>,
    pub authority: Option<HeaderValue>,
    pub upstream_host: Option<SocketAddr>,
    pub upstream_cluster: Option<Arc<str>>,
    pub downstream_local: Option<SocketAddr>,
    pub downstream_remote: Option<SocketAddr>,
    pub requested_server_name: Option<Arc<str>>,
    pub route_name: Option<Arc<str>>,
    /// The client's SPIFFE id (mesh mTLS).
    pub peer_identity: Option<Arc<str>>,
    /// The egress mark of the route or filter chain that decided.
    pub egress_policy: Option<EgressPolicy>,
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
            method: None,
            path: None,
            protocol,
            response_code: 0,
            response_flags: "-",
            response_code_details: "-",
            connection_termination_details: None,
            transport_failure_reason: String::new(),
            bytes_received: 0,
            bytes_sent: 0,
            upstream_service_time: None,
            forwarded_for: None,
            user_agent: None,
            request_id: None,
            authority: None,
            upstream_host: None,
            upstream_cluster: None,
            downstream_local,
            downstream_remote,
            requested_server_name: None,
            route_name: None,
            peer_identity: None,
            egress_policy: None,
        }
    }

    /// The formatted line (without the newline).
    pub fn format(&self) -> String {
        let mut line = String::with_capacity(256);
        self.write_line(&mut line);
        line
    }

    /// Appends the formatted line (without the newline) to `out`.
    fn write_line(&self, out: &mut String) {
        fn or_dash(s: &str) -> &str {
            if s.is_empty() { "-" } else { s }
        }
        fn header(value: &Option<HeaderValue>) -> &str {
            or_dash(value.as_ref().and_then(|v| v.to_str().ok()).unwrap_or(""))
        }
        fn name(value: &Option<Arc<str>>) -> &str {
            or_dash(value.as_deref().unwrap_or(""))
        }
        /// A value, or `-` for none.
        struct Opt<T>(Option<T>);
        impl<T: std::fmt::Display> std::fmt::Display for Opt<T> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                match &self.0 {
                    Some(value) => value.fmt(f),
                    None => f.write_str("-"),
                }
            }
        }
        let _ = write!(
            out,
            "[{}] \"",
            humantime::format_rfc3339_millis(self.start_time)
        );
        match &self.method {
            None => out.push_str("- - -"),
            Some(method) => {
                let path = self.path.as_ref().map_or("", PathAndQuery::as_str);
                let _ = write!(out, "{method} {} {}", or_dash(path), self.protocol);
            }
        }
        let _ = write!(
            out,
            "\" {} {} {} {} \"{}\" {} {} {} {} \"{}\" \"{}\" \"{}\" \"{}\" \"{}\" {} - {} {} {} {} {} {}",
            self.response_code,
            self.response_flags,
            CodeDetails(self),
            self.connection_termination_details.unwrap_or("-"),
            Underscored(or_dash(&self.transport_failure_reason)),
            self.bytes_received,
            self.bytes_sent,
            self.started.elapsed().as_millis(),
            Opt(self.upstream_service_time),
            header(&self.forwarded_for),
            header(&self.user_agent),
            header(&self.request_id),
            header(&self.authority),
            Opt(self.upstream_host),
            name(&self.upstream_cluster),
            Opt(self.downstream_local),
            Opt(self.downstream_remote),
            name(&self.requested_server_name),
            name(&self.route_name),
            name(&self.peer_identity),
            EgressPolicy::label(self.egress_policy),
        );
    }

    /// Queues the line for stdout (see [`flush`]).
    pub fn emit(&self) {
        LINE.with_borrow_mut(|line| {
            line.clear();
            self.write_line(line);
            line.push('\n');
            sink().push(line.as_bytes());
        });
    }
}

impl AccessLog {
    /// `%RESPONSE_CODE_DETAILS%` as Envoy gives it: an upstream reset's
    /// details carry the transport failure reason after a `|`, spaces as `_`.
    pub fn code_details(&self) -> String {
        CodeDetails(self).to_string()
    }
}

/// The response code details with the transport failure reason folded in.
struct CodeDetails<'a>(&'a AccessLog);

impl std::fmt::Display for CodeDetails<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let details = self.0.response_code_details;
        match details.strip_suffix('}') {
            Some(open) if !self.0.transport_failure_reason.is_empty() => {
                write!(
                    f,
                    "{open}|{}}}",
                    Underscored(&self.0.transport_failure_reason)
                )
            }
            _ => f.write_str(details),
        }
    }
}

/// A text with its spaces written as `_`, as Envoy's formatter writes
/// response code details and the transport failure reason.
struct Underscored<'a>(&'a str);

impl std::fmt::Display for Underscored<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, part) in self.0.split(' ').enumerate() {
            if i > 0 {
                f.write_str("_")?;
            }
            f.write_str(part)?;
        }
        Ok(())
    }
}

thread_local! {
    /// Each thread formats its lines here, to keep its allocation.
    static LINE: RefCell<String> = RefCell::new(String::with_capacity(512));
}

/// How long the writer lets lines gather before it writes them; a line is
/// on stdout at most about this long after its request ended.
const GATHER: Duration = Duration::from_millis(1);
/// Past this many buffered bytes (stdout not keeping up), the thread that
/// logs writes them itself: memory stays bounded, the proxy slows down.
const MAX_BUFFERED: usize = 1 << 20;

/// Lines on their way to stdout. Proxy threads append to a buffer; a writer
/// thread of its own writes what gathered, so a request never waits for
/// stdout (a file, a pipe) and many lines go out in one `write` under load,
/// as Envoy's access log flush thread does.
///
/// While lines keep coming the writer wakes on its own every [`GATHER`];
/// only the first line after a quiet spell wakes it, so a request almost
/// never pays for a thread wake-up either.
struct Sink {
    buffer: Mutex<Pending>,
    /// Signalled when a line arrives while the writer is idle.
    arrived: Condvar,
    /// Held while writing, so chunks reach stdout in order; holds the spare
    /// buffer swapped with the pending one.
    writer: Mutex<Vec<u8>>,
}

struct Pending {
    lines: Vec<u8>,
    /// The writer waits on `arrived` (rather than on its timer).
    writer_idle: bool,
}

static SINK: Sink = Sink {
    buffer: Mutex::new(Pending {
        lines: Vec::new(),
        writer_idle: false,
    }),
    arrived: Condvar::new(),
    writer: Mutex::new(Vec::new()),
};
/// Set when the writer thread could not start: lines are written inline.
static INLINE: AtomicBool = AtomicBool::new(false);

fn sink() -> &'static Sink {
    static WRITER: Once = Once::new();
    WRITER.call_once(|| {
        let spawned = std::thread::Builder::new()
            .name("access-log".into())
            .spawn(|| SINK.run());
        if let Err(error) = spawned {
            tracing::warn!(%error, "no access log writer thread; lines are written inline");
            INLINE.store(true, Ordering::Relaxed);
        }
    });
    &SINK
}

impl Sink {
    fn push(&self, line: &[u8]) {
        let mut pending = self.buffer.lock();
        pending.lines.extend_from_slice(line);
        let full = pending.lines.len() >= MAX_BUFFERED;
        let wake = std::mem::take(&mut pending.writer_idle);
        drop(pending);
        if full || INLINE.load(Ordering::Relaxed) {
            self.write_out();
        } else if wake {
            self.arrived.notify_one();
        }
    }

    fn run(&self) {
        loop {
            {
                let mut pending = self.buffer.lock();
                while pending.lines.is_empty() {
                    pending.writer_idle = true;
                    self.arrived.wait(&mut pending);
                }
                pending.writer_idle = false;
            }
            loop {
                std::thread::sleep(GATHER);
                if !self.write_out() {
                    break;
                }
            }
        }
    }

    /// Writes everything buffered so far; false if there was nothing.
    fn write_out(&self) -> bool {
        let mut chunk = self.writer.lock();
        std::mem::swap(&mut *chunk, &mut self.buffer.lock().lines);
        if chunk.is_empty() {
            return false;
        }
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(&chunk).and_then(|()| stdout.flush());
        chunk.clear();
        true
    }
}

/// Writes the lines not yet on stdout (e.g. before the process exits).
pub fn flush() {
    sink().write_out();
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
        log.method = Some(Method::GET);
        log.path = Some(PathAndQuery::from_static("/headers"));
        log.response_code = 200;
        log.response_code_details = "via_upstream";
        log.authority = Some(HeaderValue::from_static("httpbin.org"));
        log.upstream_cluster = Some("outbound|80||httpbin.org".into());
        log.upstream_host = Some("127.0.0.1:8080".parse().unwrap());
        log.user_agent = Some(HeaderValue::from_static("curl/8"));
        let line = log.format();
        assert!(
            line.contains("\"GET /headers HTTP/1.1\" 200 - via_upstream - \"-\" 0 0 "),
            "{line}"
        );
        assert!(line.ends_with("\"httpbin.org\" \"127.0.0.1:8080\" outbound|80||httpbin.org - 10.0.0.1:80 10.0.0.2:5555 - - - -"), "{line}");
        assert!(line.starts_with('['));
    }

    #[test]
    fn blocked_tls_names_its_sni_original_destination_and_mark() {
        let mut log = AccessLog::new(
            "-",
            Some("93.184.216.34:443".parse().unwrap()),
            Some("10.0.0.2:5555".parse().unwrap()),
        );
        log.response_flags = "UH";
        log.upstream_cluster = Some("BlackHoleCluster".into());
        log.requested_server_name = Some("blocked.example".into());
        log.egress_policy = Some(EgressPolicy::Blocked);
        let line = log.format();
        assert!(line.contains("\"- - -\" 0 UH "), "{line}");
        assert!(
            line.ends_with(
                " BlackHoleCluster - 93.184.216.34:443 10.0.0.2:5555 blocked.example - - blocked"
            ),
            "{line}"
        );
    }

    #[test]
    fn the_dry_run_mark_is_the_last_field() {
        let mut log = AccessLog::new("-", None, None);
        log.egress_policy = Some(EgressPolicy::WouldBlock);
        assert!(log.format().ends_with(" - would_block"), "{}", log.format());
    }

    #[test]
    fn an_upstream_reset_carries_its_transport_failure_reason_as_envoy_logs_it() {
        let mut log = AccessLog::new("HTTP/1.1", None, None);
        log.response_code = 503;
        log.response_flags = "UF";
        log.response_code_details =
            "upstream_reset_before_response_started{remote_connection_failure}";
        log.transport_failure_reason = "delayed connect error: Connection refused".into();
        assert_eq!(
            log.code_details(),
            "upstream_reset_before_response_started{remote_connection_failure|delayed_connect_error:_Connection_refused}"
        );
        assert!(
            log.format().contains(" 503 UF upstream_reset_before_response_started{remote_connection_failure|delayed_connect_error:_Connection_refused} - \"delayed_connect_error:_Connection_refused\" "),
            "{}",
            log.format()
        );
        log.response_code_details = "via_upstream";
        assert_eq!(log.code_details(), "via_upstream");
    }
}
