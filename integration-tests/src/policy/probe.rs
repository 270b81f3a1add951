//! What a scenario's probe works with on one side: the app's requests
//! (curl inside the namespace, one at a time or in parallel), what the
//! upstream servers received, the sidecar's access log, stats and
//! `/clusters`, all counted from the start of the run.

use std::net::{IpAddr, Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};

use super::servers::Servers;
use crate::curl::Curl;
use crate::netns::NetNs;
use crate::parity::access_log::{code_and_flags, transport_failure_reason};
use crate::parity::config_files::ConfigFiles;
use crate::parity::{Kind, Proxy};
use crate::process::eventually;
use crate::prometheus;
use crate::upstream::{Failing, RecordedRequest, UPSTREAM_NAME_HEADER};

/// How long a proxy gets to write the access log lines of a run.
const LOG_WAIT: Duration = Duration::from_secs(5);

/// One request of the app: `curl -X <method> <url>`, the URL's host
/// resolved to the side's host address.
#[derive(Debug, Clone)]
pub struct Call {
    method: &'static str,
    url: String,
    headers: Vec<(String, String)>,
    max_time: Duration,
    /// curl options beside the method and headers (`--path-as-is`).
    options: Vec<&'static str>,
    /// The file whose bytes are the request body.
    body: Option<PathBuf>,
    /// The most bytes a second curl sends (and reads).
    rate: Option<u32>,
}

impl Call {
    /// `GET http://<host><path>`.
    pub fn get(host: &str, path: &str) -> Self {
        Self {
            method: "GET",
            url: format!("http://{host}{path}"),
            headers: Vec::new(),
            max_time: Duration::from_secs(15),
            options: Vec::new(),
            body: None,
            rate: None,
        }
    }

    /// `POST http://<host><path>` with the bytes of file `body` as its
    /// body, sent at once (no `Expect: 100-continue`).
    pub fn post(host: &str, path: &str, body: &Path) -> Self {
        Self {
            method: "POST",
            body: Some(body.to_path_buf()),
            ..Self::get(host, path)
        }
    }

    /// HTTP/2 without TLS from the first byte: curl's
    /// `--http2-prior-knowledge`.
    pub fn http2(mut self) -> Self {
        self.options.push("--http2-prior-knowledge");
        self
    }

    /// The path sent as written (`..` and `.` segments kept): curl's
    /// `--path-as-is`.
    pub fn path_as_is(mut self) -> Self {
        self.options.push("--path-as-is");
        self
    }

    /// The request body sent at `bytes_per_second` at most: curl's
    /// `--limit-rate`.
    pub fn upload_rate(mut self, bytes_per_second: u32) -> Self {
        self.rate = Some(bytes_per_second);
        self
    }

    /// Another method (e.g. `OPTIONS` for a CORS preflight).
    pub fn method(self, method: &'static str) -> Self {
        Self { method, ..self }
    }

