//! Real `curl`, the app in every scenario. A request records the status
//! code, curl's exit code (e.g. 35 for a reset TLS handshake, 28 for a
//! timeout), the last response's headers and the body.
//!
//! curl never uses the system resolver here: a URL whose host is a name must
//! go through a proxy ([`Curl::proxy`]) or have a [`Curl::resolve`] entry,
//! or [`Curl::run`] refuses to start.

use std::fs;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::binaries;
use crate::netns::{self, NetNs};
use crate::process;

/// Extra time allowed past `--max-time` before the harness kills curl.
const KILL_GRACE: Duration = Duration::from_secs(5);

/// A curl invocation to build up and run.
#[derive(Debug, Clone)]
pub struct Curl {
    url: String,
    proxy: Option<String>,
    resolved_hosts: Vec<String>,
    max_time: Duration,
    args: Vec<String>,
    netns: Option<String>,
}

/// What one curl run produced.
#[derive(Debug, Clone)]
pub struct CurlResponse {
    /// curl's exit code: 0 on success, non-zero on a transport failure.
    pub exit_code: i32,
    /// The HTTP status of the last response; 0 when there was none.
    pub status: u16,
    /// The last response's headers, names as sent.
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// curl's error messages (`-sS`).
    pub stderr: String,
}

impl Curl {
    /// A GET of `url` with `--max-time 10` and no proxy.
    pub fn get(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            proxy: None,
            resolved_hosts: Vec::new(),
            max_time: Duration::from_secs(10),
            args: Vec::new(),
            netns: None,
        }
    }

    /// Sends the request through the HTTP proxy at `addr` (`-x`); HTTPS URLs
    /// use CONNECT.
    pub fn proxy(mut self, addr: SocketAddr) -> Self {
        self.proxy = Some(format!("http://{addr}"));
        self
    }

    /// Connects to `addr` for `host:port` (`--resolve`).
    pub fn resolve(mut self, host: &str, port: u16, addr: IpAddr) -> Self {
        self.resolved_hosts.push(host.to_ascii_lowercase());
        let addr = match addr {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("[{v6}]"),
        };
        self.args.push("--resolve".into());
        self.args.push(format!("{host}:{port}:{addr}"));
        self
    }

    /// Trusts the CA certificate in `path` (`--cacert`).
    pub fn cacert(self, path: &Path) -> Self {
        self.arg("--cacert").arg(path.display().to_string())
    }

    /// Adds a request header (`-H 'name: value'`).
    pub fn header(self, name: &str, value: &str) -> Self {
        self.arg("-H").arg(format!("{name}: {value}"))
    }

    /// Gives up after `max_time` (`--max-time`).
    pub fn max_time(mut self, max_time: Duration) -> Self {
        self.max_time = max_time;
        self
    }

    /// Runs curl inside `netns` (as root, so capture rules apply to it).
    pub fn in_netns(mut self, netns: &NetNs) -> Self {
        self.netns = Some(netns.name().to_string());
        self
    }

    /// Any other curl argument.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Runs curl and collects what it got.
    pub fn run(&self) -> Result<CurlResponse> {
        if self.proxy.is_none() {
            self.ensure_no_system_resolver()?;
        }
        let dir = tempfile::tempdir().context("creating a temp dir for curl")?;
        let body_path = dir.path().join("body");
        let headers_path = dir.path().join("headers");
        let curl = binaries::curl()?;
        let mut command = match &self.netns {
            None => Command::new(curl),
            Some(name) => netns::exec_in(name, curl),
        };
        command
            .arg("-sS")
            .arg("-o")
            .arg(&body_path)
            .arg("-D")
            .arg(&headers_path)
            .args(["-w", "%{http_code}"])
            .arg("--max-time")
            .arg(format!("{:.3}", self.max_time.as_secs_f64()));
        match &self.proxy {
            Some(proxy) => command.args(["-x", proxy]),
            None => command.args(["--noproxy", "*"]),
        };
        command.args(&self.args).arg(&self.url);
        let output = process::run("curl", command, self.max_time + KILL_GRACE)?;
        let exit_code = output
            .code()
            .with_context(|| format!("curl was killed by a signal ({})", output.status))?;
        Ok(CurlResponse {
            exit_code,
            status: output.stdout.trim().parse().unwrap_or(0),
            headers: last_header_block(&fs::read_to_string(&headers_path).unwrap_or_default()),
            body: String::from_utf8_lossy(&fs::read(&body_path).unwrap_or_default()).into_owned(),
            stderr: output.stderr,
        })
    }

    fn ensure_no_system_resolver(&self) -> Result<()> {
        let host = url_host(&self.url)
            .with_context(|| format!("cannot find the host in URL {:?}", self.url))?;
        let host = host.to_ascii_lowercase();
        let literal = host.trim_start_matches('[').trim_end_matches(']');
        if literal.parse::<IpAddr>().is_ok()
            || host == "localhost"
            || self.resolved_hosts.contains(&host)
        {
            return Ok(());
        }
        bail!(
            "curl would resolve {host:?} with the system resolver; add .resolve({host:?}, ..) \
             or send it through .proxy(..)"
        )
    }
}

