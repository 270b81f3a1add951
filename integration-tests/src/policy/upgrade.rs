//! An app's HTTP/1.1 upgrade through the sidecar: the handshake on a
//! connection of its own to port 80 of the side's host (captured), the
//! head that comes back and, once switched to WebSocket, one frame echoed
//! by the upstream ([`crate::websocket`]).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result};

use super::Probe;
use crate::websocket::{echoed_text_frame, handshake, masked_text_frame, read_head};

/// How long the app waits for each answer.
const GUARD: Duration = Duration::from_secs(10);

/// What the app got for an upgrade request.
#[derive(Debug, Clone)]
pub struct Upgrade {
    /// The status code of the response head.
    pub status: String,
    /// The response head, lower-cased.
    pub head: String,
    /// Whether a frame sent after a 101 came back echoed.
    pub echoed: bool,
}

impl Upgrade {
    /// The value of response header `name` (lower case), or `-`.
    pub fn header(&self, name: &str) -> String {
        let prefix = format!("{name}:");
        self.head
            .lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .map_or_else(|| "-".to_string(), |value| value.trim().to_string())
    }
}

impl Probe<'_> {
    /// Sends `GET <path>` for `host` asking to upgrade to `protocol` with
    /// WebSocket key `key`, reads the response head and, when switched,
    /// sends a text frame and reads its echo; then closes the connection.
    pub fn upgrade(&self, host: &str, path: &str, protocol: &str, key: &str) -> Result<Upgrade> {
        let target = (self.netns.host_ip(), 80);
        let request = handshake(host, path, protocol, key);
        self.sent.fetch_add(1, Ordering::Relaxed);
        self.netns.run_inside(|| {
            let mut stream = TcpStream::connect(target).context("connecting")?;
            stream.set_read_timeout(Some(GUARD))?;
            stream.write_all(request.as_bytes())?;
            let head = read_head(&mut stream)?;
            let status = head
                .split_whitespace()
                .nth(1)
                .unwrap_or_default()
                .to_string();
            let mut echoed = false;
            if status == "101" {
                stream.write_all(&masked_text_frame(b"ping")?)?;
                let expected = echoed_text_frame(b"ping");
                let mut frame = vec![0; expected.len()];
                stream.read_exact(&mut frame).context("reading the echo")?;
                echoed = frame == expected;
            }
            Ok(Upgrade {
                status,
                head,
                echoed,
            })
        })
    }
}
