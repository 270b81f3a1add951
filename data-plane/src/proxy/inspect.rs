//! The listener filter phase of a connection, as Envoy's TLS inspector
//! runs it: read the ClientHello's SNI from the first bytes, without
//! consuming them, within the listener's filter timeout. Waiting for more
//! bytes sleeps until the kernel reports new data (never polls the bytes
//! already pending), a client that closes first or sends what cannot be a
//! ClientHello is decided at once.

use std::io;
use std::os::fd::AsRawFd;
use std::time::Duration;

use nix::sys::socket::{MsgFlags, recv};
use tokio::io::Interest;
use tokio::net::TcpStream;

use super::sni::{self, ClientHello, MAX_HELLO_LEN};
use super::stats::listener::TlsInspectorStats;

/// What the first bytes of a connection said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hello {
    /// A ClientHello, with its SNI if it carries a usable one.
    Tls(Option<String>),
    /// Not a TLS handshake: a chain is chosen without SNI.
    NotTls,
    /// The client closed or reset its side before a ClientHello was
    /// complete: Envoy closes the connection.
    Closed,
    /// The listener filter timeout passed before a ClientHello was
    /// complete.
    TimedOut,
}

impl Hello {
    /// The SNI, when a chain is chosen by it.
    pub fn server_name(self) -> Option<String> {
        match self {
            Hello::Tls(name) => name,
            _ => None,
        }
    }

    /// Counts this outcome in the TLS inspector's stats.
    pub fn record(&self, stats: &TlsInspectorStats) {
        use std::sync::atomic::Ordering::Relaxed;
        let counter = match self {
            Hello::Tls(Some(_)) => &stats.sni_found,
            Hello::Tls(None) => &stats.sni_not_found,
            Hello::NotTls => &stats.tls_not_found,
            Hello::Closed => &stats.connection_closed,
            Hello::TimedOut => return,
        };
        counter.fetch_add(1, Relaxed);
        if matches!(self, Hello::Tls(_)) {
            stats.tls_found.fetch_add(1, Relaxed);
        }
    }
}

/// Reads the ClientHello of `stream` within `timeout` (`None`: no limit,
/// as Envoy's `0s`). Nothing is consumed.
pub async fn client_hello(stream: &TcpStream, timeout: Option<Duration>) -> Hello {
    HelloReader::default().read(stream, timeout).await
}

/// Reads one connection's ClientHello, counting its peeks.
#[derive(Debug, Default)]
pub(crate) struct HelloReader {
    /// How many times the pending bytes were peeked.
    pub(crate) peeks: usize,
}

impl HelloReader {
    pub(crate) async fn read(&mut self, stream: &TcpStream, timeout: Option<Duration>) -> Hello {
        let reading = self.read_until_decided(stream);
        match timeout {
            Some(timeout) => tokio::time::timeout(timeout, reading)
                .await
                .unwrap_or(Hello::TimedOut),
            None => reading.await,
        }
    }

    async fn read_until_decided(&mut self, stream: &TcpStream) -> Hello {
        let mut buf = vec![0; MAX_HELLO_LEN];
        let mut seen = 0;
        loop {
            seen = match self.peek_more(stream, &mut buf, seen).await {
                Ok(Some(n)) => n,
                Ok(None) | Err(_) => return Hello::Closed,
            };
            match sni::parse(&buf[..seen]) {
                ClientHello::Tls(name) => return Hello::Tls(name),
                ClientHello::NotTls => return Hello::NotTls,
                // `parse` decides by MAX_HELLO_LEN bytes; never wait on a
                // full buffer.
                ClientHello::Incomplete if seen == buf.len() => return Hello::NotTls,
                ClientHello::Incomplete => {}
            }
        }
    }

    /// Waits until more than `seen` bytes are pending and peeks them into
    /// `buf`. `None`: the client closed its side with no more to come.
    ///
    /// The peek runs inside `try_io`: when it finds no new byte, the
    /// socket's readiness is cleared, so the next wait sleeps until the
    /// kernel reports new data, a half close or a reset, instead of
    /// returning at once because old bytes are still pending.
    async fn peek_more(
        &mut self,
        stream: &TcpStream,
        buf: &mut [u8],
        seen: usize,
    ) -> io::Result<Option<usize>> {
        loop {
            let ready = stream.ready(Interest::READABLE).await?;
            let peeked = stream.try_io(Interest::READABLE, || {
                self.peeks += 1;
                let n =
                    recv(stream.as_raw_fd(), buf, MsgFlags::MSG_PEEK).map_err(io::Error::from)?;
                if n == seen && n != 0 {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                Ok(n)
            });
            match peeked {
                Ok(0) => return Ok(None),
                Ok(n) => return Ok(Some(n)),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    // Nothing new. A half close stays in the readiness: with
                    // it, nothing more will ever come.
                    if ready.is_read_closed() {
                        return Ok(None);
                    }
                }
                Err(error) => return Err(error),
            }
        }
    }
}

/// Closes a connection the inspector gave up on with a FIN: the bytes it
/// sent and nobody read are discarded first, so that the kernel does not
/// answer them with a reset, and the client sees the end of the stream.
/// (Read from the socket directly: the runtime's readiness was cleared
/// when the inspector last found nothing new.)
pub fn close(stream: TcpStream) {
    let mut discard = [0u8; 4096];
    for _ in 0..(4 * MAX_HELLO_LEN / discard.len()) {
        match recv(stream.as_raw_fd(), &mut discard, MsgFlags::MSG_DONTWAIT) {
            Ok(n) if n > 0 => {}
            _ => break,
        }
    }
    drop(stream);
}

#[cfg(test)]
mod tests;
