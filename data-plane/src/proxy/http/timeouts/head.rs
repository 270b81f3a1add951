//! The request head timeout of HTTP/1 (`request_headers_timeout`), on the
//! connection's bytes, for every request of a keep-alive connection: the
//! clock starts at the first byte of a request head, or, for a head that
//! arrived (whole or in part) while a request before it was in flight,
//! when that request's stream closes, as Envoy's codec takes up a
//! pipelined request only then. It stops when the head is complete
//! (`framing.rs` tells heads from bodies). When it runs out, the client
//! gets Envoy's answer, 408 `request header timeout` with
//! `Connection: close`, and the connection closes. The gap between
//! requests is the idle timeout's. An HTTP/2 connection (its preface) is
//! left alone: its frames are not heads.

mod framing;

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use super::connection::Streams;
use framing::Framing;

/// The HTTP/2 connection preface.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// What Envoy sends when a request head is not complete in time.
const REPLY: &[u8] = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 22\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\nrequest header timeout";

/// The length of the 408's body.
pub(super) const REPLY_BODY_LEN: usize = "request header timeout".len();

/// What the connection speaks, as far as its first bytes tell.
enum Phase {
    /// The first bytes match this much of the HTTP/2 preface.
    Detecting(usize),
    Http1,
    /// HTTP/2, or no head timeout: bytes pass untouched.
    Unwatched,
    /// The head timed out: this much of the 408 is written.
    Replying(usize),
    /// The 408 is written; reads see the end of the stream.
    Replied,
}

/// A connection's IO with the request head timeout.
pub(in crate::proxy::http) struct HeadTimeoutIo<IO> {
    inner: IO,
    timeout: Option<Duration>,
    streams: Arc<Streams>,
    phase: Phase,
    /// Where the client's bytes are: in a head or not.
    framing: Framing,
    /// When the head being read began, while one is.
    head_began: Option<Instant>,
    sleep: Option<Pin<Box<Sleep>>>,
    /// Called once when the timeout fires (stats, access log).
    on_timeout: Option<Box<dyn FnOnce() + Send>>,
}

impl<IO> HeadTimeoutIo<IO> {
    /// `inner` with a head timeout of `timeout` (`None`: no timeout);
    /// `streams` says when a head is complete.
    pub(in crate::proxy::http) fn new(
        inner: IO,
        timeout: Option<Duration>,
        streams: Arc<Streams>,
        on_timeout: Box<dyn FnOnce() + Send>,
    ) -> Self {
        Self {
            inner,
            timeout,
            streams,
            phase: if timeout.is_some() {
                Phase::Detecting(0)
            } else {
                Phase::Unwatched
            },
            framing: Framing::default(),
            head_began: None,
            sleep: None,
            on_timeout: Some(on_timeout),
        }
    }

    /// Notes bytes the client sent.
    fn received(&mut self, bytes: &[u8]) {
        if let Phase::Detecting(seen) = self.phase {
            let want = &PREFACE[seen..];
            let n = bytes.len().min(want.len());
            self.phase = if bytes[..n] != want[..n] {
                Phase::Http1
            } else if seen + n == PREFACE.len() {
                Phase::Unwatched
            } else {
                Phase::Detecting(seen + n)
            };
            if matches!(self.phase, Phase::Unwatched) {
                self.head_began = None;
                return;
            }
        }
        let heads = self.framing.heads();
        self.framing.received(bytes);
        self.head_began = match self.head_began {
            _ if !self.framing.in_head() => None,
            Some(began) if self.framing.heads() == heads => Some(began),
            _ => Some(Instant::now()),
        };
    }

    /// When the head being read must be complete: none while no head is,
    /// or while a request before it is in flight (`cx` is woken when that
    /// ends).
    fn deadline(&self, cx: &Context<'_>) -> Option<Instant> {
        let (began, timeout) = (self.head_began?, self.timeout?);
        if self.streams.active() > 0 {
            self.streams.wake_when_idle(cx.waker());
            if self.streams.active() > 0 {
                return None;
            }
        }
        Some(began.max(self.streams.idle_since()) + timeout)
    }

    /// Whether `deadline` has passed.
    fn expired(&mut self, cx: &mut Context<'_>, deadline: Instant) -> bool {
        let sleep = match &mut self.sleep {
            Some(sleep) => {
                if sleep.deadline() != deadline {
                    sleep.as_mut().reset(deadline);
                }
                sleep
            }
            None => self
                .sleep
                .insert(Box::pin(tokio::time::sleep_until(deadline))),
        };
        sleep.as_mut().poll(cx).is_ready()
    }
}

impl<IO: AsyncWrite + Unpin> HeadTimeoutIo<IO> {
    /// Writes the 408; then the connection reads as ended.
    fn poll_reply(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Phase::Replying(written) = self.phase {
            if written == REPLY.len() {
                ready!(Pin::new(&mut self.inner).poll_flush(cx))?;
                self.phase = Phase::Replied;
            } else {
                let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &REPLY[written..]))?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                self.phase = Phase::Replying(written + n);
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncRead for HeadTimeoutIo<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match this.phase {
            Phase::Replying(_) => return this.poll_reply(cx),
            Phase::Replied => return Poll::Ready(Ok(())),
            Phase::Unwatched => return Pin::new(&mut this.inner).poll_read(cx, buf),
            Phase::Detecting(_) | Phase::Http1 => {}
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.received(&buf.filled()[before..]);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending
                if this
                    .deadline(cx)
                    .is_some_and(|deadline| this.expired(cx, deadline)) =>
            {
                this.head_began = None;
                this.sleep = None;
                if let Some(on_timeout) = this.on_timeout.take() {
                    on_timeout();
                }
                this.phase = Phase::Replying(0);
                this.poll_reply(cx)
            }
            other => other,
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for HeadTimeoutIo<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests;
