//! Logging setup shared by both binaries.

use tracing_subscriber::EnvFilter;

/// Installs a `tracing` subscriber writing to stderr. The level comes from
/// `RUST_LOG` when set, else `default_level` (e.g. `info`).
pub fn init_tracing(default_level: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
