//! A stream's outgoing queue: one response at a time, and each must be
//! taken by the proxy within the send timeout. The response body counts the
//! messages it hands to the connection, piece by piece; when the connection
//! asks it for the next message (which it does once the last piece of the
//! previous one had room in the proxy's flow-control window), every message
//! handed so far was taken. A proxy that stops reading thus holds up its
//! stream, never a growing queue.

use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

/// Responses waiting for the body: one, so that a stream holds at most the
/// response being sent and the one after it.
const QUEUE: usize = 1;

/// Why a response was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("the stream closed while a response was being sent")]
    Closed,
    #[error("the proxy did not take a response within {0:?}")]
    TimedOut(Duration),
}

/// The stream task's end.
pub struct Outbox<R> {
    tx: mpsc::Sender<R>,
    taken: watch::Receiver<u64>,
    sent: u64,
    timeout: Duration,
}

/// The response body's end.
pub struct Inbox<R> {
    rx: mpsc::Receiver<R>,
    taken: watch::Sender<u64>,
    handed: u64,
}

/// A queue whose sends wait up to `timeout` for the proxy to take them.
pub fn outbox<R>(timeout: Duration) -> (Outbox<R>, Inbox<R>) {
    let (tx, rx) = mpsc::channel(QUEUE);
    let (taken_tx, taken_rx) = watch::channel(0);
    let outbox = Outbox {
        tx,
        taken: taken_rx,
        sent: 0,
        timeout,
    };
    let inbox = Inbox {
        rx,
        taken: taken_tx,
        handed: 0,
    };
    (outbox, inbox)
}

impl<R> Outbox<R> {
    /// Queues `item` and waits until the proxy has taken it.
    pub async fn send(&mut self, item: R) -> Result<(), SendError> {
        self.sent += 1;
        let seq = self.sent;
        let timeout = self.timeout;
        let (tx, taken) = (&self.tx, &mut self.taken);
        let delivered = async {
            tx.send(item).await.map_err(|_| SendError::Closed)?;
            taken
                .wait_for(|taken| *taken >= seq)
                .await
                .map_err(|_| SendError::Closed)?;
            Ok(())
        };
        tokio::time::timeout(timeout, delivered)
            .await
            .unwrap_or(Err(SendError::TimedOut(timeout)))
    }

    /// Queues the last item of the stream (the status it ends with), if
    /// there is room, without waiting for it to be taken.
    pub fn end(&self, item: R) {
        let _ = self.tx.try_send(item);
    }
}

impl<R> Inbox<R> {
    /// The next item; asking for it means the ones before were taken.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<R>> {
        let handed = self.handed;
        self.taken.send_if_modified(|taken| {
            let newer = *taken < handed;
            *taken = handed.max(*taken);
            newer
        });
        let item = std::task::ready!(self.rx.poll_recv(cx));
        if item.is_some() {
            self.handed += 1;
        }
        Poll::Ready(item)
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;

    use super::*;

    #[tokio::test]
    async fn a_send_completes_once_the_body_asks_for_the_next_item() {
        let (mut outbox, mut inbox) = outbox::<u32>(Duration::from_secs(10));
        let receiver = tokio::spawn(async move {
            assert_eq!(poll_fn(|cx| inbox.poll_recv(cx)).await, Some(1));
            // Asking again takes the first; nothing more comes.
            assert_eq!(poll_fn(|cx| inbox.poll_recv(cx)).await, None);
        });
        outbox.send(1).await.expect("taken");
        drop(outbox);
        receiver.await.expect("receiver");
    }

    #[tokio::test]
    async fn a_response_never_asked_for_again_times_out() {
        let timeout = Duration::from_millis(200);
        let (mut outbox, mut inbox) = outbox::<u32>(timeout);
        let started = std::time::Instant::now();
        let sent = tokio::spawn(async move { outbox.send(1).await });
        // The body takes the message into the connection, which never
        // asks for more: the proxy's window is full.
        assert_eq!(poll_fn(|cx| inbox.poll_recv(cx)).await, Some(1));
        let result = sent.await.expect("sender");
        assert_eq!(result, Err(SendError::TimedOut(timeout)));
        assert!(started.elapsed() >= timeout);
    }

    #[tokio::test]
    async fn an_unread_queue_holds_one_response() {
        let timeout = Duration::from_millis(100);
        let (mut outbox, _inbox) = outbox::<u32>(timeout);
        assert_eq!(outbox.send(1).await, Err(SendError::TimedOut(timeout)));
        assert!(outbox.tx.try_send(2).is_err(), "the queue holds one");
    }

    #[tokio::test]
    async fn a_gone_body_closes_the_send() {
        let (mut outbox, inbox) = outbox::<u32>(Duration::from_secs(10));
        drop(inbox);
        assert_eq!(outbox.send(1).await, Err(SendError::Closed));
    }
}
