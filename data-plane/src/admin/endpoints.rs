//! The admin paths the agent serves, as Envoy lists them in `/help` (and
//! after `invalid path.` on a 404): the path, `(POST)` for the mutating
//! ones, a line of help, and the parameters each takes.

use http::{Method, StatusCode};

/// One admin path.
pub struct Endpoint {
    pub path: &'static str,
    pub help: &'static str,
    /// It changes the server's state: POST only (405 otherwise).
    pub mutates: bool,
    /// Its query parameters: name and help.
    pub params: &'static [(&'static str, &'static str)],
}

const fn endpoint(path: &'static str, help: &'static str) -> Endpoint {
    Endpoint {
        path,
        help,
        mutates: false,
        params: &[],
    }
}

/// In Envoy's order (by path).
pub const ENDPOINTS: &[Endpoint] = &[
    endpoint("/certs", "print certs on machine"),
    endpoint("/clusters", "upstream cluster status"),
    endpoint("/config_dump", "dump current Envoy configs"),
    Endpoint {
        mutates: true,
        params: &[
            (
                "graceful",
                "When draining listeners, enter a graceful drain period prior to closing listeners. This behaviour and duration is configurable via server options or CLI",
            ),
            (
                "skip_exit",
                "When draining listeners, drain the connections but never stop the listeners. The graceful parameter has no effect when this is set, since the drain period only delays stopping the listeners",
            ),
            (
                "inboundonly",
                "Drains all inbound listeners. The agent has none: nothing drains.",
            ),
        ],
        ..endpoint("/drain_listeners", "drain listeners")
    },
    endpoint(
        "/healthz/ready",
        "pilot-agent's readiness: 200 once LIVE, otherwise 503",
    ),
    endpoint("/help", "print out list of admin commands"),
    Endpoint {
        params: &[("format", "File format to use; One of (text, json)")],
        ..endpoint("/listeners", "print listener info")
    },
    Endpoint {
        mutates: true,
        params: &[
            (
                "level",
                "change all levels; One of (trace, debug, info, warning, error, critical, off)",
            ),
            (
                "paths",
                "change multiple levels: name1:level1,name2:level2,...",
            ),
        ],
        ..endpoint("/logging", "query/change logging levels")
    },
    Endpoint {
        mutates: true,
        ..endpoint("/quitquitquit", "exit the server")
    },
    endpoint(
        "/ready",
        "print server state, return 200 if LIVE, otherwise return 503",
    ),
    endpoint("/server_info", "print server version/status information"),
    Endpoint {
        params: &[
            (
                "filter",
                "Regular expression (Google re2) for filtering stats",
            ),
            ("format", "Format to use; One of (text, json, prometheus)"),
        ],
        ..endpoint("/stats", "print server stats")
    },
    Endpoint {
        params: &[(
            "filter",
            "Regular expression (Google re2) for filtering stats",
        )],
        ..endpoint(
            "/stats/prometheus",
            "print server stats in prometheus format",
        )
    },
];

/// The endpoint at `path`, if the agent serves it.
pub fn find(path: &str) -> Option<&'static Endpoint> {
    ENDPOINTS.iter().find(|e| e.path == path)
}

/// Envoy's answer to `method` on `endpoint`, when it is refused: a
/// mutating endpoint takes POST only.
pub fn refuse(endpoint: &Endpoint, method: &Method) -> Option<(StatusCode, String)> {
    (endpoint.mutates && method != Method::POST).then(|| {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            format!("Method {method} not allowed, POST required."),
        )
    })
}

/// `/help`'s body, as Envoy writes it.
pub fn help() -> String {
    let mut out = String::from("admin commands are:\n");
    for endpoint in ENDPOINTS {
        let post = if endpoint.mutates { " (POST)" } else { "" };
        out.push_str(&format!("  {}{post}: {}\n", endpoint.path, endpoint.help));
        for (name, help) in endpoint.params {
            out.push_str(&format!("      {name}: {help}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_lists_each_path_with_post_on_the_mutating_ones() {
        let help = help();
        assert!(help.starts_with("admin commands are:\n"));
        assert!(help.contains("\n  /quitquitquit (POST): exit the server\n"));
        assert!(help.contains("\n  /logging (POST): query/change logging levels\n"));
        assert!(help.contains("\n  /stats: print server stats\n      filter: "));
        let paths: Vec<&str> = ENDPOINTS.iter().map(|e| e.path).collect();
        let mut sorted = paths.clone();
        sorted.sort_unstable();
        assert_eq!(paths, sorted, "Envoy lists the paths in order");
    }

    #[test]
    fn a_mutating_endpoint_refuses_get_as_envoy_does() {
        let logging = find("/logging").unwrap();
        assert_eq!(
            refuse(logging, &Method::GET),
            Some((
                StatusCode::METHOD_NOT_ALLOWED,
                "Method GET not allowed, POST required.".to_string()
            ))
        );
        assert_eq!(refuse(logging, &Method::POST), None);
        assert_eq!(refuse(find("/stats").unwrap(), &Method::GET), None);
        assert_eq!(refuse(find("/stats").unwrap(), &Method::POST), None);
    }
}
