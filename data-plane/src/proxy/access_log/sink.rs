//! Where access log lines go: one sink per path (a file opened for append,
//! or the process's stdout or stderr for `/dev/stdout` and `/dev/stderr`),
//! each written by a thread of its own so a request never waits for a
//! write.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

/// How long the writer lets lines gather before it writes them; a line is
/// written at most about this long after its request ended.
const GATHER: Duration = Duration::from_millis(1);
/// Past this many buffered bytes (the file not keeping up), the thread that
/// logs writes them itself: memory stays bounded, the proxy slows down.
const MAX_BUFFERED: usize = 1 << 20;

/// Lines on their way to one path. Proxy threads append to a buffer; the
/// sink's writer thread writes what gathered, so a request never waits for
/// the file (or a pipe) and many lines go out in one `write` under load, as
/// Envoy's access log flush thread does.
///
/// While lines keep coming the writer wakes on its own every [`GATHER`];
/// only the first line after a quiet spell wakes it, so a request almost
/// never pays for a thread wake-up either.
pub struct Sink {
    path: Box<str>,
    buffer: Mutex<Pending>,
    /// Signalled when a line arrives while the writer is idle.
    arrived: Condvar,
    /// Held while writing, so chunks reach the file in order.
    output: Mutex<Output>,
    /// Set when the writer thread could not start: lines are written inline.
    inline: AtomicBool,
}

struct Pending {
    lines: Vec<u8>,
    /// The writer waits on `arrived` (rather than on its timer).
    writer_idle: bool,
}

struct Output {
    /// The spare buffer, swapped with the pending one.
    chunk: Vec<u8>,
    target: Target,
}

enum Target {
    Stdout,
    Stderr,
    File(File),
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink").field("path", &self.path).finish()
    }
}

/// Every sink opened so far, by path; a sink lives as long as the process,
/// as Envoy's access log manager keeps its files.
static SINKS: LazyLock<Mutex<HashMap<Box<str>, &'static Sink>>> = LazyLock::new(Mutex::default);

/// The sink of `path`: opened (for append, created if missing) the first
/// time, and opened again each later time, so a config push picks up a
/// file that was rotated away. `/dev/stdout` and `/dev/stderr` are the
/// process's own streams.
pub fn open(path: &str) -> std::io::Result<&'static Sink> {
    let mut sinks = SINKS.lock();
    if let Some(sink) = sinks.get(path) {
        let mut output = sink.output.lock();
        if let Target::File(_) = output.target {
            output.target = Target::File(open_file(path)?);
        }
        return Ok(sink);
    }
    let target = match path {
        "/dev/stdout" => Target::Stdout,
        "/dev/stderr" => Target::Stderr,
        _ => Target::File(open_file(path)?),
    };
    let sink: &'static Sink = Box::leak(Box::new(Sink {
        path: path.into(),
        buffer: Mutex::new(Pending {
            lines: Vec::new(),
            writer_idle: false,
        }),
        arrived: Condvar::new(),
        output: Mutex::new(Output {
            chunk: Vec::new(),
            target,
        }),
        inline: AtomicBool::new(false),
    }));
    let spawned = std::thread::Builder::new()
        .name("access-log".into())
        .spawn(move || sink.run());
    if let Err(error) = spawned {
        tracing::warn!(%error, path, "no access log writer thread; lines are written inline");
        sink.inline.store(true, Ordering::Relaxed);
    }
    sinks.insert(path.into(), sink);
    Ok(sink)
}

fn open_file(path: &str) -> std::io::Result<File> {
    OpenOptions::new().append(true).create(true).open(path)
}

/// Writes the lines not yet written, of every sink (e.g. before the
/// process exits).
pub fn flush() {
    let sinks: Vec<&'static Sink> = SINKS.lock().values().copied().collect();
    for sink in sinks {
        sink.write_out();
    }
}

impl Sink {
    /// Queues `line` (newline included).
    pub fn push(&self, line: &[u8]) {
        let mut pending = self.buffer.lock();
        pending.lines.extend_from_slice(line);
        let full = pending.lines.len() >= MAX_BUFFERED;
        let wake = std::mem::take(&mut pending.writer_idle);
        drop(pending);
        if full || self.inline.load(Ordering::Relaxed) {
            self.write_out();
        } else if wake {
            self.arrived.notify_one();
        }
    }

    fn run(&self) {
        loop {
            {
                let mut pending = self.buffer.lock();
                while pending.lines.is_empty() {
                    pending.writer_idle = true;
                    self.arrived.wait(&mut pending);
                }
                pending.writer_idle = false;
            }
            loop {
                std::thread::sleep(GATHER);
                if !self.write_out() {
                    break;
                }
            }
        }
    }

    /// Writes everything buffered so far; false if there was nothing.
    fn write_out(&self) -> bool {
        let mut output = self.output.lock();
        let Output { chunk, target } = &mut *output;
        std::mem::swap(chunk, &mut self.buffer.lock().lines);
        if chunk.is_empty() {
            return false;
        }
        let written = match target {
            Target::Stdout => {
                let mut stdout = std::io::stdout().lock();
                stdout.write_all(chunk).and_then(|()| stdout.flush())
            }
            Target::Stderr => std::io::stderr().lock().write_all(chunk),
            Target::File(file) => file.write_all(chunk),
        };
        if let Err(error) = written {
            tracing::warn!(%error, path = %self.path, "access log lines lost");
        }
        chunk.clear();
        true
    }
}
