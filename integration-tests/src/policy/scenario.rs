//! A row group of the traffic-policy table: config templates, what a
//! sidecar holds once it has them, the probe that sends requests and
//! states what came of them, and the facts expected.

use std::net::Ipv4Addr;

use anyhow::{Context, Result, ensure};

use super::{Facts, Probe};
use crate::config_dump::DynamicResources;

/// The mesh config every scenario runs under:
/// `examples/mesh-config/registry-only.yaml`.
pub(super) const MESH: &str = "registry-only";

/// What a scenario's probe does: sends requests, states what came of them.
type ProbeFn = Box<dyn Fn(&Probe<'_>) -> Result<Facts>>;

/// One scenario: config templates, readiness, the probe and its expected
/// facts.
pub struct Scenario {
    pub name: &'static str,
    /// The config directory's files (name, YAML template, see
    /// [`super::servers`]); any other file is removed.
    pub files: Vec<(String, String)>,
    /// What the sidecar holds once it has this config (rendered as the
    /// files are).
    pub ready: Vec<Ready>,
    pub(super) probe: ProbeFn,
    pub expected: Facts,
}

impl Scenario {
    /// `probe` run under `files` must state `expected`.
    pub fn new(
        name: &'static str,
        files: Vec<(String, String)>,
        probe: impl Fn(&Probe<'_>) -> Result<Facts> + 'static,
        expected: Facts,
    ) -> Self {
        Self {
            name,
            files,
            ready: Vec::new(),
            probe: Box::new(probe),
            expected,
        }
    }

    pub fn ready(self, ready: Vec<Ready>) -> Self {
        Self { ready, ..self }
    }
}

/// Something a sidecar's config dump shows once it has a scenario's
/// config as rendered for its side.
#[derive(Debug, Clone)]
pub enum Ready {
    /// A route configuration, listener or cluster whose JSON holds the
    /// text.
    Has(String, String),
    /// A route configuration, listener or cluster whose JSON lacks the
    /// text.
    Lacks(String, String),
    /// An EDS cluster with this many endpoints, all on this side's host.
    Endpoints(String, usize),
}

impl Ready {
    pub fn has(name: impl Into<String>, text: impl Into<String>) -> Self {
        Ready::Has(name.into(), text.into())
    }

    pub fn lacks(name: impl Into<String>, text: impl Into<String>) -> Self {
        Ready::Lacks(name.into(), text.into())
    }

    pub fn endpoints(cluster: impl Into<String>, count: usize) -> Self {
        Ready::Endpoints(cluster.into(), count)
    }

    /// This with its names and texts rendered for a side by `render`
    /// (`${PORT_<server>}` and `${HOST}` are allowed in them).
    pub(super) fn rendered(&self, render: impl Fn(&str) -> String) -> Self {
        match self {
            Ready::Has(name, text) => Ready::Has(render(name), render(text)),
            Ready::Lacks(name, text) => Ready::Lacks(render(name), render(text)),
            Ready::Endpoints(cluster, count) => Ready::Endpoints(render(cluster), *count),
        }
    }

    /// Whether `resources` show this on the side whose host is `host`.
    pub(super) fn check(&self, resources: &DynamicResources, host: Ipv4Addr) -> Result<()> {
        match self {
            Ready::Has(name, text) | Ready::Lacks(name, text) => {
                let json = resources
                    .resource(name)
                    .with_context(|| format!("no resource named {name}"))?
                    .to_string();
                let wanted = matches!(self, Ready::Has(..));
                ensure!(
                    json.contains(text.as_str()) == wanted,
                    "{name} {} {text}: {json}",
                    if wanted { "lacks" } else { "still has" }
                );
            }
            Ready::Endpoints(cluster, count) => {
                let endpoints = resources
                    .endpoints
                    .get(cluster)
                    .map_or(&[][..], Vec::as_slice);
                let prefix = format!("{host}:");
                ensure!(
                    endpoints.len() == *count
                        && endpoints
                            .iter()
                            .all(|endpoint| endpoint.starts_with(&prefix)),
                    "{cluster} has endpoints {endpoints:?}, not {count} on {host}"
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);

    #[test]
    fn endpoints_must_all_be_this_sides() {
        let mut resources = DynamicResources::default();
        resources.endpoints.insert(
            "c".into(),
            vec!["198.18.0.1:8001".into(), "198.18.0.1:8002".into()],
        );
        resources
            .endpoints
            .insert("other".into(), vec!["198.18.0.5:8001".into()]);
        assert!(Ready::endpoints("c", 2).check(&resources, HOST).is_ok());
        assert!(Ready::endpoints("c", 3).check(&resources, HOST).is_err());
        assert!(
            Ready::endpoints("other", 1)
                .check(&resources, HOST)
                .is_err()
        );
        assert!(Ready::endpoints("none", 1).check(&resources, HOST).is_err());
    }
}
