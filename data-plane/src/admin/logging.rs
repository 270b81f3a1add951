//! `/logging` (POST), as Envoy's: with no parameter it lists the active
//! loggers; `level=` changes every logger, `paths=name:level,…` and
//! `name=level` change the named ones (here `tracing` targets such as
//! `data_plane::xds`). A level is one of Envoy's (`warning` and `critical`
//! stand for `warn` and `error`); anything else is a 400 with the usage.

use std::collections::BTreeMap;

use http::StatusCode;
use parking_lot::Mutex;

use super::SetLogLevel;

/// Envoy's usage text, after an error.
const USAGE: &str = "usage: /logging?<name>=<level> (change single level)\n\
usage: /logging?paths=name1:level1,name2:level2,... (change multiple levels)\n\
usage: /logging?level=<level> (change all levels)\n";

/// The levels set through `/logging`, and the hook that applies them.
pub struct Logging {
    set: SetLogLevel,
    levels: Mutex<Levels>,
}

/// The default level and the targets' own, as `tracing` levels.
#[derive(Debug, Clone, PartialEq)]
struct Levels {
    default: &'static str,
    targets: BTreeMap<String, &'static str>,
}

impl Levels {
    /// The `EnvFilter` directives: the default, then each target's.
    fn directives(&self) -> String {
        let mut out = self.default.to_string();
        for (target, level) in &self.targets {
            out.push_str(&format!(",{target}={level}"));
        }
        out
    }

    /// Envoy's listing: `active loggers:` then `  name: level` lines.
    fn listing(&self) -> String {
        let mut out = format!(
            "active loggers:\n  default: {}\n",
            envoy_level(self.default)
        );
        for (target, level) in &self.targets {
            out.push_str(&format!("  {target}: {}\n", envoy_level(level)));
        }
        out
    }
}

/// Why a `/logging` query is refused.
#[derive(Debug, PartialEq, thiserror::Error)]
enum QueryError {
    #[error("unknown logger level")]
    Level,
    #[error("unknown logger name")]
    Name,
}

impl Logging {
    /// `set` applies `EnvFilter` directives; `initial` is the level the
    /// process started with (`RUST_LOG`, a bare level, else `info`).
    pub fn new(set: SetLogLevel, initial: Option<&str>) -> Self {
        let default = initial.and_then(tracing_level).unwrap_or("info");
        Self {
            set,
            levels: Mutex::new(Levels {
                default,
                targets: BTreeMap::new(),
            }),
        }
    }

    /// The answer to POST `/logging?query`.
    pub fn handle(&self, query: &str) -> (StatusCode, String) {
        let mut levels = self.levels.lock();
        let next = match apply(&levels, query) {
            Ok(next) => next,
            Err(error) => {
                return (
                    StatusCode::BAD_REQUEST,
                    format!("error: {error}\n\n{USAGE}"),
                );
            }
        };
        if next != *levels {
            if let Err(error) = (self.set)(&next.directives()) {
                return (
                    StatusCode::BAD_REQUEST,
                    format!("error: {error}\n\n{USAGE}"),
                );
            }
            tracing::info!(levels = %next.directives(), "log levels changed");
            *levels = next;
        }
        (StatusCode::OK, levels.listing())
    }
}

/// `levels` changed as `query` asks.
fn apply(levels: &Levels, query: &str) -> Result<Levels, QueryError> {
    let mut next = levels.clone();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "level" => {
                next.default = tracing_level(value).ok_or(QueryError::Level)?;
                next.targets.clear();
            }
            "paths" => {
                for path in value.split(',').filter(|p| !p.is_empty()) {
                    let (name, level) = path.rsplit_once(':').ok_or(QueryError::Level)?;
                    set_target(&mut next, name, level)?;
                }
            }
            name => set_target(&mut next, name, value)?,
        }
    }
    Ok(next)
}

fn set_target(levels: &mut Levels, name: &str, level: &str) -> Result<(), QueryError> {
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
    if !valid {
        return Err(QueryError::Name);
    }
    let level = tracing_level(level).ok_or(QueryError::Level)?;
    levels.targets.insert(name.to_string(), level);
    Ok(())
}

/// The `tracing` level of Envoy's level name.
fn tracing_level(level: &str) -> Option<&'static str> {
    Some(match level {
        "trace" => "trace",
        "debug" => "debug",
        "info" => "info",
        "warning" | "warn" => "warn",
        "error" | "critical" => "error",
        "off" => "off",
        _ => return None,
    })
}

/// Envoy's name of a `tracing` level.
fn envoy_level(level: &str) -> &str {
    match level {
        "warn" => "warning",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn logging() -> (Logging, Arc<Mutex<Vec<String>>>) {
        let applied = Arc::new(Mutex::new(Vec::new()));
        let record = applied.clone();
        let set: SetLogLevel = Box::new(move |directives: &str| {
            record.lock().push(directives.to_string());
            Ok(())
        });
        (Logging::new(set, Some("warn")), applied)
    }

    #[test]
    fn no_parameter_lists_the_loggers_and_changes_nothing() {
        let (logging, applied) = logging();
        assert_eq!(
            logging.handle(""),
            (
                StatusCode::OK,
                "active loggers:\n  default: warning\n".into()
            )
        );
        assert!(applied.lock().is_empty());
    }

    #[test]
    fn level_changes_every_logger_and_paths_the_named_ones() {
        let (logging, applied) = logging();
        assert_eq!(logging.handle("level=debug").0, StatusCode::OK);
        let (status, body) = logging.handle("paths=data_plane::xds:critical,hyper:warning");
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body,
            "active loggers:\n  default: debug\n  data_plane::xds: error\n  hyper: warning\n"
        );
        assert_eq!(logging.handle("hyper=trace").0, StatusCode::OK);
        assert_eq!(
            *applied.lock(),
            [
                "debug",
                "debug,data_plane::xds=error,hyper=warn",
                "debug,data_plane::xds=error,hyper=trace"
            ]
        );
    }

    #[test]
    fn an_unknown_level_or_name_is_a_400_with_envoys_usage() {
        let (logging, applied) = logging();
        let (status, body) = logging.handle("level=bogus");
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body.starts_with("error: unknown logger level\n\nusage: /logging?<name>="));
        assert_eq!(logging.handle("a%20b=info").0, StatusCode::BAD_REQUEST);
        assert!(applied.lock().is_empty(), "nothing applied");
    }
}
