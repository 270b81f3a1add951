//! When the downstream request is complete (its body read to the end), as
//! Envoy's router waits for it: the route timeout and each try's per-try
//! timeout start then, not when the request head arrived.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body as _, Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::sync::watch;

use crate::upstream::Body;

/// Resolves once the request it was made with is complete.
#[derive(Clone)]
pub(super) struct RequestEnd(watch::Receiver<bool>);

impl RequestEnd {
    /// `body` passed on, and the end of it to wait for: at once when it has
    /// nothing to send.
    pub(super) fn watch(body: Body) -> (Body, Self) {
        let (sender, receiver) = watch::channel(body.is_end_stream());
        let body = EndSignalling {
            inner: body,
            sender,
        };
        (body.boxed(), Self(receiver))
    }

    /// Waits for the request to be complete; never resolves when its body
    /// fails or is dropped before its end.
    pub(super) async fn complete(&self) {
        let mut receiver = self.0.clone();
        if receiver.wait_for(|ended| *ended).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// A request body telling [`RequestEnd`] when it has been read whole.
struct EndSignalling {
    inner: Body,
    sender: watch::Sender<bool>,
}

impl http_body::Body for EndSignalling {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        let ended = match &polled {
            Poll::Ready(None) => true,
            Poll::Ready(Some(Ok(_))) => self.inner.is_end_stream(),
            _ => false,
        };
        if ended {
            self.sender.send_replace(true);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http_body_util::{Empty, StreamBody};
    use tokio::sync::mpsc;
    use tokio_stream::wrappers::ReceiverStream;

    use super::*;

    async fn ended(end: &RequestEnd) -> bool {
        tokio::time::timeout(Duration::from_millis(50), end.complete())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn a_request_without_a_body_is_complete_at_once() {
        let body = Empty::new().map_err(|never| match never {}).boxed();
        let (_body, end) = RequestEnd::watch(body);
        assert!(ended(&end).await);
    }

    #[tokio::test]
    async fn a_streamed_body_is_complete_once_read_to_its_end() {
        let (send, receive) = mpsc::channel::<Result<Frame<Bytes>, hyper::Error>>(4);
        let body = StreamBody::new(ReceiverStream::new(receive)).boxed();
        let (mut body, end) = RequestEnd::watch(body);
        send.send(Ok(Frame::data(Bytes::from_static(b"part"))))
            .await
            .unwrap();
        assert!(body.frame().await.is_some());
        assert!(!ended(&end).await, "complete before its end");
        drop(send);
        assert!(body.frame().await.is_none());
        assert!(ended(&end).await);
    }
}
