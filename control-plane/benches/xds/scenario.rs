//! One measured run: a server child watching a config directory, a client
//! child playing the proxies, one file change, and what it took until
//! every proxy ACKed it.

use std::collections::{BTreeMap, HashMap};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use super::clients::{CLIENTS_ENV, PROTOCOL_ENV, PROXIES_ENV};
use super::clock::unix_micros;
use super::mesh;
use super::process::{ChildProcess, Usage, usage};
use super::server::SERVER_ENV;

/// How long the whole fleet may take to connect, or to converge.
const PATIENCE: Duration = Duration::from_secs(300);
/// How long the streams are left alone after connecting (the server's
/// memory settles) and after converging (late responses are counted).
const QUIET: Duration = Duration::from_secs(1);

pub struct Scenario {
    pub services: usize,
    pub proxies: usize,
    pub delta: bool,
}

/// What one kind of response added up to after the change.
#[derive(Default)]
struct Sent {
    responses: usize,
    resources: usize,
    bytes: usize,
}

/// What one run measured; times in µs since the change was written.
struct Measured {
    connect_time: Duration,
    /// The server before the proxies connect, once they are all ready,
    /// and after the change.
    idle: Usage,
    connected: Usage,
    after: Usage,
    published_micros: u64,
    latencies: Vec<u64>,
    sent: BTreeMap<String, Sent>,
}

fn wait_for(child: &ChildProcess, what: &str) -> String {
    child
        .lines
        .recv_timeout(PATIENCE)
        .unwrap_or_else(|_| panic!("no {what} from a child process"))
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index] as f64 / 1e3
}

impl Scenario {
    fn protocol(&self) -> &'static str {
        if self.delta { "delta" } else { "sotw" }
    }

    /// Runs the scenario and prints its figures.
    pub fn run(&self) {
        let dir = tempfile::tempdir().expect("config directory");
        mesh::write(dir.path(), self.services).expect("write the mesh");
        let server = ChildProcess::spawn(&[(SERVER_ENV, dir.path().display().to_string())]);
        let listening = wait_for(&server, "address");
        let addr = listening
            .strip_prefix("listening ")
            .expect("the server says where it listens");
        std::thread::sleep(QUIET);
        let idle = usage(server.id());

        let connect_start = Instant::now();
        let clients = ChildProcess::spawn(&[
            (CLIENTS_ENV, addr.to_string()),
            (PROXIES_ENV, self.proxies.to_string()),
            (PROTOCOL_ENV, self.protocol().to_string()),
        ]);
        for _ in 0..self.proxies {
            let line = wait_for(&clients, "ready proxy");
            assert_eq!(line, "ready", "no ack before every proxy is ready");
        }
        let connect_time = connect_start.elapsed();
        std::thread::sleep(QUIET);
        let connected = usage(server.id());

        let changed_at = unix_micros();
        mesh::change(dir.path(), 2).expect("change the mesh");
        let (converged, sent) = self.collect(&clients);
        let published = server
            .lines
            .try_iter()
            .find_map(|l| l.strip_prefix("published ")?.parse::<u64>().ok())
            .expect("the server published the change");
        let after = usage(server.id());
        self.print(&Measured {
            connect_time,
            idle,
            connected,
            after,
            published_micros: published.saturating_sub(changed_at),
            latencies: converged
                .values()
                .map(|at| at.saturating_sub(changed_at))
                .collect(),
            sent,
        });
    }

    /// Reads ACKs until every proxy has ACKed the changed clusters, then for
    /// [`QUIET`] more: when each proxy converged, and what was sent.
    fn collect(&self, clients: &ChildProcess) -> (HashMap<usize, u64>, BTreeMap<String, Sent>) {
        let mut converged = HashMap::new();
        let mut sent: BTreeMap<String, Sent> = BTreeMap::new();
        let mut deadline = Instant::now() + PATIENCE;
        loop {
            let wait = deadline.saturating_duration_since(Instant::now());
            let line = match clients.lines.recv_timeout(wait) {
                Ok(line) => line,
                Err(RecvTimeoutError::Timeout) if converged.len() == self.proxies => break,
                Err(_) => panic!(
                    "{} of {} proxies converged before the clients stopped",
                    converged.len(),
                    self.proxies
                ),
            };
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [_, proxy, kind, resources, bytes, at] = fields[..] else {
                panic!("unexpected line from the clients: {line}");
            };
            let parse = |field: &str| field.parse::<u64>().expect("a number");
            let entry = sent.entry(kind.to_string()).or_default();
            entry.responses += 1;
            entry.resources += parse(resources) as usize;
            entry.bytes += parse(bytes) as usize;
            if kind == "Cluster" {
                converged.entry(parse(proxy) as usize).or_insert(parse(at));
                if converged.len() == self.proxies {
                    deadline = Instant::now() + QUIET;
                }
            }
        }
        (converged, sent)
    }

    fn print(&self, measured: &Measured) {
        let Measured {
            connect_time,
            idle,
            connected,
            after,
            published_micros,
            latencies,
            sent,
        } = measured;
        let n = self.proxies as f64;
        let mut latencies = latencies.clone();
        latencies.sort_unstable();
        println!(
            "\n== {} proxies over {} ADS; mesh: {}; change: one ServiceEntry's DNS endpoint ({}) ==",
            self.proxies,
            self.protocol(),
            mesh::describe(self.services),
            mesh::CHANGED_CLUSTER
        );
        println!(
            "connect: all {} ready in {:.2} s; server CPU {:.3} ms per proxy",
            self.proxies,
            connect_time.as_secs_f64(),
            (connected.cpu_seconds - idle.cpu_seconds) * 1e3 / n
        );
        println!(
            "memory: {:.1} KiB resident per connected proxy in the server (idle {} KiB, connected {} KiB; target <= 50 KB)",
            connected.rss_kib.saturating_sub(idle.rss_kib) as f64 / n,
            idle.rss_kib,
            connected.rss_kib
        );
        println!(
            "change: file written -> snapshot published {:.1} ms (watcher debounce and settle); -> ACK p50 {:.1} ms, p99 {:.1} ms, last {:.1} ms (target: last <= 2000 ms)",
            *published_micros as f64 / 1e3,
            percentile(&latencies, 0.50),
            percentile(&latencies, 0.99),
            percentile(&latencies, 1.0),
        );
        println!(
            "change: server CPU {:.1} ms in all ({:.1} µs per proxy)",
            (after.cpu_seconds - connected.cpu_seconds) * 1e3,
            (after.cpu_seconds - connected.cpu_seconds) * 1e6 / n
        );
        let bytes: usize = sent.values().map(|s| s.bytes).sum();
        println!(
            "change: {bytes} bytes pushed ({:.0} per proxy)",
            bytes as f64 / n
        );
        for (kind, s) in sent {
            println!(
                "change: {kind}: {} responses ({:.2} per proxy), {} resources ({:.2} per proxy), {} bytes",
                s.responses,
                s.responses as f64 / n,
                s.resources,
                s.resources as f64 / n,
                s.bytes
            );
        }
    }
}
