//! Translation cost in this process: a 10,000-ServiceEntry mesh translated
//! whole for one sidecar, and the translation one push costs when a single
//! ServiceEntry changes (what the server does once per proxy kind: the
//! snapshot cache's miss for a new mesh state).

use std::sync::Arc;
use std::time::{Duration, Instant};

use control_plane::config::load::load_dir;
use control_plane::translate;
use control_plane::xds::cache::SnapshotCache;
use control_plane::xds::state::MeshStatePublisher;

use super::mesh;
use super::proxies::sidecar;

const SERVICES: usize = 10_000;
const RUNS: usize = 5;

fn best(mut run: impl FnMut() -> Duration) -> Duration {
    (0..RUNS).map(|_| run()).min().expect("runs")
}

pub fn report() {
    let dir = tempfile::tempdir().expect("config directory");
    mesh::write(dir.path(), SERVICES).expect("write the mesh");
    let before = Arc::new(load_dir(dir.path(), None).expect("load the mesh"));
    mesh::change(dir.path(), 2).expect("change the mesh");
    let after = Arc::new(load_dir(dir.path(), None).expect("load the changed mesh"));
    let proxy = sidecar(0);

    let mut resources = 0;
    let whole = best(|| {
        let start = Instant::now();
        let out = translate::translate(&before, &[], &proxy).into_typed();
        let elapsed = start.elapsed();
        resources = out.values().map(|by_name| by_name.len()).sum();
        elapsed
    });
    println!(
        "translate: {} -> {resources} resources for one sidecar: best of {RUNS} {:.1} ms",
        mesh::describe(SERVICES),
        whole.as_secs_f64() * 1e3
    );

    let publisher = MeshStatePublisher::new(before.clone());
    let cache = SnapshotCache::default();
    cache.get(&publisher.current(), &proxy);
    let mut revision = 0;
    let per_push = best(|| {
        revision += 1;
        let snapshot = if revision % 2 == 1 { &after } else { &before };
        publisher.set_snapshot(snapshot.clone());
        let state = publisher.current();
        let start = Instant::now();
        cache.get(&state, &proxy);
        start.elapsed()
    });
    println!(
        "translation per push: one ServiceEntry changed in that mesh: best of {RUNS} {:.1} ms (target <= 5 ms)",
        per_push.as_secs_f64() * 1e3
    );
}
