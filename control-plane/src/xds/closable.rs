//! Connections a stream can close: every accepted socket is wrapped so
//! that a stream whose proxy stops reading closes its whole connection, and
//! with it whatever the connection had buffered for that proxy. The
//! connection's peer and its handle travel in each request's extensions
//! ([`Peer`]).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use futures::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tonic::transport::server::{Connected, TcpConnectInfo};

/// Closes one connection.
#[derive(Debug, Clone, Default)]
pub struct CloseHandle(Arc<State>);

#[derive(Debug, Default)]
struct State {
    closed: AtomicBool,
    waker: AtomicWaker,
}

impl CloseHandle {
    /// Fails the connection's reads and writes from now on; the server then
    /// drops it and every stream on it.
    pub fn close(&self) {
        self.0.closed.store(true, Ordering::Release);
        self.0.waker.wake();
    }

    fn check(&self, cx: &mut Context<'_>) -> io::Result<()> {
        self.0.waker.register(cx.waker());
        if self.0.closed.load(Ordering::Acquire) {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "closed by the control plane",
            ));
        }
        Ok(())
    }
}

/// Who is on the other end of a connection, and how to close it.
#[derive(Debug, Clone)]
pub struct Peer {
    pub remote_addr: Option<SocketAddr>,
    pub close: CloseHandle,
}

impl Peer {
    /// The peer of the connection a request came on (TLS or not).
    pub fn of(extensions: &http::Extensions) -> Option<&Peer> {
        extensions.get::<Peer>()
    }
}

/// An accepted TCP connection that can be closed by a [`CloseHandle`].
pub struct Closable {
    inner: TcpStream,
    close: CloseHandle,
}

impl Closable {
    pub fn new(inner: TcpStream) -> Self {
        Self {
            inner,
            close: CloseHandle::default(),
        }
    }
}

impl Connected for Closable {
    type ConnectInfo = Peer;

    fn connect_info(&self) -> Peer {
        let tcp: TcpConnectInfo = self.inner.connect_info();
        Peer {
            remote_addr: tcp.remote_addr(),
            close: self.close.clone(),
        }
    }
}

impl AsyncRead for Closable {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.close.check(cx)?;
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Closable {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.close.check(cx)?;
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.close.check(cx)?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;

    use super::*;

    #[tokio::test]
    async fn a_closed_connection_fails_its_pending_read_and_the_peer_sees_it_end() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        let mut server = Closable::new(accepted);
        let peer = server.connect_info();
        assert_eq!(peer.remote_addr, Some(client.local_addr().unwrap()));
        let reader = tokio::spawn(async move {
            let mut buf = [0; 8];
            let read = server.read(&mut buf).await;
            drop(server);
            read
        });
        peer.close.close();
        let error = reader.await.unwrap().expect_err("the read fails");
        assert_eq!(error.kind(), io::ErrorKind::ConnectionAborted);
        let mut buf = [0; 8];
        assert_eq!(
            client.read(&mut buf).await.unwrap(),
            0,
            "the client sees EOF"
        );
    }
}
