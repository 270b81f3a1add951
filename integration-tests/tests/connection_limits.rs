//! The agent's downstream connection limits and what it does when file
//! descriptors run out, on loopback against an egress gateway whose
//! listeners answer 200 themselves.
//!
//! - Past `--listener-connection-limit` a listener closes new connections
//!   at once (`downstream_cx_overflow`), past
//!   `--global-downstream-max-connections` every listener does
//!   (`downstream_global_cx_overflow`); a connection that closes makes room.
//! - With its open file limit lowered under it (`prlimit`), the agent
//!   closes the connections it cannot take, on its listeners and on its
//!   admin, metrics, status and health ports alike, logs that at most once
//!   per interval instead of at every retry, stays idle rather than
//!   spinning on accept, and answers again once connections close.
//! - The control plane does the same on its xDS and metrics ports (tonic
//!   alone would retry a failed accept at once).

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use integration_tests::control_plane::{ConfigDir, ControlPlane};
use integration_tests::data_plane::DataPlane;
use integration_tests::direct_response::{Gateway, OK, request};
use integration_tests::process::{eventually, run};
use serde_json::json;

/// A guard against a hung test, never a bound on the agent's timing.
const GUARD: Duration = Duration::from_secs(30);
/// How long a request waits for its answer.
const ANSWER: Duration = Duration::from_secs(10);

/// Opens a connection to `addr` that sends part of a request head and
/// nothing more: it stays open on the agent.
fn hold(addr: SocketAddr) -> Result<TcpStream> {
    let mut stream = TcpStream::connect(addr)?;
    stream.write_all(b"GET / HTTP/1.1\r\nHost: held.test\r\n")?;
    Ok(stream)
}

/// A listener counter of `agent`, by the listener's address.
fn listener_metric(agent: &DataPlane, name: &str, addr: SocketAddr) -> Result<f64> {
    let label = format!("{}_{}", addr.ip(), addr.port());
    Ok(agent
        .metric(name, &[("envoy_listener_address", &label)])?
        .unwrap_or_default())
}

fn wait_for_active(agent: &DataPlane, addr: SocketAddr, active: f64) -> Result<()> {
    eventually(GUARD, || {
        let now = listener_metric(agent, "envoy_listener_downstream_cx_active", addr)?;
        ensure!(
            now == active,
            "{now} open on {addr}, waiting for {active}; the listeners' series:\n{}",
            agent
                .prometheus()?
                .lines()
                .filter(|line| line.starts_with("envoy_listener_"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        Ok(())
    })
}

#[test]
fn connections_past_the_listener_and_global_limits_are_closed_at_once_and_counted() -> Result<()> {
    let gateway = Gateway::start(
        &["a", "b"],
        json!({}),
        &[
            "--global-downstream-max-connections",
            "5",
            "--listener-connection-limit",
            "3",
        ],
    )?;
    let (a, b) = (gateway.listeners[0], gateway.listeners[1]);
    let agent = &gateway.agent;
    // The probes that saw the listeners up are gone.
    wait_for_active(agent, a, 0.0)?;
    wait_for_active(agent, b, 0.0)?;

    let mut held_a = (0..3).map(|_| hold(a)).collect::<Result<Vec<_>>>()?;
    wait_for_active(agent, a, 3.0)?;
    let status = request(a, ANSWER)?;
    ensure!(status.is_empty(), "a's fourth connection got {status:?}");
    let overflow = listener_metric(agent, "envoy_listener_downstream_cx_overflow", a)?;
    ensure!(overflow == 1.0, "a's downstream_cx_overflow is {overflow}");

    let _held_b = (0..2).map(|_| hold(b)).collect::<Result<Vec<_>>>()?;
    wait_for_active(agent, b, 2.0)?;
    let status = request(b, ANSWER)?;
    ensure!(status.is_empty(), "a sixth connection got {status:?}");
    let global = listener_metric(agent, "envoy_listener_downstream_global_cx_overflow", b)?;
    let overflow = listener_metric(agent, "envoy_listener_downstream_cx_overflow", b)?;
    ensure!(
        (global, overflow) == (1.0, 0.0),
        "b's downstream_global_cx_overflow is {global}, its downstream_cx_overflow {overflow}"
    );

    drop(held_a.pop());
    wait_for_active(agent, a, 2.0)?;
    let status = request(a, ANSWER)?;
    ensure!(
        status == OK,
        "once one closed, a new request got {status:?}"
    );
    Ok(())
}

/// The CPU time process `pid` has used, in clock ticks.
fn cpu_ticks(pid: u32) -> Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // After the command name, in parentheses: state is field 3, utime 14
    // and stime 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .context("no command name in /proc/PID/stat")?
        .1
        .split_whitespace()
        .collect();
    let field = |n: usize| -> Result<u64> {
        fields
            .get(n - 3)
            .context("short /proc/PID/stat")?
            .parse()
            .context("a CPU time field is not a number")
    };
    Ok(field(14)? + field(15)?)
}

/// Clock ticks per second.
fn ticks_per_second() -> Result<u64> {
    let mut getconf = Command::new("getconf");
    getconf.arg("CLK_TCK");
    let output = run("getconf", getconf, GUARD)?;
    output.ensure_success()?;
    output
        .stdout
        .trim()
        .parse()
        .context("CLK_TCK is not a number")
}

/// Descriptors process `pid` has open.
fn open_descriptors(pid: u32) -> Result<usize> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/fd"))?.count())
}

/// How many descriptors process `pid` may still open under the open file
/// limit `limit`: the free numbers below it (one opened before the limit
/// was lowered may be above it).
fn free_descriptors(pid: u32, limit: usize) -> Result<usize> {
    let mut below = 0;
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd"))? {
        let number: usize = entry?
            .file_name()
            .to_string_lossy()
            .parse()
            .context("a descriptor that is not a number")?;
        if number < limit {
            below += 1;
        }
    }
    Ok(limit.saturating_sub(below))
}

