//! An accept that fails, on any listener of the agent (the proxy's and the
//! admin, metrics, status and health ports) or of the control plane (xDS
//! and metrics): when the process is out of file descriptors (EMFILE,
//! ENFILE) the pending connection stays in the backlog and the listener
//! stays readable, so retrying at once would spin.
//!
//! Instead one descriptor is kept in reserve, shared by every listener: it
//! is closed to accept the pending connection, which is then closed at once
//! by turning its descriptor into a copy of a second one kept for this
//! (`dup2`), so that the number is never free for another thread's accept
//! to take before it is the reserve again. Should another thread's accept
//! take it in the instant it is free, that connection is served and the
//! reserve comes back as a connection closes. Without a reserve, the accept
//! loop waits for a connection to close (or a second).
//!
//! A connection that went away before it was accepted is skipped; any
//! other error waits a moment. Each kind is logged at most once per
//! [`LOG_EVERY`], with how many happened meanwhile.

use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::unistd::dup2;
use parking_lot::Mutex;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// The longest an accept loop without a reserve descriptor waits for a
/// connection to close before trying again.
const WAIT_FOR_DESCRIPTOR: Duration = Duration::from_secs(1);
/// How long an accept loop pauses after an unexpected accept error.
const PAUSE_AFTER_ERROR: Duration = Duration::from_millis(50);
/// At most one log line per kind of failure this often.
pub const LOG_EVERY: Duration = Duration::from_secs(10);

/// What a failed accept means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcceptError {
    /// Out of file descriptors, in the process or the system.
    FdExhausted,
    /// The connection was gone before it was accepted: nothing to do.
    ConnectionGone,
    /// Anything else (out of memory, ...).
    Other,
}

impl AcceptError {
    pub fn of(error: &io::Error) -> Self {
        match error.raw_os_error().map(Errno::from_raw) {
            Some(Errno::EMFILE | Errno::ENFILE) => Self::FdExhausted,
            Some(Errno::ECONNABORTED | Errno::EPROTO | Errno::EPERM) => Self::ConnectionGone,
            _ if matches!(
                error.kind(),
                io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
            ) =>
            {
                Self::ConnectionGone
            }
            _ => Self::Other,
        }
    }
}

/// What became of the connection whose accept failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted with the reserve descriptor and closed at once (Envoy
    /// counts it in `downstream_global_cx_overflow`).
    Shed,
    /// Left in the backlog, or gone.
    Left,
}

/// The reserve descriptor and the throttled logs, shared by every listener
/// of a process.
#[derive(Debug)]
pub struct AcceptFailures {
    /// What the log line about shed connections advises.
    advice: &'static str,
    reserve: Mutex<Option<File>>,
    /// Whether the reserve is missing (its descriptor was taken by another
    /// thread's accept while free): a connection that closes gives it back.
    reserve_missing: AtomicBool,
    /// What a shed connection's descriptor becomes a copy of.
    keeper: Option<File>,
    shed_log: Mutex<Throttle>,
    error_log: Mutex<Throttle>,
    /// Accept loops waiting for a file descriptor: a connection that
    /// closes wakes them.
    waiting_for_close: AtomicUsize,
    closed: Notify,
}

/// Opens the reserve descriptor.
fn open_reserve() -> Option<File> {
    File::open("/dev/null").ok()
}

impl Default for AcceptFailures {
    fn default() -> Self {
        Self::new("raise the open file limit")
    }
}

impl AcceptFailures {
    /// With the reserve descriptor open; a shed connection's log line
    /// advises `advice`.
    pub fn new(advice: &'static str) -> Self {
        let reserve = open_reserve();
        Self {
            advice,
            reserve_missing: AtomicBool::new(reserve.is_none()),
            reserve: Mutex::new(reserve),
            keeper: open_reserve(),
            shed_log: Mutex::default(),
            error_log: Mutex::default(),
            waiting_for_close: AtomicUsize::new(0),
            closed: Notify::new(),
        }
    }

