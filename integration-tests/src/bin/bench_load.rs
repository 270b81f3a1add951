//! `bench-load`: the fixed-rate latency load of `bench/run.sh` (what wrk2
//! does; wrk2 is not packaged in Debian). Sends `RATE` requests a second,
//! spread evenly over `CONNECTIONS` keep-alive HTTP/1.1 connections, for
//! `SECONDS` after `WARMUP` seconds that are not recorded, and prints one
//! line of `key=value` pairs: requests, errors, the achieved rate and the
//! latency percentiles in microseconds.
//!
//! ```text
//! bench-load ADDR HOST RATE CONNECTIONS SECONDS WARMUP
//! bench-load 127.0.0.1:18081 bench.local 2000 4 10 2
//! ```
//!
//! Latency is open-loop (no coordinated omission): a request that could not
//! be sent on schedule because the previous response on its connection came
//! late is timed from when it should have been sent. Timer slack on this
//! side (tokio's 1 ms timer wheel) is not counted.
//!
//! Not a test: benchmarks never run in CI.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HOST, HeaderValue};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;

struct Plan {
    addr: SocketAddr,
    host: HeaderValue,
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
    let host = HeaderValue::from_str(host).context("HOST")?;
    let rate: f64 = rate.parse().context("RATE")?;
    let connections: u32 = connections.parse().context("CONNECTIONS")?;
    let seconds: f64 = seconds.parse().context("SECONDS")?;
    let warmup: f64 = warmup.parse().context("WARMUP")?;
    if rate <= 0.0 || connections == 0 {
        bail!("RATE and CONNECTIONS must be positive");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(async move {
        let start = Instant::now() + Duration::from_millis(50);
        let plan = Plan {
            addr,
            host,
            interval: Duration::from_secs_f64(f64::from(connections) / rate),
            record_from: start + Duration::from_secs_f64(warmup),
            end: start + Duration::from_secs_f64(warmup + seconds),
        };
        let plan = std::sync::Arc::new(plan);
        let mut tasks = Vec::new();
        for i in 0..connections {
            let plan = plan.clone();
            let first = start + plan.interval.mul_f64(f64::from(i) / f64::from(connections));
            tasks.push(tokio::spawn(async move { run(&plan, first).await }));
        }
        let mut all = Outcome::default();
        for task in tasks {
            let outcome = task.await.context("a connection task panicked")??;
            all.latencies_us.extend(outcome.latencies_us);
            all.errors += outcome.errors;
        }
        Ok::<_, anyhow::Error>(all)
    })?;
    report(outcome, seconds);
    Ok(())
}

async fn connect(addr: SocketAddr) -> Result<SendRequest<Empty<Bytes>>> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true)?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

/// One connection's schedule: a request every `plan.interval` from `first`.
async fn run(plan: &Plan, first: Instant) -> Result<Outcome> {
    let mut outcome = Outcome::default();
    let mut sender = connect(plan.addr).await?;
    let mut next = first;
    let mut previous_done = Instant::now();
    while next < plan.end {
        tokio::time::sleep_until(next).await;
        // Late because the previous response was: that wait is the server's.
        let origin = if previous_done > next {
            next
        } else {
            Instant::now()
        };
        let request = Request::get("/")
            .header(HOST, plan.host.clone())
            .body(Empty::<Bytes>::new())?;
        let ok = match sender.send_request(request).await {
            Ok(response) => {
                let status = response.status();
                response.into_body().collect().await.is_ok() && status.is_success()
            }
            Err(_) => false,
        };
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
        if !ok || sender.is_closed() {
            sender = connect(plan.addr).await?;
        }
        previous_done = done;
        next += plan.interval;
    }
    Ok(outcome)
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
