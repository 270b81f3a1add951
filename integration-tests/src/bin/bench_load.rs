//! `bench-load`: the fixed-rate latency load of `bench/run.sh` (what wrk2
//! does; wrk2 is not packaged in Debian). Sends `RATE` requests a second,
//! spread evenly over `CONNECTIONS` keep-alive HTTP/1.1 connections, for
//! `SECONDS` after `WARMUP` seconds that are not recorded, and prints one
//! line of `key=value` pairs: requests, errors, the achieved rate and the
//! latency percentiles in microseconds.
//!
//! ```text
//! bench-load ADDR HOST RATE CONNECTIONS SECONDS WARMUP
//! bench-load 127.0.0.1:18081 bench.local 2000 4 10 1
//! ```
//!
//! Each connection is a thread with a blocking socket, paced with
//! `thread::sleep` (high-resolution timers, tens of µs of slack; an async
//! runtime's 1 ms timer wheel would dominate what is measured). Latency is
//! open loop, without coordinated omission: a request that could not be
//! sent on schedule because the previous response on its connection came
//! late is timed from when it should have been sent; a late wake-up of this
//! side's own timer is not counted. Responses must carry `Content-Length`.
//!
//! Not a test: benchmarks never run in CI.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

struct Plan {
    addr: SocketAddr,
    request: Vec<u8>,
    /// Time between two requests on one connection.
    interval: Duration,
    /// When recording starts.
    record_from: Instant,
    /// When the last request may be scheduled.
    end: Instant,
}

#[derive(Default)]
struct Outcome {
    latencies_us: Vec<u64>,
    errors: u64,
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, host, rate, connections, seconds, warmup] = args.as_slice() else {
        bail!("usage: bench-load ADDR HOST RATE CONNECTIONS SECONDS WARMUP");
    };
    let addr: SocketAddr = addr.parse().context("ADDR: expected ip:port")?;
    let rate: f64 = rate.parse().context("RATE")?;
    let connections: u32 = connections.parse().context("CONNECTIONS")?;
    let seconds: f64 = seconds.parse().context("SECONDS")?;
    let warmup: f64 = warmup.parse().context("WARMUP")?;
    if rate <= 0.0 || connections == 0 || seconds <= 0.0 {
        bail!("RATE, CONNECTIONS and SECONDS must be positive");
    }
    let start = Instant::now() + Duration::from_millis(50);
    let plan = Plan {
        addr,
        request: format!("GET / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: bench-load\r\n\r\n")
            .into_bytes(),
        interval: Duration::from_secs_f64(f64::from(connections) / rate),
        record_from: start + Duration::from_secs_f64(warmup),
        end: start + Duration::from_secs_f64(warmup + seconds),
    };
    let outcomes = thread::scope(|scope| {
        let workers: Vec<_> = (0..connections)
            .map(|i| {
                let plan = &plan;
                let first = start + plan.interval.mul_f64(f64::from(i) / f64::from(connections));
                scope.spawn(move || run(plan, first))
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().expect("a connection thread panicked"))
            .collect::<Result<Vec<_>>>()
    })?;
    let mut all = Outcome::default();
    for outcome in outcomes {
        all.latencies_us.extend(outcome.latencies_us);
        all.errors += outcome.errors;
    }
    report(all, seconds);
    Ok(())
}

fn connect(addr: SocketAddr) -> Result<BufReader<TcpStream>> {
    let stream = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    Ok(BufReader::with_capacity(16 * 1024, stream))
}

/// One connection's schedule: a request every `plan.interval` from `first`.
fn run(plan: &Plan, first: Instant) -> Result<Outcome> {
    let mut outcome = Outcome::default();
    let mut connection = connect(plan.addr)?;
    let mut next = first;
    let mut previous_done = Instant::now();
    while next < plan.end {
        let now = Instant::now();
        if next > now {
            thread::sleep(next - now);
        }
        // Late because the previous response was: that wait is the server's.
        let origin = if previous_done > next {
            next
        } else {
            Instant::now()
        };
        let ok = exchange(&mut connection, &plan.request).unwrap_or(false);
        let done = Instant::now();
        if next >= plan.record_from {
            if ok {
                let micros = done.duration_since(origin).as_micros();
                outcome
                    .latencies_us
                    .push(u64::try_from(micros).unwrap_or(u64::MAX));
            } else {
                outcome.errors += 1;
            }
        }
        if !ok {
            connection = connect(plan.addr)?;
        }
        previous_done = done;
        next += plan.interval;
    }
    Ok(outcome)
}

/// Sends one request and reads its response; `Ok(true)` for a 2xx that
/// leaves the connection reusable.
fn exchange(connection: &mut BufReader<TcpStream>, request: &[u8]) -> io::Result<bool> {
    connection.get_mut().write_all(request)?;
    let mut line = String::new();
    connection.read_line(&mut line)?;
    let success = line.split(' ').nth(1).is_some_and(|s| s.starts_with('2'));
    let mut length = None;
    let mut close = false;
    loop {
        line.clear();
        if connection.read_line(&mut line)? == 0 {
            return Ok(false);
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse::<u64>().ok();
            } else if name.eq_ignore_ascii_case("connection") {
                close = value.eq_ignore_ascii_case("close");
            }
        }
    }
    let Some(length) = length else {
        return Ok(false);
    };
    let copied = io::copy(&mut connection.by_ref().take(length), &mut io::sink())?;
    Ok(success && copied == length && !close)
}

fn report(mut outcome: Outcome, seconds: f64) {
    outcome.latencies_us.sort_unstable();
    let all = &outcome.latencies_us;
    let percentile = |p: f64| -> u64 {
        if all.is_empty() {
            return 0;
        }
        let rank = ((p / 100.0) * all.len() as f64).ceil() as usize;
        all[rank.clamp(1, all.len()) - 1]
    };
    println!(
        "requests={} errors={} rate={:.1} p50_us={} p90_us={} p99_us={} p999_us={} max_us={}",
        all.len(),
        outcome.errors,
        all.len() as f64 / seconds,
        percentile(50.0),
        percentile(90.0),
        percentile(99.0),
        percentile(99.9),
        all.last().copied().unwrap_or(0),
    );
}
