//! One proxy kind's half of the traffic-policy table: its sidecar in a
//! namespace behind istio-init's capture, its named servers and DNS on the
//! host end of the veth, and a scenario's run there.

use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::AtomicUsize;

use anyhow::{Context, Result};

use super::probe::Probe;
use super::scenario::MESH;
use super::servers::{ServerSpec, Servers};
use super::{Facts, Scenario};
use crate::control_channel::ControlChannel;
use crate::dns::DnsServer;
use crate::netns::NetNs;
use crate::parity::config_files::ConfigFiles;
use crate::parity::{CONVERGE, Kind, Proxy};
use crate::process::eventually;
use crate::tls::TestCa;

/// The fact a probe that failed outright states instead of its own.
pub(super) const PROBE_ERROR: &str = "probe error";

/// Everything one kind's runs need. Fields drop in order, the namespace
/// last.
pub(super) struct Side {
    kind: Kind,
    sidecar: Proxy,
    servers: Servers,
    _dns: DnsServer,
    netns: NetNs,
}

impl Side {
    /// The sidecar of `kind` in a namespace of its own, reaching the
    /// control plane through `control` at the host end of its veth, with
    /// `servers` and a DNS server answering `dns_names` there.
    pub(super) fn start(
        kind: Kind,
        control: &ControlChannel,
        ca: &TestCa,
        servers: &[ServerSpec],
        dns_names: &[&str],
    ) -> Result<Self> {
        let netns = NetNs::new()?;
        let host = netns.host_ip();
        let servers = Servers::start(host, servers, ca)?;
        let dns = DnsServer::start_on(host, dns_names.iter().map(|name| (*name, host)))?;
        let control = control.clone().via(IpAddr::V4(host));
        netns.data_plane_init(
            control.addr().port(),
            &["--include-outbound-ip-ranges", "*"],
            CONVERGE,
        )?;
        let sidecar = Proxy::sidecar(kind, &netns, control, dns.addr(), ca.cert_path())?;
        Ok(Self {
            kind,
            sidecar,
            servers,
            _dns: dns,
            netns,
        })
    }

    /// Serves `scenario`'s files as rendered for this side, waits for the
    /// sidecar to hold them, and runs the probe. A sidecar that never
    /// shows the config is reported (on stderr, with its logs) and probed
    /// anyway; a probe that fails states only [`PROBE_ERROR`].
    pub(super) fn run(&mut self, scenario: &Scenario, config: &mut ConfigFiles) -> Result<Facts> {
        let files: Vec<(&str, String)> = scenario
            .files
            .iter()
            .map(|(name, template)| (name.as_str(), self.servers.render(template)))
            .collect();
        config.apply_files(MESH, &files)?;
        if let Err(error) = self.wait_ready(scenario) {
            eprintln!("NOT READY ({}): {error:#}", self.kind.name());
        }
        let probe = Probe {
            kind: self.kind,
            netns: &self.netns,
            sidecar: &self.sidecar,
            servers: &self.servers,
            server_marks: self.servers.marks(),
            log_mark: self.sidecar.access_log().len(),
            sent: AtomicUsize::new(0),
            config: Mutex::new(config),
        };
        let facts = (scenario.probe)(&probe);
        self.servers.heal();
        Ok(facts.unwrap_or_else(|error| {
            eprintln!(
                "PROBE ERROR ({}, {}): {error:#}",
                self.kind.name(),
                scenario.name
            );
            Facts::new().with(PROBE_ERROR, format!("{error:#}"))
        }))
    }

    fn wait_ready(&self, scenario: &Scenario) -> Result<()> {
        let host = self.netns.host_ip();
        eventually(CONVERGE, || {
            let resources = self.sidecar.config()?;
            for ready in &scenario.ready {
                ready
                    .rendered(|text| self.servers.render(text))
                    .check(&resources, host)?;
            }
            Ok(())
        })
        .with_context(|| {
            format!(
                "the {} sidecar never took the config of {:?}\n{}",
                self.kind.name(),
                scenario.name,
                self.sidecar.logs()
            )
        })
    }
}
