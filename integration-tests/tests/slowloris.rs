//! A slowloris against the agent's HTTP connection manager, on loopback:
//! 10,000 connections each send part of a request head and nothing more.
//! While they are held the agent still answers new requests; once the
//! connection manager's `request_headers_timeout` runs out each of them
//! gets Envoy's 408 `request header timeout` and is closed, and the agent's
//! memory comes back near where it was before the attack.
//! The same holds for a head that follows another on a keep-alive
//! connection, sent along with the first (pipelined): its clock starts once
//! the first request is answered.
//!
//! The agent is an egress gateway fed by a fake ADS server with one
//! listener: an HTTP connection manager whose inline route answers 200,
//! with a short head timeout. The open file limit of the test and of the
//! agent it starts is raised to the hard limit for the 10,000 sockets
//! each side holds.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use integration_tests::direct_response::{Gateway, OK, request};
use integration_tests::process::eventually;
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use serde_json::json;

/// How many connections the attack holds.
const ATTACKERS: usize = 10_000;
/// The connection manager's `request_headers_timeout`.
const HEAD_TIMEOUT: Duration = Duration::from_secs(8);
/// How far above its baseline the agent's memory may stay once the attack
/// is over: the allocator's metadata and the stacks its threads grew, which
/// came to 1 to 2 MiB over a baseline of 10 (release) to 31 MiB (debug);
/// pages the allocator kept instead of returning them came to 17 MiB and
/// more.
const MEMORY_SLACK_KB: u64 = 4 * 1024;
/// A guard against a hung test, never a bound on the agent's timing.
const GUARD: Duration = Duration::from_secs(60);

/// The part of a request head each attacker sends.
const PARTIAL_HEAD: &[u8] = b"GET / HTTP/1.1\r\nHost: victim.test\r\nX-Slow: ";

/// Envoy's answer to a head that did not complete in time.
const HEAD_TIMEOUT_REPLY: &str = "HTTP/1.1 408 Request Timeout\r\n";

/// Raises this process's open file limit to its hard limit; the agent it
/// starts inherits it.
fn raise_open_file_limit() -> Result<u64> {
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    Ok(hard)
}

/// The resident memory of process `pid`, in KiB.
fn rss_kb(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .context("no VmRSS line")?;
    line.split_whitespace()
        .nth(1)
        .context("no VmRSS value")?
        .parse()
        .context("VmRSS is not a number")
}

/// One complete request on a new connection: its status line and how long
/// it took.
fn timed_request(addr: SocketAddr) -> Result<(String, Duration)> {
    let start = Instant::now();
    let status = request(addr, GUARD)?;
    Ok((status, start.elapsed()))
}