    /// Another URL (`http://host:port/path`, `https://..`).
    pub fn url(self, url: &str) -> Self {
        Self {
            url: url.to_string(),
            ..self
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// The URL's host and port.
    fn host_and_port(&self) -> (String, u16) {
        let (scheme, rest) = self.url.split_once("://").unwrap_or(("http", &self.url));
        let authority = rest.split(['/', '?']).next().unwrap_or(rest);
        let default = if scheme == "https" { 443 } else { 80 };
        match authority.rsplit_once(':') {
            Some((host, port)) => (host.to_string(), port.parse().unwrap_or(default)),
            None => (authority.to_string(), default),
        }
    }
}

/// What the app got for one [`Call`].
#[derive(Debug, Clone)]
pub struct Reply {
    /// The status, or 0 when curl got no response.
    pub status: u16,
    pub exit_code: i32,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub elapsed: Duration,
}

impl Reply {
    /// `<status>`, or `curl exit <code>`.
    pub fn result(&self) -> String {
        if self.exit_code == 0 {
            self.status.to_string()
        } else {
            format!("curl exit {}", self.exit_code)
        }
    }

    /// The first value of response header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The value of header `name`, or `-`.
    pub fn header_or_dash(&self, name: &str) -> String {
        self.header(name).unwrap_or("-").to_string()
    }

    /// The upstream server that answered (its `x-upstream`), or `-`.
    pub fn served_by(&self) -> String {
        self.header_or_dash(UPSTREAM_NAME_HEADER)
    }
}

/// One side's run of one scenario.
pub struct Probe<'a> {
    pub(super) kind: Kind,
    pub(super) netns: &'a NetNs,
    pub(super) sidecar: &'a Proxy,
    pub(super) servers: &'a Servers,
    pub(super) server_marks: Vec<usize>,
    pub(super) log_mark: usize,
    /// Requests sent through the sidecar so far: access log lines to wait for.
    pub(super) sent: AtomicUsize,
    /// The control plane's config files, for a probe that changes them.
    pub(super) config: Mutex<&'a mut ConfigFiles>,
}

impl Probe<'_> {
    /// Which proxy this side runs.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Where the side's servers listen.
    pub fn host_ip(&self) -> Ipv4Addr {
        self.netns.host_ip()
    }

    pub fn netns(&self) -> &NetNs {
        self.netns
    }

    /// Sends `call` from the app and waits for the reply.
    pub fn send(&self, call: &Call) -> Result<Reply> {
        let (host, port) = call.host_and_port();
        let mut curl = Curl::get(call.url.clone())
            .resolve(&host, port, IpAddr::V4(self.netns.host_ip()))
            .in_netns(self.netns)
            .max_time(call.max_time)
            .arg("-X")
            .arg(call.method);
        for (name, value) in &call.headers {
            curl = curl.header(name, value);
        }
        for option in &call.options {
            curl = curl.arg(*option);
        }
        if let Some(body) = &call.body {
            curl = curl
                .arg("-H")
                .arg("Expect:")
                .arg("--data-binary")
                .arg(format!("@{}", body.display()));
        }
        if let Some(rate) = call.rate {
            curl = curl.arg("--limit-rate").arg(rate.to_string());
        }
        self.sent.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let response = curl.run()?;
        Ok(Reply {
            status: response.status,
            exit_code: response.exit_code,
            headers: response.headers,
            body: response.body,
            elapsed: started.elapsed(),
        })
    }

    /// Sends `call` `count` times, one after another.
    pub fn send_times(&self, call: &Call, count: usize) -> Result<Vec<Reply>> {
        (0..count).map(|_| self.send(call)).collect()
    }

    /// Sends every call at once (each its own curl), replies in order.
    pub fn send_parallel(&self, calls: &[Call]) -> Result<Vec<Reply>> {
        std::thread::scope(|scope| {
            let sending: Vec<_> = calls
                .iter()
                .map(|call| {
                    // Each curl starts a moment after the one before, so the
                    // proxy sees them in order.
                    std::thread::sleep(Duration::from_millis(100));
                    scope.spawn(move || self.send(call))
                })
                .collect();
            sending
                .into_iter()
                .map(|thread| {
                    thread
                        .join()
                        .unwrap_or_else(|_| anyhow::bail!("a curl thread panicked"))
                })
                .collect()
        })
    }

    /// The port server `name` listens on at [`Probe::host_ip`].
    pub fn port(&self, name: &str) -> Result<u16> {
        Ok(self.servers.get(name)?.port())
    }

    /// The requests server `name` received during this run.
    pub fn received(&self, name: &str) -> Result<Vec<RecordedRequest>> {
        self.servers.received_since(name, &self.server_marks)
    }

    /// Makes server `name` fail (healed at the end of the run).
    pub fn fail(&self, name: &str, failing: Failing) -> Result<()> {
        self.servers.get(name)?.fail(failing);
        Ok(())
    }

