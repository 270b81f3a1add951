//! The server's side, in a child process of its own so that its resident
//! set and CPU time are its own: the config directory watched as `serve`
//! watches it, each new snapshot published to every stream, ADS on a
//! loopback plaintext port (the secure port's push path, without TLS).
//! Prints `listening <addr>`, then `published <unix µs>` for each change.

use std::path::PathBuf;
use std::sync::Arc;

use control_plane::config::watch::{ConfigWatcher, ErrorCounter};
use control_plane::metrics::Metrics;
use control_plane::xds::{self, TrustedGateways, XdsContext, state::MeshStatePublisher};

use super::clock::unix_micros;

/// Set (to the config directory) in the child process that serves.
pub const SERVER_ENV: &str = "XDS_BENCH_SERVER";

pub async fn run(dir: PathBuf) {
    let metrics = Arc::new(Metrics::default());
    let (_watcher, mut snapshots) =
        ConfigWatcher::start(dir, None, ErrorCounter::default()).expect("load the config");
    let publisher = MeshStatePublisher::new(snapshots.borrow_and_update().clone());
    let context = XdsContext::new(
        publisher.clone(),
        metrics,
        TrustedGateways::default(),
        xds::Limits::default(),
    );
    let listener = xds::bind("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("bind");
    println!("listening {}", listener.local_addr().expect("addr"));
    let follow = context.clone();
    tokio::spawn(async move {
        while snapshots.changed().await.is_ok() {
            let snapshot = snapshots.borrow_and_update().clone();
            publisher.set_snapshot(snapshot);
            println!("published {}", unix_micros());
            let generation = follow.publisher.current().generation;
            follow.cache.evict_older_than(generation);
        }
    });
    xds::serve_plaintext(listener, context, std::future::pending())
        .await
        .expect("serve");
}
