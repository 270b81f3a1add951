//! Waiting for changed files to stop changing before they are read: each
//! must keep its size and modification time for [`SETTLE`]. A file still
//! changing after [`MAX_SETTLE`] is left as it was for this load.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

/// How long a changed file must keep its size and modification time.
pub const SETTLE: Duration = Duration::from_millis(200);

/// The longest a load waits for files to stop changing.
pub const MAX_SETTLE: Duration = Duration::from_secs(10);

/// What says a file changed: its size and modification time (`None` while
/// it does not exist).
type Stamp = Option<(u64, SystemTime)>;

fn stamps(paths: &HashSet<PathBuf>) -> HashMap<PathBuf, Stamp> {
    paths
        .iter()
        .map(|path| {
            let stamp = fs::metadata(path).ok().map(|meta| {
                (
                    meta.len(),
                    meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                )
            });
            (path.clone(), stamp)
        })
        .collect()
}

/// Waits until every path in `paths` (and those `more` adds meanwhile: the
/// paths changed since) has kept its stamp for [`SETTLE`], or until
/// [`MAX_SETTLE`]; returns the paths still changing then.
pub async fn settle(
    mut paths: HashSet<PathBuf>,
    mut more: impl FnMut() -> HashSet<PathBuf>,
) -> Vec<PathBuf> {
    let started = Instant::now();
    let mut before = stamps(&paths);
    loop {
        tokio::time::sleep(SETTLE).await;
        paths.extend(more());
        let now = stamps(&paths);
        let changing: Vec<PathBuf> = now
            .iter()
            .filter(|(path, stamp)| before.get(*path) != Some(stamp))
            .map(|(path, _)| path.clone())
            .collect();
        if changing.is_empty() {
            return Vec::new();
        }
        if started.elapsed() >= MAX_SETTLE {
            tracing::warn!(files = ?changing, "config files still changing; keeping what they held");
            return changing;
        }
        before = now;
    }
}
