//! The proxy under test, of either kind: our agent or Envoy, started from
//! the same [`ProxyOptions`] and read the same way.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

use anyhow::{Result, ensure};

use super::{CONVERGE, LOG_WAIT};
use crate::config_dump::DynamicResources;
use crate::control_channel::ControlChannel;
use crate::curl::CurlResponse;
use crate::data_plane::DataPlane;
use crate::envoy::Envoy;
use crate::netns::NetNs;
use crate::process::eventually;
use crate::proxy_options::ProxyOptions;

/// Which proxy runs a side's sidecar and gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Agent,
    Envoy,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Agent => "agent",
            Kind::Envoy => "envoy",
        }
    }
}

/// A running sidecar or gateway of either kind.
pub enum Proxy {
    Agent(DataPlane),
    Envoy(Envoy),
}

impl Proxy {
    /// The `sleep` app's sidecar, inside `netns` as uid 1337, claiming the
    /// namespace's address, with `roots` as its system roots.
    pub fn sidecar(
        kind: Kind,
        netns: &NetNs,
        control: ControlChannel,
        dns: SocketAddr,
        roots: &Path,
    ) -> Result<Self> {
        let options = ProxyOptions::sleep(control, dns)
            .ip(IpAddr::V4(netns.ns_ip()))
            .system_roots(roots);
        Self::start_in(kind, netns, &options)
    }

    /// A proxy of `kind` as `options` inside `netns`, as uid
    /// [`crate::netns::PROXY_UID`], once live.
    pub fn start_in(kind: Kind, netns: &NetNs, options: &ProxyOptions) -> Result<Self> {
        Ok(match kind {
            Kind::Agent => Proxy::Agent(DataPlane::start_in(netns, options)?),
            Kind::Envoy => Proxy::Envoy(live(Envoy::start_in(netns, options)?)?),
        })
    }

    /// Istio's egress gateway (labelled istio=egressgateway) on the host,
    /// claiming `ip`, with `roots` as its system roots.
    pub fn gateway(
        kind: Kind,
        ip: Ipv4Addr,
        control: ControlChannel,
        dns: SocketAddr,
        roots: &Path,
    ) -> Result<Self> {
        let options = ProxyOptions::egress_gateway(control, dns)
            .ip(IpAddr::V4(ip))
            .system_roots(roots);
        Ok(match kind {
            Kind::Agent => Proxy::Agent(DataPlane::start(&options)?),
            Kind::Envoy => Proxy::Envoy(live(Envoy::start(&options)?)?),
        })
    }

    /// What its config dump (with EDS) says it holds.
    pub fn config(&self) -> Result<DynamicResources> {
        match self {
            Proxy::Agent(agent) => agent.dynamic_resources(),
            Proxy::Envoy(envoy) => envoy.dynamic_resources(),
        }
    }

    /// GET `path` (e.g. `/clusters`) on its admin interface.
    pub fn admin_get(&self, path: &str) -> Result<CurlResponse> {
        match self {
            Proxy::Agent(agent) => agent.admin_get(path),
            Proxy::Envoy(envoy) => envoy.admin_get(path),
        }
    }

    /// Starts the drain of a stopping pod: SIGTERM to our agent; to Envoy,
    /// what pilot-agent does on SIGTERM (a graceful drain of its
    /// listeners).
    pub fn begin_drain(&self) -> Result<()> {
        match self {
            Proxy::Agent(agent) => agent.terminate(),
            Proxy::Envoy(envoy) => envoy.drain_listeners(),
        }
    }

    pub fn access_log(&self) -> Vec<String> {
        match self {
            Proxy::Agent(agent) => agent.access_log(),
            Proxy::Envoy(envoy) => envoy.access_log(),
        }
    }

    pub fn logs(&self) -> String {
        match self {
            Proxy::Agent(agent) => agent.logs(),
            Proxy::Envoy(envoy) => envoy.logs(),
        }
    }

    /// The access log lines after the first `seen`, once there is one
    /// (none if nothing comes within [`LOG_WAIT`]).
    pub fn access_log_after(&self, seen: usize) -> Vec<String> {
        eventually(LOG_WAIT, || {
            let lines = self.access_log();
            ensure!(lines.len() > seen, "no new access log line");
            Ok(lines[seen..].to_vec())
        })
        .unwrap_or_default()
    }
}

/// `envoy` once it is live (the agent's launcher waits for that itself).
fn live(mut envoy: Envoy) -> Result<Envoy> {
    envoy.wait_ready(CONVERGE)?;
    Ok(envoy)
}
