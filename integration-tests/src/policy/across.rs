//! An app's request in flight across a change of the proxy's world: the
//! proxy's drain (a stopping pod), or a config update the probe serves
//! (a listener removed); the response head the app then gets.

use std::net::TcpStream;
use std::sync::PoisonError;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result, ensure};

use super::Probe;
use super::scenario::MESH;
use crate::parity::CONVERGE;
use crate::process::eventually;

impl Probe<'_> {
    /// Sends `GET <path>` for `host` on a connection of its own from the
    /// app to `port` of the side's host, runs `change` `after` later, and
    /// reads the response: its status line and headers.
    pub fn exchange_across(
        &self,
        (host, port, path): (&str, u16, &str),
        after: Duration,
        change: impl FnOnce() -> Result<()>,
    ) -> Result<String> {
        let target = (self.netns.host_ip(), port);
        let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: probe\r\n\r\n");
        self.sent.fetch_add(1, Ordering::Relaxed);
        std::thread::scope(|scope| {
            let exchange = scope.spawn(|| {
                self.netns.run_inside(|| {
                    let mut stream = TcpStream::connect(target).context("connecting")?;
                    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
                    std::io::Write::write_all(&mut stream, request.as_bytes())?;
                    let mut response = Vec::new();
                    let mut buffer = [0u8; 4096];
                    while !response.windows(4).any(|window| window == b"\r\n\r\n") {
                        let read = std::io::Read::read(&mut stream, &mut buffer)?;
                        ensure!(read > 0, "closed before the response head");
                        response.extend_from_slice(&buffer[..read]);
                    }
                    Ok(String::from_utf8_lossy(&response).into_owned())
                })
            });
            std::thread::sleep(after);
            let changed = change();
            let response = exchange
                .join()
                .unwrap_or_else(|_| anyhow::bail!("the exchange thread panicked"));
            changed?;
            let response = response?;
            Ok(response
                .split("\r\n\r\n")
                .next()
                .unwrap_or_default()
                .to_string())
        })
    }

    /// [`Probe::exchange_across`] port 80 with the proxy's drain begun
    /// `drain_after` into it (a stopping pod). The proxy is draining from
    /// then on: run this last.
    pub fn exchange_across_drain(
        &self,
        host: &str,
        path: &str,
        drain_after: Duration,
    ) -> Result<String> {
        self.exchange_across((host, 80, path), drain_after, || self.sidecar.begin_drain())
    }

    /// Serves `files` (templates, as a scenario's) instead of the
    /// scenario's, and waits until the sidecar has no resource named
    /// `gone`.
    pub fn serve_instead(&self, files: &[(String, String)], gone: &str) -> Result<()> {
        let rendered: Vec<(&str, String)> = files
            .iter()
            .map(|(name, template)| (name.as_str(), self.servers.render(template)))
            .collect();
        self.config
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .apply_files(MESH, &rendered)?;
        eventually(CONVERGE, || {
            let resources = self.sidecar.config()?;
            ensure!(resources.resource(gone).is_none(), "{gone} is still there");
            Ok(())
        })
    }
}
