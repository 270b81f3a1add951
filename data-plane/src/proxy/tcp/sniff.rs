//! Reads the SNI of a passthrough connection from its first bytes as they
//! are copied upstream, so a fall-through chain names its TLS destination
//! without waiting for the client: a client that waits for the server to
//! speak first is not delayed.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::proxy::sni::{self, ClientHello};

/// The most the sniffer keeps of a ClientHello before giving up on it.
const SNIFF_LIMIT: usize = 16 * 1024;

/// A downstream stream whose first bytes are read for a ClientHello while
/// they pass through untouched; `on_decided` is called once they have
/// decided, with the SNI if any.
pub struct SniffSni<S, F> {
    inner: S,
    on_decided: Option<F>,
    /// The bytes read so far, while undecided.
    seen: Vec<u8>,
    /// `None` while undecided; then the SNI, if the bytes were a
    /// ClientHello with one.
    outcome: Option<Option<String>>,
}

impl<S, F: FnOnce(Option<&str>)> SniffSni<S, F> {
    pub fn new(inner: S, on_decided: F) -> Self {
        Self {
            inner,
            on_decided: Some(on_decided),
            seen: Vec::new(),
            outcome: None,
        }
    }

    /// The SNI the client sent, if its first bytes were a ClientHello.
    pub fn into_server_name(self) -> Option<String> {
        self.outcome.flatten()
    }

    fn observe(&mut self, bytes: &[u8]) {
        if self.outcome.is_some() || bytes.is_empty() {
            return;
        }
        self.seen.extend_from_slice(bytes);
        match sni::parse(&self.seen) {
            ClientHello::Tls(name) => self.outcome = Some(name),
            ClientHello::NotTls => self.outcome = Some(None),
            ClientHello::Incomplete if self.seen.len() >= SNIFF_LIMIT => self.outcome = Some(None),
            ClientHello::Incomplete => return,
        }
        self.seen = Vec::new();
        if let (Some(on_decided), Some(server_name)) = (self.on_decided.take(), &self.outcome) {
            on_decided(server_name.as_deref());
        }
    }
}

impl<S: AsyncRead + Unpin, F: FnOnce(Option<&str>) + Unpin> AsyncRead for SniffSni<S, F> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && self.outcome.is_none() {
            let read = &buf.filled()[before..];
            self.observe(read);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin, F: Unpin> AsyncWrite for SniffSni<S, F> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use parking_lot::Mutex;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::proxy::sni::tests::client_hello;

    /// What the sniffer decided, once it has.
    type Decided = Arc<Mutex<Option<Option<String>>>>;

    fn record(decided: &Decided) -> impl FnOnce(Option<&str>) + Unpin + use<> {
        let decided = decided.clone();
        move |name| *decided.lock() = Some(name.map(str::to_string))
    }

    #[tokio::test]
    async fn names_the_sni_of_a_client_hello_split_over_reads_and_passes_every_byte() {
        let hello = client_hello(Some("api.example.com"));
        let (mut client, proxy) = tokio::io::duplex(64 * 1024);
        let decided = Arc::new(Mutex::new(None));
        let mut sniffer = SniffSni::new(proxy, record(&decided));
        let (first, rest) = hello.split_at(10);
        client.write_all(first).await.unwrap();
        let mut got = vec![0; first.len()];
        sniffer.read_exact(&mut got).await.unwrap();
        assert_eq!(*decided.lock(), None, "undecided on a partial ClientHello");
        client.write_all(rest).await.unwrap();
        client.shutdown().await.unwrap();
        sniffer.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, hello);
        assert_eq!(*decided.lock(), Some(Some("api.example.com".to_string())));
        assert_eq!(
            sniffer.into_server_name().as_deref(),
            Some("api.example.com")
        );
    }

    #[tokio::test]
    async fn plain_bytes_name_nothing() {
        let (mut client, proxy) = tokio::io::duplex(1024);
        let decided = Arc::new(Mutex::new(None));
        let mut sniffer = SniffSni::new(proxy, record(&decided));
        client.write_all(b"PING\r\n").await.unwrap();
        let mut got = [0; 6];
        sniffer.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"PING\r\n");
        assert_eq!(*decided.lock(), Some(None));
        assert_eq!(sniffer.into_server_name(), None);
    }
}