/// The agent's log lines about failed accepts.
fn accept_failure_lines(agent: &DataPlane) -> usize {
    failure_lines(&agent.logs())
}

/// The lines of `logs` about failed accepts.
fn failure_lines(logs: &str) -> usize {
    logs.lines()
        .filter(|line| line.contains("accept failed") || line.contains("out of file descriptors"))
        .count()
}

#[test]
fn out_of_file_descriptors_new_connections_are_shed_without_spinning_or_flooding_the_log()
-> Result<()> {
    /// Descriptors the agent may open past those it has.
    const HEADROOM: usize = 32;
    /// How long the agent is kept out of descriptors while measured.
    const EXHAUSTED: Duration = Duration::from_secs(3);
    let gateway = Gateway::start(&["fd"], json!({}), &[])?;
    let addr = gateway.listeners[0];
    let agent = &gateway.agent;
    let pid = agent.pid();
    let limit = open_descriptors(pid)? + HEADROOM;
    let mut prlimit = Command::new("prlimit");
    prlimit
        .arg("--pid")
        .arg(pid.to_string())
        .arg(format!("--nofile={limit}:{limit}"));
    run("prlimit", prlimit, GUARD)?.ensure_success()?;

    let mut held = (0..HEADROOM * 2)
        .map(|_| hold(addr))
        .collect::<Result<Vec<_>>>()?;
    // One more held connection until the agent has every descriptor it
    // may open (those it cannot take it closes).
    eventually(GUARD, || {
        let free = free_descriptors(pid, limit)?;
        if free > 0 {
            held.push(hold(addr)?);
        }
        ensure!(free == 0, "{free} descriptors free, limit {limit}");
        Ok(())
    })?;

    let (lines_before, cpu_before) = (accept_failure_lines(agent), cpu_ticks(pid)?);
    let start = Instant::now();
    let (mut unanswered, mut admin_unanswered) = (0, 0);
    let admin_ports = [
        agent.admin_addr(),
        agent.metrics_addr(),
        agent.status_addr(),
        agent.health_addr(),
    ];
    while start.elapsed() < EXHAUSTED {
        if request(addr, ANSWER)?.is_empty() {
            unanswered += 1;
        }
        // The admin ports accept on the same descriptors: they shed too,
        // rather than retrying (and logging) until one is free.
        for port in admin_ports {
            if request(port, ANSWER)?.is_empty() {
                admin_unanswered += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let cpu = cpu_ticks(pid)? - cpu_before;
    let lines = accept_failure_lines(agent) - lines_before;
    let ticks = ticks_per_second()?;
    eprintln!(
        "out of descriptors for {EXHAUSTED:?}: {lines} accept failure lines, {cpu} ticks of CPU \
         ({ticks} a second), {unanswered} requests unanswered, {admin_unanswered} on the admin ports"
    );
    ensure!(
        unanswered > 0,
        "every request was answered while descriptors ran out"
    );
    ensure!(
        lines <= 1,
        "{lines} accept failure lines logged in {EXHAUSTED:?}:\n{}",
        agent.logs()
    );
    // A spinning accept loop burns a whole core: the seconds measured.
    ensure!(
        cpu < ticks * EXHAUSTED.as_secs() / 3,
        "the agent used {cpu} ticks of CPU ({ticks} a second) in {EXHAUSTED:?} out of descriptors"
    );

    // The first connections are those the agent holds.
    held.drain(..HEADROOM / 2);
    let status = eventually(GUARD, || {
        let status = request(addr, ANSWER)?;
        ensure!(
            status == OK,
            "once connections closed, a request got {status:?}"
        );
        Ok(status)
    })?;
    ensure!(status == OK);
    let shed = listener_metric(agent, "envoy_listener_downstream_global_cx_overflow", addr)?;
    ensure!(
        shed >= f64::from(unanswered),
        "downstream_global_cx_overflow is {shed}, {unanswered} requests unanswered"
    );
    Ok(())
}

#[test]
fn the_control_plane_out_of_file_descriptors_sheds_without_spinning_or_flooding_the_log()
-> Result<()> {
    /// Descriptors the control plane may open past those it has.
    const HEADROOM: usize = 16;
    /// How long it is kept out of descriptors while measured.
    const EXHAUSTED: Duration = Duration::from_secs(3);
    let config = ConfigDir::new()?;
    let control = ControlPlane::options(config.path()).plaintext().start()?;
    let plaintext = control.plaintext_addr().context("no plaintext port")?;
    let pid = control.pid();
    let limit = open_descriptors(pid)? + HEADROOM;
    let mut prlimit = Command::new("prlimit");
    prlimit
        .arg("--pid")
        .arg(pid.to_string())
        .arg(format!("--nofile={limit}:{limit}"));
    run("prlimit", prlimit, GUARD)?.ensure_success()?;
    // Connections that send nothing, until every descriptor is taken.
    let mut held = Vec::new();
    eventually(GUARD, || {
        let free = free_descriptors(pid, limit)?;
        if free > 0 {
            held.push(TcpStream::connect(plaintext)?);
        }
        ensure!(free == 0, "{free} descriptors free, limit {limit}");
        Ok(())
    })?;

    let (lines_before, cpu_before) = (failure_lines(&control.logs()), cpu_ticks(pid)?);
    // A connection waits on each port: accepting it fails until one closes.
    let _pending = [control.xds_addr(), plaintext, control.metrics_addr()]
        .map(TcpStream::connect)
        .into_iter()
        .collect::<std::io::Result<Vec<_>>>()?;
    std::thread::sleep(EXHAUSTED);
    let cpu = cpu_ticks(pid)? - cpu_before;
    let lines = failure_lines(&control.logs()) - lines_before;
    let ticks = ticks_per_second()?;
    eprintln!(
        "control plane out of descriptors for {EXHAUSTED:?}: {lines} accept failure lines, \
         {cpu} ticks of CPU ({ticks} a second)"
    );
    ensure!(
        lines <= 1,
        "{lines} accept failure lines logged in {EXHAUSTED:?}; the last:\n{}",
        control
            .logs()
            .lines()
            .rev()
            .take(5)
            .collect::<Vec<_>>()
            .join("\n")
    );
    ensure!(
        cpu < ticks * EXHAUSTED.as_secs() / 3,
        "the control plane used {cpu} ticks of CPU ({ticks} a second) in {EXHAUSTED:?} out of descriptors"
    );

    drop(held);
    eventually(GUARD, || control.metrics().map(drop))?;
    Ok(())
}