#[test]
fn a_slowloris_of_10000_partial_heads_is_timed_out_and_its_memory_returned() -> Result<()> {
    let limit = raise_open_file_limit()?;
    ensure!(
        limit >= ATTACKERS as u64 + 1024,
        "the open file limit ({limit}) is too low for {ATTACKERS} connections"
    );
    let gateway = Gateway::start(
        &["slowloris"],
        json!({
            "requestHeadersTimeout": format!("{}s", HEAD_TIMEOUT.as_secs()),
            "streamIdleTimeout": "0s",
        }),
        &[],
    )?;
    let (agent, addr) = (&gateway.agent, gateway.listeners[0]);
    let (status, normal) = timed_request(addr)?;
    ensure!(status == OK, "before the attack: {status}");
    // Let the agent settle before its baseline.
    std::thread::sleep(Duration::from_secs(1));
    let baseline = rss_kb(agent.pid())?;

    let attack_start = Instant::now();
    let mut attackers = Vec::with_capacity(ATTACKERS);
    for i in 0..ATTACKERS {
        let mut stream =
            TcpStream::connect(addr).with_context(|| format!("attacker {i} connecting"))?;
        stream.write_all(PARTIAL_HEAD)?;
        attackers.push(stream);
    }
    let connected = attack_start.elapsed();
    let during = rss_kb(agent.pid())?;
    let (status, under_attack) = timed_request(addr)?;
    ensure!(status == OK, "a new request under attack got {status:?}");

    // Every attacker is answered 408 and closed once its head timed out.
    let mut timed_out = 0;
    for (i, stream) in attackers.iter_mut().enumerate() {
        stream.set_read_timeout(Some(GUARD))?;
        let mut reply = Vec::new();
        stream
            .read_to_end(&mut reply)
            .with_context(|| format!("attacker {i}: the agent never closed it"))?;
        if String::from_utf8_lossy(&reply).starts_with(HEAD_TIMEOUT_REPLY) {
            timed_out += 1;
        }
    }
    let closed = attack_start.elapsed();
    ensure!(
        closed >= HEAD_TIMEOUT,
        "attackers were closed after {closed:?}, before the head timeout"
    );
    ensure!(
        timed_out == ATTACKERS,
        "{timed_out} of {ATTACKERS} attackers got the 408"
    );
    drop(attackers);

    let after = eventually(GUARD, || {
        let rss = rss_kb(agent.pid())?;
        ensure!(
            rss <= baseline + MEMORY_SLACK_KB,
            "the agent holds {rss} KiB, baseline {baseline} KiB"
        );
        Ok(rss)
    })?;
    let timeouts = agent.metric(
        "envoy_http_downstream_rq_header_timeout",
        &[("envoy_http_conn_manager_prefix", "slowloris")],
    )?;
    ensure!(
        timeouts == Some(ATTACKERS as f64),
        "downstream_rq_header_timeout is {timeouts:?}"
    );
    let (status, _) = timed_request(addr)?;
    ensure!(status == OK, "after the attack: {status}");
    eprintln!(
        "slowloris of {ATTACKERS}: connected in {connected:?}; agent RSS {baseline} KiB before, \
         {during} KiB during, {after} KiB after; a new request took {normal:?} before and \
         {under_attack:?} under attack; all closed with 408 after {closed:?}"
    );
    Ok(())
}

#[test]
fn a_pipelined_second_head_left_unfinished_gets_the_408_once_the_first_is_answered() -> Result<()> {
    /// The connection manager's `request_headers_timeout` here.
    const TIMEOUT: Duration = Duration::from_secs(2);
    let gateway = Gateway::start(
        &["pipelined"],
        json!({
            "requestHeadersTimeout": format!("{}s", TIMEOUT.as_secs()),
            "streamIdleTimeout": "0s",
        }),
        &[],
    )?;
    let (agent, addr) = (&gateway.agent, gateway.listeners[0]);
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(GUARD))?;
    let start = Instant::now();
    // One write: a whole request, then the start of the next.
    stream.write_all(
        &[
            &b"GET / HTTP/1.1\r\nHost: victim.test\r\n\r\n"[..],
            PARTIAL_HEAD,
        ]
        .concat(),
    )?;
    let mut reply = Vec::new();
    stream
        .read_to_end(&mut reply)
        .context("the agent never timed out the second head")?;
    let elapsed = start.elapsed();
    let reply = String::from_utf8_lossy(&reply);
    ensure!(reply.starts_with(OK), "the first request got:\n{reply}");
    let second = reply
        .find(HEAD_TIMEOUT_REPLY)
        .with_context(|| format!("no 408 after the first response:\n{reply}"))?;
    ensure!(second > 0, "{reply}");
    ensure!(
        elapsed >= TIMEOUT,
        "the connection was closed after {elapsed:?}, before the head timeout"
    );
    let timeouts = agent.metric(
        "envoy_http_downstream_rq_header_timeout",
        &[("envoy_http_conn_manager_prefix", "pipelined")],
    )?;
    ensure!(
        timeouts == Some(1.0),
        "downstream_rq_header_timeout is {timeouts:?}"
    );
    Ok(())
}
