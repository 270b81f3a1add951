//! `bench-load`: the load generator of `bench/run.sh` for what wrk cannot
//! do here: TLS with an SNI name that resolves nowhere, a request per new
//! connection (handshake cost), an explicit proxy's absolute-form requests,
//! and a fixed rate, open loop (what wrk2 does; wrk2 is not packaged in
//! Debian). Prints one line of `key=value` pairs: requests, errors,
//! non-2xx answers, the achieved rate, MB/s of response bodies and the
//! latency percentiles in microseconds.
//!
//! ```text
//! bench-load 127.0.0.1:18081 --host bench.local --rate 2000 --connections 4 --seconds 10
//! bench-load 127.0.0.1:18443 --host tls.bench.local --tls-ca ca.pem --new-connection --seconds 5
//! ```
//!
//! Each connection is a thread with a blocking socket. Without `--rate`
//! it sends back to back (closed loop). With `--rate` the requests are
//! spread evenly over the connections and paced with `thread::sleep`
//! (high-resolution timers, tens of µs of slack; an async runtime's 1 ms
//! timer wheel would dominate what is measured). That latency is open
//! loop, without coordinated omission: a request that could not be sent on
//! schedule because the previous response on its connection came late is
//! timed from when it should have been sent; a late wake-up of this side's
//! own timer is not counted. Responses must carry `Content-Length`.
//!
//! Not a test: benchmarks never run in CI.

mod exchange;

use std::io::BufReader;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::Parser;

use exchange::{Connector, Stream, exchange, request};

/// How long a connection waits after a failed connect before it tries again.
const RECONNECT_PAUSE: Duration = Duration::from_millis(1);

#[derive(Parser)]
#[command(about = "HTTP/1.1 load for bench/run.sh: closed loop, or open loop at a fixed rate")]
struct Args {
    /// Where to connect (ip:port).
    addr: SocketAddr,
    /// The Host header, and the SNI name with --tls-ca.
    #[arg(long)]
    host: String,
    /// The request path.
    #[arg(long, default_value = "/")]
    path: String,
    /// Requests per second over all connections (open loop); back to back
    /// when absent (closed loop).
    #[arg(long)]
    rate: Option<f64>,
    /// Concurrent connections.
    #[arg(long, default_value_t = 4)]
    connections: u32,
    /// Seconds measured.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Seconds of load before the measured ones.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Speak TLS, trusting only the CA certificate in this PEM file.
    #[arg(long)]
    tls_ca: Option<PathBuf>,
    /// Requests in absolute form (`GET http://host/path`), for an explicit proxy.
    #[arg(long)]
    absolute: bool,
    /// A new connection (and TLS handshake) for every request.
    #[arg(long)]
    new_connection: bool,
}

/// What every connection thread shares.
struct Plan {
    connector: Connector,
    request: Vec<u8>,
    new_connection: bool,
    /// Time between two requests on one connection; none in a closed loop.
    interval: Option<Duration>,
    /// When recording starts.
    record_from: Instant,
    /// When the last request may start.
    end: Instant,
}

#[derive(Default)]
struct Outcome {
    latencies_us: Vec<u64>,
    errors: u64,
    non_2xx: u64,
    bytes: u64,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.connections == 0 || args.seconds <= 0.0 || args.rate.is_some_and(|r| r <= 0.0) {
        bail!("--rate, --connections and --seconds must be positive");
    }
    let connector = match &args.tls_ca {
        Some(ca) => Connector::tls(args.addr, &args.host, ca)?,
        None => Connector::plain(args.addr),
    };
    let start = Instant::now() + Duration::from_millis(50);
    let plan = Plan {
        connector,
        request: request(&args.host, &args.path, args.absolute, args.new_connection),
        new_connection: args.new_connection,
        interval: args
            .rate
            .map(|rate| Duration::from_secs_f64(f64::from(args.connections) / rate)),
        record_from: start + Duration::from_secs_f64(args.warmup),
        end: start + Duration::from_secs_f64(args.warmup + args.seconds),
    };
    let outcomes = thread::scope(|scope| {
        let workers: Vec<_> = (0..args.connections)
            .map(|i| {
                let plan = &plan;
                let offset = plan.interval.unwrap_or_default();
                let first = start + offset.mul_f64(f64::from(i) / f64::from(args.connections));
                scope.spawn(move || run(plan, first))
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().expect("a connection thread panicked"))
            .collect::<Vec<_>>()
    });
    let mut all = Outcome::default();
    for outcome in outcomes {
        all.latencies_us.extend(outcome.latencies_us);
        all.errors += outcome.errors;
        all.non_2xx += outcome.non_2xx;
        all.bytes += outcome.bytes;
    }
    report(all, args.seconds);
    Ok(())
}

/// One connection's schedule from `first`: a request every `plan.interval`,
/// or back to back.
fn run(plan: &Plan, first: Instant) -> Outcome {
    let mut outcome = Outcome::default();
    let mut connection: Option<BufReader<Stream>> = None;
    let mut next = first;
    let mut previous_done = Instant::now();
    while next < plan.end {
        let now = Instant::now();
        if next > now {
            thread::sleep(next - now);
        }
        // Late because the previous response was: that wait is the server's.
        let origin = if plan.interval.is_some() && previous_done > next {
            next
        } else {
            Instant::now()
        };
        let recorded = origin >= plan.record_from;
        let response = match connection.take() {
            Some(open) => Ok(open),
            None => plan.connector.connect(),
        }
        .and_then(|mut open| {
            let response = exchange(&mut open, &plan.request)?;
            if !plan.new_connection && response.as_ref().is_some_and(|r| r.reusable) {
                connection = Some(open);
            }
            Ok(response)
        });
        let done = Instant::now();
        match response {
            Ok(Some(response)) if recorded => {
                let micros = done.duration_since(origin).as_micros();
                outcome
                    .latencies_us
                    .push(u64::try_from(micros).unwrap_or(u64::MAX));
                outcome.bytes += response.bytes;
                if !response.success {
                    outcome.non_2xx += 1;
                }
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => {
                if recorded {
                    outcome.errors += 1;
                }
                thread::sleep(RECONNECT_PAUSE);
            }
        }
        previous_done = done;
        next = match plan.interval {
            Some(interval) => next + interval,
            None => Instant::now(),
        };
    }
    outcome
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
        "requests={} errors={} non_2xx={} rate={:.1} mbps={:.2} p50_us={} p90_us={} p99_us={} p999_us={} max_us={}",
        all.len(),
        outcome.errors,
        outcome.non_2xx,
        all.len() as f64 / seconds,
        outcome.bytes as f64 / seconds / 1e6,
        percentile(50.0),
        percentile(90.0),
        percentile(99.0),
        percentile(99.9),
        all.last().copied().unwrap_or(0),
    );
}
