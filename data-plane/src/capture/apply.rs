//! Running the iptables tools: reading a family's rules (iptables-save) and
//! applying a reconciliation (iptables-restore --noflush).

use std::io::Write;
use std::process::{Command, Stdio};

use super::CaptureError;
use super::plan::Family;
use super::saved::SavedRules;

/// The rules in place for `family`.
pub fn read_saved(family: Family) -> Result<SavedRules, CaptureError> {
    let command = family.save();
    let output = Command::new(command)
        .output()
        .map_err(|e| not_runnable(command, &e))?;
    if !output.status.success() {
        return Err(failed(command, &output.stderr));
    }
    Ok(SavedRules::parse(&String::from_utf8_lossy(&output.stdout)))
}

/// Applies restore input without flushing anything it does not name.
pub fn restore(family: Family, input: &str) -> Result<(), CaptureError> {
    let command = family.restore();
    let mut child = Command::new(command)
        .args(["--noflush", "--wait"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| not_runnable(command, &e))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .map_err(|e| not_runnable(command, &e))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|e| not_runnable(command, &e))?;
    if !output.status.success() {
        return Err(failed(command, &output.stderr));
    }
    Ok(())
}

fn not_runnable(command: &str, error: &std::io::Error) -> CaptureError {
    CaptureError::Command {
        command: command.to_string(),
        reason: format!("cannot run it: {error} (is the iptables package installed?)"),
    }
}

fn failed(command: &str, stderr: &[u8]) -> CaptureError {
    CaptureError::Command {
        command: command.to_string(),
        reason: format!(
            "{} (run as root, in the app's network namespace)",
            String::from_utf8_lossy(stderr).trim()
        ),
    }
}