/// Requests sent round after round on a thread of their own, until
/// dropped: traffic for metrics to count. What each gets is not checked.
pub struct Repeating {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Repeating {
    /// Sends `requests` one after another, then pauses `pause`, and again.
    pub fn start(requests: Vec<Curl>, pause: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                for request in &requests {
                    let _ = request.run();
                }
                thread::sleep(pause);
            }
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Repeating {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            // A panic there was printed by the hook already.
            let _ = thread.join();
        }
    }
}

impl CurlResponse {
    /// The first value of response header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> Result<serde_json::Value> {
        serde_json::from_str(&self.body)
            .with_context(|| format!("response body is not JSON:\n{}", self.body))
    }

    /// Fails, showing what curl saw, unless curl succeeded with `status`.
    pub fn ensure_status(&self, status: u16) -> Result<&Self> {
        if self.exit_code != 0 || self.status != status {
            bail!(
                "expected HTTP {status}, got HTTP {} with curl exit code {}\nstderr: {}\nbody: {}",
                self.status,
                self.exit_code,
                self.stderr,
                self.body
            );
        }
        Ok(self)
    }
}

/// The host of `scheme://[userinfo@]host[:port][/path]`.
fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let host = if host_port.starts_with('[') {
        &host_port[..=host_port.find(']')?]
    } else {
        host_port.split(':').next()?
    };
    (!host.is_empty()).then_some(host)
}

/// The headers of the last response in a `-D` dump, which also holds any
/// proxy CONNECT reply, 1xx responses and redirects before it.
fn last_header_block(dump: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = dump
        .lines()
        .map(|line| line.trim_end_matches('\r'))
        .collect();
    let start = lines
        .iter()
        .rposition(|line| line.starts_with("HTTP/"))
        .map_or(lines.len(), |status_line| status_line + 1);
    lines[start..]
        .iter()
        .take_while(|line| !line.is_empty())
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_string(), value.trim().to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{last_header_block, url_host};

    #[test]
    fn finds_url_hosts() {
        assert_eq!(url_host("http://httpbin.org/headers"), Some("httpbin.org"));
        assert_eq!(url_host("https://a.b:8443?x"), Some("a.b"));
        assert_eq!(url_host("http://u:p@127.0.0.1:80/"), Some("127.0.0.1"));
        assert_eq!(url_host("http://[::1]:80/"), Some("[::1]"));
        assert_eq!(url_host("httpbin.org"), None);
    }

    #[test]
    fn keeps_the_last_header_block() {
        let dump = "HTTP/1.1 200 Connection established\r\n\r\n\
                    HTTP/1.1 404 Not Found\r\nServer: envoy\r\nX-A: b: c\r\n\r\n";
        assert_eq!(
            last_header_block(dump),
            vec![
                ("Server".to_string(), "envoy".to_string()),
                ("X-A".to_string(), "b: c".to_string())
            ]
        );
    }
}
