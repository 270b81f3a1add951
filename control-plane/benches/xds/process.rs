//! What the parent reads of a child process: its resident set and CPU
//! time from /proc, and its output lines.

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

/// Linux reports CPU time in ticks of 1/100 s to user space.
const TICKS_PER_SECOND: f64 = 100.0;

/// A child process of this benchmark, killed when dropped.
pub struct ChildProcess {
    child: Child,
    pub lines: mpsc::Receiver<String>,
}

impl ChildProcess {
    /// Runs this executable again with `env` set, reading its stdout.
    pub fn spawn(env: &[(&str, String)]) -> Self {
        let mut command = Command::new(std::env::current_exe().expect("own path"));
        command.stdout(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("start a child process");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines }
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A process's resident set (KiB) and CPU time (user + system, seconds).
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    pub rss_kib: u64,
    pub cpu_seconds: f64,
}

pub fn usage(pid: u32) -> Usage {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS");
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read stat");
    // Fields after the command name, which ends with the last ')': the
    // state is field 3, utime field 14, stime field 15.
    let after_name = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| fields[i].parse::<u64>().expect("cpu ticks");
    Usage {
        rss_kib,
        cpu_seconds: (ticks(11) + ticks(12)) as f64 / TICKS_PER_SECOND,
    }
}
