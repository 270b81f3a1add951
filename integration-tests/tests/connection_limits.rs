//! The agent's downstream connection limits and what it does when file
//! descriptors run out, on loopback against an egress gateway whose
//! listeners answer 200 themselves.
//!
//! - Past `--listener-connection-limit` a listener closes new connections
//!   at once (`downstream_cx_overflow`), past
//!   `--global-downstream-max-connections` every listener does
//!   (`downstream_global_cx_overflow`); a connection that closes makes room.
//! - With its open file limit lowered under it (`prlimit`), the agent
//!   closes at once every connection it cannot take (a thousand, over a few
//!   seconds), on its listeners and on its admin, metrics, status and
//!   health ports alike, counts them, logs that at most once per interval
//!   instead of at every retry, stays idle rather than spinning on accept,
//!   and answers again once connections close.
//! - The control plane does the same on its xDS and metrics ports (tonic
//!   alone would retry a failed accept at once).

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use integration_tests::control_plane::{ConfigDir, ControlPlane};
use integration_tests::data_plane::DataPlane;
use integration_tests::direct_response::{Gateway, OK, request};
use integration_tests::process::{eventually, run};
use serde_json::json;
use shared::accept::LOG_EVERY;

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

/// What became of one request while the agent was out of descriptors.
enum Fate {
    /// Closed by the agent with nothing written back (a close or a reset).
    Shed,
    /// Answered.
    Answered,
    /// Neither after [`ANSWER`]: left waiting in the backlog.
    Waiting,
}

/// One request on a new connection to `addr`, and what became of it.
fn fate(addr: SocketAddr) -> Result<Fate> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(ANSWER))?;
    // A connection the agent already closed may refuse the write.
    let _ = stream.write_all(b"GET /shed HTTP/1.1\r\nHost: shed.test\r\nConnection: close\r\n\r\n");
    let mut response = Vec::new();
    match stream.read_to_end(&mut response) {
        Ok(_) => {}
        Err(error) if response.is_empty() && error.kind() == ErrorKind::ConnectionReset => {}
        Err(error)
            if response.is_empty()
                && matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
        {
            return Ok(Fate::Waiting);
        }
        Err(error) => return Err(error).context("reading the answer"),
    }
    Ok(if response.is_empty() {
        Fate::Shed
    } else {
        Fate::Answered
    })
}

#[test]
fn out_of_file_descriptors_new_connections_are_shed_without_spinning_or_flooding_the_log()
-> Result<()> {
    /// Descriptors the agent may open past those it has.
    const HEADROOM: usize = 32;
    /// Requests to the proxy's listener while out of descriptors, each
    /// followed by one to each admin port: the descriptors stay exhausted
    /// for as long as they take.
    const ROUNDS: usize = 200;
    /// The pause between rounds.
    const BETWEEN: Duration = Duration::from_millis(20);
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
    // The admin ports accept on the same descriptors: they shed too,
    // rather than retrying (and logging) until one is free.
    let ports = [
        addr,
        agent.admin_addr(),
        agent.metrics_addr(),
        agent.status_addr(),
        agent.health_addr(),
    ];
    let (mut shed, mut answered, mut proxy_shed) = (0, 0, 0);
    for round in 0..ROUNDS {
        for port in ports {
            match fate(port)? {
                Fate::Shed => {
                    shed += 1;
                    proxy_shed += usize::from(port == addr);
                }
                // A descriptor another listener's accept took in the
                // instant the reserve was free: served, and the reserve
                // comes back as it closes.
                Fate::Answered => answered += 1,
                Fate::Waiting => bail!(
                    "round {round}: out of descriptors, {port} left a request waiting {ANSWER:?} instead of closing it"
                ),
            }
        }
        std::thread::sleep(BETWEEN);
    }
    let exhausted = start.elapsed();
    let cpu = cpu_ticks(pid)? - cpu_before;
    let lines = accept_failure_lines(agent) - lines_before;
    let ticks = ticks_per_second()?;
    eprintln!(
        "out of descriptors for {exhausted:?}: {shed} requests shed ({proxy_shed} to the proxy), \
         {answered} answered, {lines} accept failure lines, {cpu} ticks of CPU ({ticks} a second)"
    );
    ensure!(
        shed >= (shed + answered) * 9 / 10,
        "out of descriptors, {answered} requests were answered and only {shed} shed: the reserve descriptor was lost"
    );
    // One line per LOG_EVERY at most, whatever the number of connections.
    let allowed = 1 + exhausted.as_secs() / LOG_EVERY.as_secs();
    ensure!(
        lines as u64 <= allowed,
        "{lines} accept failure lines logged in {exhausted:?} ({allowed} allowed):\n{}",
        agent.logs()
    );
    // A spinning accept loop burns a whole core through the time measured.
    let spinning = ticks as f64 * exhausted.as_secs_f64();
    ensure!(
        (cpu as f64) < spinning / 3.0,
        "the agent used {cpu} ticks of CPU ({ticks} a second) in {exhausted:?} out of descriptors"
    );

    // The first connections are those the agent holds.
    held.drain(..HEADROOM / 2);
    eventually(GUARD, || {
        let status = request(addr, ANSWER)?;
        ensure!(
            status == OK,
            "once connections closed, a request got {status:?}"
        );
        Ok(())
    })?;
    for port in &ports[1..] {
        let status = request(*port, ANSWER)?;
        ensure!(
            !status.is_empty(),
            "once connections closed, {port} still closed a request unanswered"
        );
    }
    let counted = listener_metric(agent, "envoy_listener_downstream_global_cx_overflow", addr)?;
    ensure!(
        counted >= proxy_shed as f64,
        "downstream_global_cx_overflow is {counted}, {proxy_shed} requests to the proxy shed"
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