    /// Handles a failed accept on `socket` (the listener `name`); returns
    /// once accepting may go on.
    pub async fn handle(&self, socket: &TcpListener, name: &str, error: io::Error) -> Outcome {
        match AcceptError::of(&error) {
            AcceptError::ConnectionGone => {
                tracing::debug!(listener = %name, %error, "connection gone before accept");
                Outcome::Left
            }
            AcceptError::FdExhausted => {
                // Linux checks for a free descriptor before it takes a
                // connection: accept fails so even with none pending.
                let shed = self.shed_one(socket);
                if let Some(count) = self.shed_log.lock().note(Instant::now()) {
                    tracing::warn!(
                        listener = %name,
                        %error,
                        occurrences = count,
                        "out of file descriptors: new connections are closed at once ({})",
                        self.advice
                    );
                }
                match shed {
                    Some(true) => Outcome::Shed,
                    Some(false) => Outcome::Left,
                    None => {
                        self.wait_for_a_close().await;
                        Outcome::Left
                    }
                }
            }
            AcceptError::Other => {
                if let Some(count) = self.error_log.lock().note(Instant::now()) {
                    tracing::warn!(listener = %name, %error, occurrences = count, "accept failed");
                }
                tokio::time::sleep(PAUSE_AFTER_ERROR).await;
                Outcome::Left
            }
        }
    }

    /// A connection of any listener closed: an accept loop waiting for a
    /// file descriptor may go on.
    pub fn connection_closed(&self) {
        if self.reserve_missing.load(Relaxed) {
            let mut reserve = self.reserve.lock();
            if reserve.is_none() {
                *reserve = open_reserve();
            }
            self.reserve_missing.store(reserve.is_none(), Relaxed);
        }
        if self.waiting_for_close.load(Relaxed) > 0 {
            self.closed.notify_waiters();
        }
    }

    /// Frees the reserve descriptor, accepts the pending connection with
    /// it and closes that into the reserve: whether a connection was
    /// pending, or `None` when there was no descriptor to free.
    fn shed_one(&self, socket: &TcpListener) -> Option<bool> {
        let mut reserve = self.reserve.lock();
        let held = reserve.take().or_else(open_reserve)?;
        drop(held);
        let shed = accept_now(socket);
        let pending = shed.is_some();
        *reserve = match shed {
            Some(shed) => self.close_into_reserve(shed),
            None => open_reserve(),
        };
        self.reserve_missing.store(reserve.is_none(), Relaxed);
        Some(pending)
    }

    /// Closes `stream`, its descriptor becoming a copy of the keeper: the
    /// new reserve. Should that fail, closes it and reopens the reserve.
    fn close_into_reserve(&self, stream: TcpStream) -> Option<File> {
        let Ok(stream) = stream.into_std() else {
            return open_reserve();
        };
        let mut descriptor = OwnedFd::from(stream);
        if let Some(keeper) = &self.keeper
            && dup2(keeper, &mut descriptor).is_ok()
        {
            return Some(File::from(descriptor));
        }
        drop(descriptor);
        open_reserve()
    }

    /// Waits until a connection closes, or [`WAIT_FOR_DESCRIPTOR`].
    async fn wait_for_a_close(&self) {
        let closed = self.closed.notified();
        self.waiting_for_close.fetch_add(1, Relaxed);
        let _ = tokio::time::timeout(WAIT_FOR_DESCRIPTOR, closed).await;
        self.waiting_for_close.fetch_sub(1, Relaxed);
    }
}

/// The connection pending on `socket`, if one is, without waiting.
fn accept_now(socket: &TcpListener) -> Option<TcpStream> {
    let mut context = Context::from_waker(Waker::noop());
    match socket.poll_accept(&mut context) {
        Poll::Ready(Ok((stream, _))) => Some(stream),
        _ => None,
    }
}

/// Lets one log line through per [`LOG_EVERY`], counting the events between.
#[derive(Debug, Default)]
struct Throttle {
    last: Option<Instant>,
    since: u64,
}

impl Throttle {
    /// Notes one event at `now`: `Some(events since the last line)` when a
    /// line is due.
    fn note(&mut self, now: Instant) -> Option<u64> {
        self.since += 1;
        let due = self
            .last
            .is_none_or(|last| now.duration_since(last) >= LOG_EVERY);
        if !due {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.since))
    }
}

#[cfg(test)]
mod tests;
