//! The traffic-policy parity table: DestinationRule and VirtualService
//! policy (connection pools, outlier detection, load balancing, TLS
//! checks, faults, mirroring, CORS, headers, matches, retries, idle
//! timeouts, upgrades, draining) through our agent and through real Envoy
//! 1.40, fed the same xDS by one control plane.
//!
//! Each side is one proxy kind's sidecar, set up as the egress table's
//! ([`crate::parity`]): in a network namespace behind istio-init's capture,
//! the app being real curl inside it. On the host end of the veth listen
//! the side's named upstream servers ([`ServerSpec`]: several endpoints of
//! one service, each answering with its name in `x-upstream`, each able to
//! fail on demand) and a DNS server.
//!
//! A [`Scenario`]'s config files are templates: `${HOST}` is the side's
//! host address and `${PORT_<server>}` each server's port, so the same
//! YAML names each side's own servers as STATIC endpoints. Before each
//! side's run the control plane's directory is made to hold the files as
//! rendered for that side, and the sidecar is polled until it holds them.
//! The scenario's probe then sends its requests ([`Probe`]) and states what
//! a user sees as named [`Facts`]; the [`Report`] sets the agent's facts
//! beside Envoy's and the expected ones.

mod across;
mod facts;
mod probe;
mod report;
mod scenario;
mod servers;
mod side;
mod upgrade;

use anyhow::Result;

use crate::control_plane::ControlPlane;
use crate::parity::Kind;
use crate::parity::config_files::ConfigFiles;
use crate::tls::TestCa;
use side::Side;

pub use facts::{Facts, at_least, sorted_tally, tally};
pub use probe::{Call, Probe, Reply};
pub use report::Report;
pub use scenario::{Ready, Scenario};
pub use servers::ServerSpec;
pub use upgrade::Upgrade;

/// Runs every scenario, in order, with the agent and then with Envoy; each
/// side has the servers `servers` and a DNS server answering `dns_names`
/// (any other name does not exist) with its host address.
pub fn run<'a>(
    scenarios: &'a [Scenario],
    servers: &[ServerSpec],
    dns_names: &[&str],
    ca: &TestCa,
) -> Result<Report<'a>> {
    let mut config = ConfigFiles::new()?;
    config.apply_files(scenario::MESH, &[])?;
    let control_plane =
        ControlPlane::start_for_namespaces(config.config_dir(), Some(&config.mesh_file()))?;
    let control = control_plane.channel();
    let mut agent = Side::start(Kind::Agent, &control, ca, servers, dns_names)?;
    let mut envoy = Side::start(Kind::Envoy, &control, ca, servers, dns_names)?;
    let mut report = Report::default();
    for scenario in scenarios {
        let agent_facts = agent.run(scenario, &mut config)?;
        let envoy_facts = envoy.run(scenario, &mut config)?;
        report.push(scenario, agent_facts, envoy_facts);
    }
    Ok(report)
}
