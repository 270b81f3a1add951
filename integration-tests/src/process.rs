//! Child processes owned by a test: killed on drop (also when the test
//! panics), with stdout and stderr captured to files so a failure can show
//! them, plus polling helpers for things that become true eventually.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// How long to wait between polls.
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// How much of each log a panicking test prints when it drops a process.
const PANIC_LOG_TAIL: usize = 16 * 1024;

/// Creates the log file at `path`, writable by any uid.
fn log_file(path: &Path) -> Result<File> {
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    file.set_permissions(fs::Permissions::from_mode(0o666))
        .with_context(|| format!("opening {} to every uid", path.display()))?;
    Ok(file)
}

/// A running child process, killed and reaped on drop.
pub struct Process {
    name: String,
    child: Child,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
}

impl Process {
    /// Starts `command` with stdin closed and stdout / stderr written to
    /// `<log_dir>/<name>.stdout` and `<log_dir>/<name>.stderr`. Both files
    /// are writable by any uid: a proxy that runs as another user (Envoy as
    /// 1337) opens `/dev/stdout` again for its file access log.
    pub fn spawn(name: &str, mut command: Command, log_dir: &Path) -> Result<Self> {
        let stdout_path = log_dir.join(format!("{name}.stdout"));
        let stderr_path = log_dir.join(format!("{name}.stderr"));
        let stdout = log_file(&stdout_path)?;
        let stderr = log_file(&stderr_path)?;
        command.stdin(Stdio::null()).stdout(stdout).stderr(stderr);
        let child = command
            .spawn()
            .with_context(|| format!("starting {name}: {command:?}"))?;
        Ok(Self {
            name: name.to_string(),
            child,
            stdout_path,
            stderr_path,
        })
    }

    /// The operating system's process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Everything the process wrote to stdout so far.
    pub fn stdout(&self) -> String {
        read_lossy(&self.stdout_path)
    }

    /// Everything the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        read_lossy(&self.stderr_path)
    }

    /// Both logs, labelled, for a failure message.
    pub fn logs(&self) -> String {
        format_logs(&self.name, &self.stdout(), &self.stderr())
    }

    /// The exit status if the process has exited, without waiting.
    pub fn exit_status(&mut self) -> Result<Option<ExitStatus>> {
        self.child
            .try_wait()
            .with_context(|| format!("checking whether {} exited", self.name))
    }

    /// Waits up to `timeout` for the process to exit; kills it and fails if
    /// it does not.
    pub fn wait_with_timeout(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exit_status()? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                self.kill();
                bail!(
                    "{} did not exit within {timeout:?}; killed it\n{}",
                    self.name,
                    self.logs()
                );
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// Waits until `addr` accepts TCP connections; fails early, with the
    /// logs, if the process exits first.
    pub fn wait_for_port(&mut self, addr: SocketAddr, timeout: Duration) -> Result<()> {
        self.wait_until(&format!("listening on {addr}"), timeout, || {
            if port_open(addr) {
                Ok(())
            } else {
                bail!("nothing listens on {addr}")
            }
        })
    }

    /// Calls `check` until it succeeds, `what` the process should get to
    /// (e.g. "being ready"); fails early, with the logs, if the process
    /// exits first, and after `timeout` with `check`'s last error and the
    /// logs.
    pub fn wait_until<T>(
        &mut self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut() -> Result<T>,
    ) -> Result<T> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exit_status()? {
                bail!(
                    "{} exited ({status}) before {what}\n{}",
                    self.name,
                    self.logs()
                );
            }
            match check() {
                Ok(value) => return Ok(value),
                Err(err) if Instant::now() >= deadline => bail!(
                    "{} not {what} after {timeout:?}: {err:#}\n{}",
                    self.name,
                    self.logs()
                ),
                Err(_) => thread::sleep(POLL_INTERVAL),
            }
        }
    }

    /// Kills the process (SIGKILL) and reaps it. Does nothing if it already
    /// exited.
    pub fn kill(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            // Either it is killed now or it exited in between: both are fine.
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
        if thread::panicking() {
            eprintln!(
                "{}",
                format_logs(
                    &self.name,
                    tail(&self.stdout(), PANIC_LOG_TAIL),
                    tail(&self.stderr(), PANIC_LOG_TAIL)
                )
            );
        }
    }
}

/// What a finished command printed, and how it ended.
#[derive(Debug, Clone)]
pub struct CommandOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl CommandOutput {
    /// The exit code; `None` when a signal ended the command.
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Whether the command exited with code 0.
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// Fails, showing both outputs, unless the command exited with code 0.
    pub fn ensure_success(&self) -> Result<&Self> {
        if !self.success() {
            bail!(
                "command failed ({})\n{}",
                self.status,
                format_logs("command", &self.stdout, &self.stderr)
            );
        }
        Ok(self)
    }

    /// Stdout parsed as JSON.
    pub fn json(&self) -> Result<serde_json::Value> {
        serde_json::from_str(&self.stdout)
            .with_context(|| format!("stdout is not JSON:\n{}", self.stdout))
    }
}

/// Sends signal `name` (`TERM`, `INT`, ..) to process `pid`.
pub fn signal(pid: u32, name: &str) -> Result<()> {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .context("running kill")?;
    if !status.success() {
        bail!("kill -{name} {pid} failed: {status}");
    }
    Ok(())
}

/// Runs `command` to completion, killing it after `timeout`.
pub fn run(name: &str, command: Command, timeout: Duration) -> Result<CommandOutput> {
    let dir = tempfile::tempdir().context("creating a temp dir for command output")?;
    let mut process = Process::spawn(name, command, dir.path())?;
    let status = process.wait_with_timeout(timeout)?;
    Ok(CommandOutput {
        status,
        stdout: process.stdout(),
        stderr: process.stderr(),
    })
}

/// Waits until `addr` accepts TCP connections.
pub fn wait_for_port(addr: SocketAddr, timeout: Duration) -> Result<()> {
    eventually(timeout, || {
        if port_open(addr) {
            Ok(())
        } else {
            bail!("nothing listens on {addr}")
        }
    })
}

/// Calls `check` until it succeeds or `timeout` passes; the error is the
/// last failure's.
pub fn eventually<T>(timeout: Duration, mut check: impl FnMut() -> Result<T>) -> Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        match check() {
            Ok(value) => return Ok(value),
            Err(err) if Instant::now() >= deadline => {
                return Err(err.context(format!("still failing after {timeout:?}")));
            }
            Err(_) => thread::sleep(POLL_INTERVAL),
        }
    }
}

/// Like [`eventually`], but panics with the last failure.
pub fn assert_eventually<T>(timeout: Duration, check: impl FnMut() -> Result<T>) -> T {
    match eventually(timeout, check) {
        Ok(value) => value,
        Err(err) => panic!("{err:#}"),
    }
}

fn port_open(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

fn read_lossy(path: &Path) -> String {
    fs::read(path)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default()
}

fn tail(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

fn format_logs(name: &str, stdout: &str, stderr: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "----- {name} stdout -----\n{stdout}");
    let _ = write!(out, "----- {name} stderr -----\n{stderr}");
    out
}