    /// `<code> <flags>` of each access log line of this run, once there is
    /// one per request sent (or what there is after [`LOG_WAIT`]).
    pub fn log(&self) -> Vec<String> {
        self.log_lines()
            .iter()
            .map(|line| code_and_flags(line))
            .collect()
    }

    /// The `%UPSTREAM_TRANSPORT_FAILURE_REASON%` of each access log line
    /// of this run, as [`Probe::log`] waits for them.
    pub fn transport_failure_reasons(&self) -> Vec<String> {
        self.log_lines()
            .iter()
            .map(|line| transport_failure_reason(line))
            .collect()
    }

    fn log_lines(&self) -> Vec<String> {
        let wanted = self.log_mark + self.sent.load(Ordering::Relaxed);
        let lines = eventually(LOG_WAIT, || {
            let lines = self.sidecar.access_log();
            ensure!(lines.len() >= wanted, "{} of {wanted} lines", lines.len());
            Ok(lines)
        })
        .unwrap_or_else(|_| self.sidecar.access_log());
        lines[self.log_mark.min(lines.len())..].to_vec()
    }

    /// Counter or gauge `stat` of `cluster` by Envoy's name (e.g.
    /// `upstream_rq_pending_overflow`): from `/stats` as Envoy writes it
    /// (`cluster.<cluster>.<stat>: <value>`), else from the Prometheus
    /// text both proxies serve (`envoy_cluster_<stat>` with
    /// `envoy_cluster_name`, dots in the stat made underscores); `absent`
    /// when the proxy has neither.
    pub fn cluster_stat(&self, cluster: &str, stat: &str) -> Result<String> {
        let text = self.admin("/stats")?;
        let prefix = format!("cluster.{cluster}.{stat}: ");
        if let Some(value) = text.lines().find_map(|line| line.strip_prefix(&prefix)) {
            return Ok(value.trim().to_string());
        }
        let text = self.admin("/stats/prometheus")?;
        let value = prometheus::sum(
            &text,
            &format!("envoy_cluster_{}", stat.replace('.', "_")),
            &[("envoy_cluster_name", cluster)],
        );
        Ok(value.map_or_else(|| "absent".to_string(), |value| value.to_string()))
    }

    /// The `health_flags` `/clusters` shows for server `name` in `cluster`
    /// (`healthy`, `/failed_outlier_check`, ..), or `absent`.
    pub fn health_flags(&self, cluster: &str, name: &str) -> Result<String> {
        let addr = self.servers.get(name)?.addr().to_string();
        let text = self.admin("/clusters")?;
        let prefix = format!("{cluster}::{addr}::health_flags::");
        Ok(text
            .lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .unwrap_or("absent")
            .to_string())
    }

    /// Connects from the app to `port` of the host (captured), sends
    /// nothing, and returns how long from the connect until the proxy
    /// closed the connection (at most `limit`, then fails).
    pub fn idle_until_closed(&self, port: u16, limit: Duration) -> Result<Duration> {
        let target = (self.netns.host_ip(), port);
        self.netns.run_inside(|| {
            // From before the connection exists: the proxy's timer starts
            // once it has accepted it, so never earlier.
            let started = Instant::now();
            let mut stream = TcpStream::connect(target).context("connecting")?;
            stream.set_read_timeout(Some(limit))?;
            let mut buffer = [0u8; 64];
            let read = std::io::Read::read(&mut stream, &mut buffer);
            let elapsed = started.elapsed();
            match read {
                Ok(0) => Ok(elapsed),
                Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => Ok(elapsed),
                Ok(count) => anyhow::bail!("got {count} bytes instead of a close"),
                Err(error) => Err(error).context(format!("not closed within {limit:?}")),
            }
        })
    }

    fn admin(&self, path: &str) -> Result<String> {
        let response = self.sidecar.admin_get(path)?;
        response
            .ensure_status(200)
            .with_context(|| format!("{} admin {path}", self.kind.name()))?;
        Ok(response.body)
    }
}
