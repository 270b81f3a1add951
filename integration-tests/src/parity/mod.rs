//! Parity between our agent and real Envoy 1.40: each [`Scenario`] of a
//! table runs twice on one control plane with the same YAML, once with our
//! agent as the app's sidecar (and egress gateway), then with Envoy; the
//! [`Report`] shows both [`Outcome`]s against what Istio gives.
//!
//! Each sidecar runs as in a pod: in a network namespace of its own, as
//! uid 1337, behind the capture rules `data-plane init` installs there
//! (istio-init's iptables REDIRECT to 15001, the same rules for both). The
//! app is real curl, run as root inside the namespace, so its connections
//! are captured; it reaches the names with `--resolve`, never the system
//! resolver. The "external" servers (HTTP on port 80, HTTPS on 443 with a
//! test CA) and the DNS server listen on the host end of the namespace's
//! veth, and every name resolves to it, so the names share ports 80 and 443
//! and are told apart by Host and SNI. The HTTPS server asks the mutual TLS
//! tasks' `my-nginx` clients for a certificate of the test CA; the proxies
//! trust that CA as their system roots, as a real server's CA would be.
//!
//! The egress gateway runs as in a pod of its own ([`Gateway`]): a
//! namespace linked to the sidecar's, its node id claiming its address on
//! that link, so the control plane makes it the endpoint the sidecar
//! reaches the gateway's Service at (Istio's `istio-egressgateway`, or the
//! `<name>-istio` of a Gateway API Gateway); it reaches the control plane,
//! DNS and the external servers through the host, which then see its
//! address, not the sidecar's namespace's. The control plane trusts each
//! as a gateway: Istio's by its default `--gateway-service-account`, a
//! Gateway API Gateway's by the service account Istio deploys it with.
//!
//! Each scenario's config is written to the control plane's hot-reloaded
//! config directory and mesh file; each proxy is polled (`/config_dump`)
//! until it holds that config before curl runs.

pub(crate) mod access_log;
pub(crate) mod config_files;
mod gateway;
mod outcome;
mod proxy;
mod scenario;
mod side;
mod table;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use anyhow::Result;

use crate::control_plane::ControlPlane;
use crate::tls::TestCa;
use config_files::ConfigFiles;
use side::Side;

pub use gateway::Gateway;
pub use outcome::{GATEWAY, Outcome, SIDECAR};
pub use proxy::{Kind, Proxy};
pub use scenario::{Ready, Request, Scenario};
pub use table::Report;

/// How long a proxy gets to start, or to take in a config change.
pub const CONVERGE: Duration = Duration::from_secs(20);
/// How long a proxy gets to write the access log line of a request.
const LOG_WAIT: Duration = Duration::from_secs(5);

/// Runs every scenario, in order, with the agent and then with Envoy.
pub fn run<'a>(scenarios: &'a [Scenario], ca: &TestCa) -> Result<Report<'a>> {
    let mut config = ConfigFiles::new()?;
    if let Some(first) = scenarios.first() {
        config.apply(first)?;
    }
    let mesh = config.mesh_file();
    let control_plane = ControlPlane::options(config.config_dir())
        .mesh(Some(&mesh))
        .xds_ip(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
        .start()?;
    let control = control_plane.channel();
    let mut agent = Side::start(Kind::Agent, &control, ca)?;
    let mut envoy = Side::start(Kind::Envoy, &control, ca)?;
    let mut report = Report::default();
    for (index, scenario) in scenarios.iter().enumerate() {
        // The first scenario's files are in place since the start.
        if index > 0 {
            config.apply(scenario)?;
        }
        let agent_outcome = agent.run(scenario, ca.cert_path())?;
        let envoy_outcome = envoy.run(scenario, ca.cert_path())?;
        report.push(scenario, agent_outcome, envoy_outcome);
    }
    Ok(report)
}
