//! Control-plane benchmarks, printed as plain numbers:
//! 1. translation: a 10,000-ServiceEntry mesh for one sidecar, whole and
//!    per push after one ServiceEntry changed;
//! 2. 10,000 proxies (ADS streams that ACK every response, one connection
//!    each), over state of the world and then delta, subscribed as a
//!    sidecar is, on a 100-ServiceEntry mesh; then 100 proxies on the
//!    10,000-ServiceEntry mesh. Each run rewrites one ServiceEntry's file in
//!    the watched config directory and reports the time to each proxy's ACK
//!    (p50, p99, last), the server's CPU time and resident memory per
//!    proxy, and what was pushed, by type. The server and the proxies run
//!    in two child processes, so the server's figures are its own.
//!
//! Run: `cargo bench -p control-plane --bench xds`
//! (`XDS_BENCH_PROXIES=1000` for a smaller fleet.)

mod clients;
mod clock;
mod mesh;
mod process;
mod proxies;
mod scenario;
mod server;
mod translation;

use nix::sys::resource::{Resource, getrlimit, setrlimit};

use clients::{CLIENTS_ENV, PROTOCOL_ENV, PROXIES_ENV};
use scenario::Scenario;
use server::SERVER_ENV;

/// The fleet of the first two runs.
const PROXIES: usize = 10_000;
/// The large mesh of the last two runs, and its fleet.
const LARGE_MESH: usize = 10_000;
const LARGE_MESH_PROXIES: usize = 100;
/// The mesh of the fleet runs.
const FLEET_MESH: usize = 100;

/// One descriptor per connection on either side: the soft limit is raised
/// to the hard one.
fn raise_file_limit() {
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).expect("setrlimit");
}

fn main() {
    raise_file_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    if let Ok(dir) = std::env::var(SERVER_ENV) {
        runtime.block_on(server::run(dir.into()));
        return;
    }
    let proxies = std::env::var(PROXIES_ENV)
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(PROXIES);
    if let Ok(addr) = std::env::var(CLIENTS_ENV) {
        let delta = std::env::var(PROTOCOL_ENV).is_ok_and(|p| p == "delta");
        runtime.block_on(clients::run(addr, proxies, delta));
        return;
    }
    translation::report();
    for (services, proxies, delta) in [
        (FLEET_MESH, proxies, false),
        (FLEET_MESH, proxies, true),
        (LARGE_MESH, LARGE_MESH_PROXIES, false),
        (LARGE_MESH, LARGE_MESH_PROXIES, true),
    ] {
        Scenario {
            services,
            proxies,
            delta,
        }
        .run();
    }
}
