//! Our `data-plane` agent, through its command-line contract:
//!
//! `data-plane proxy sidecar|router --xds-addr ADDR (--ca-root FILE --token FILE
//! [--xds-server-name NAME] | --plaintext) --node-id ID --namespace NS
//! --service-account SA [--labels k=v,..] --admin-addr ADDR --dns-server ADDR
//! [--dns-capture] [--max-unregistered-destinations N]`
//!
//! Over TLS, the mesh root and a token for the proxy's namespace and
//! service account are written to the agent's own directory first.
//!
//! Its admin interface (`/ready`, `/config_dump`, `/clusters`,
//! `/stats/prometheus`), its Prometheus port (`--metrics-addr`), its
//! status port (`--status-addr`) and its health port (`--health-addr`)
//! listen on free loopback ports; its access
//! log (Istio's text format) is its stdout.
//!
//! A sidecar binds the control plane's `virtualOutbound` listener on
//! `127.0.0.1:15001` (its `--outbound-addr` default), so only one such
//! sidecar agent on the host runs at a time in a test process: starting one
//! waits for the one before it to be dropped. Tests that start them on the
//! host belong in one test binary, since `cargo test` runs binaries one
//! after another. A sidecar given a port of its own
//! ([`ProxyOptions::outbound_addr`]), or in a [`NetNs`] of its own
//! ([`DataPlane::start_in`]), waits for nobody.

use std::env;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::Value;
use shared::node::{NodeId, NodeType};
use tempfile::TempDir;

use crate::admin::Admin;
use crate::binaries;
use crate::config_dump::DynamicResources;
use crate::curl::CurlResponse;
use crate::netns::NetNs;
use crate::ports;
use crate::process::{self, Process};
use crate::prometheus;
use crate::proxy_options::ProxyOptions;

/// The sidecar's outbound listener port (`virtualOutbound`), where apps
/// send their traffic, captured or as to an explicit proxy.
pub const VIRTUAL_OUTBOUND: u16 = 15001;
/// How long the agent gets to connect, receive its config and bind.
const STARTUP: Duration = Duration::from_secs(30);

/// Held by the running sidecar agent, so the next one waits for 15001.
static OUTBOUND_PORT: Mutex<()> = Mutex::new(());

/// A running agent; killed on drop (a sidecar then frees 15001 for the
/// next one).
pub struct DataPlane {
    process: Process,
    node: NodeId,
    admin: Admin,
    ports: HttpPorts,
    /// The binary the process runs, as its `/proc/PID/exe` shows it.
    executable: PathBuf,
    _dir: TempDir,
    /// Where an app sends its traffic.
    outbound: SocketAddr,
    /// A sidecar's claim on 15001, released once the process is gone.
    _outbound_port: Option<MutexGuard<'static, ()>>,
}

impl DataPlane {
    /// Starts the agent and waits until its `/ready` says `LIVE` (config
    /// received, listeners bound); a sidecar on 15001 first waits for any
    /// other such sidecar agent of this test process to be dropped.
    pub fn start(options: &ProxyOptions) -> Result<Self> {
        let mut agent = Self::spawn(options)?;
        agent.wait_ready(STARTUP)?;
        Ok(agent)
    }

    /// Starts the agent as [`DataPlane::start`] does, without waiting for
    /// it to be ready: for a test that expects it never to be.
    pub fn spawn(options: &ProxyOptions) -> Result<Self> {
        let outbound_port = match (options.node.node_type, options.outbound_addr) {
            (NodeType::Sidecar, None) => Some(claim_outbound_port()?),
            _ => None,
        };
        let dir = tempfile::tempdir().context("creating the agent's temp dir")?;
        let executable = binaries::data_plane()?;
        let command = Command::new(&executable);
        Self::launch(
            (command, executable),
            options,
            HttpPorts::free_on(Ipv4Addr::LOCALHOST)?,
            dir,
            outbound_port,
        )
    }

    /// Starts the agent inside `netns` as uid [`crate::netns::PROXY_UID`],
    /// as Istio runs a sidecar (capture rules such as `data-plane init`'s
    /// leave its own connections alone), with its admin interface on the
    /// namespace's address; waits until it is ready, as [`DataPlane::start`].
    pub fn start_in(netns: &NetNs, options: &ProxyOptions) -> Result<Self> {
        let dir = tempfile::tempdir().context("creating the agent's temp dir")?;
        let binary = binaries::data_plane()?;
        let command = netns.proxy_command(&binary, dir.path())?;
        // The link (or copy) the proxy command runs, in its directory.
        let executable = dir
            .path()
            .join(binary.file_name().context("the agent binary has no name")?);
        let ports = HttpPorts::free_on(netns.ns_ip())?;
        let mut agent = Self::launch((command, executable), options, ports, dir, None)?;
        agent.wait_ready(STARTUP)?;
        Ok(agent)
    }

    /// Spawns the agent; it is not ready yet.
    fn launch(
        (mut command, executable): (Command, PathBuf),
        options: &ProxyOptions,
        mut ports: HttpPorts,
        dir: TempDir,
        outbound_port: Option<MutexGuard<'static, ()>>,
    ) -> Result<Self> {
        if let Some(admin) = options.admin_addr {
            ports.admin = admin;
        }
        let outbound = options
            .outbound_addr
            .unwrap_or(SocketAddr::from((Ipv4Addr::LOCALHOST, VIRTUAL_OUTBOUND)));
        let connection = options.connection(dir.path())?;
        command
            .args(["proxy", options.role()])
            .args(connection.agent_args())
            .arg("--node-id")
            .arg(options.node.to_string())
            .args(["--namespace", options.namespace()])
            .args(["--service-account", &options.service_account])
            .arg("--labels")
            .arg(options.labels_arg())
            .arg("--admin-addr")
            .arg(ports.admin.to_string())
            .arg("--metrics-addr")
            .arg(ports.metrics.to_string())
            .arg("--status-addr")
            .arg(ports.status.to_string())
            .arg("--health-addr")
            .arg(ports.health.to_string())
            .arg("--dns-server")
            .arg(options.dns_addr.to_string());
        if options.dns_capture {
            command.arg("--dns-capture");
        }
        if let Some(addr) = options.outbound_addr {
            command.arg("--outbound-addr").arg(addr.to_string());
        }
        if let Some(cap) = options.max_unregistered_destinations {
            command
                .arg("--max-unregistered-destinations")
                .arg(cap.to_string());
        }
        command.args(&options.agent_args);
        if env::var_os("RUST_LOG").is_none() {
            command.env("RUST_LOG", "info");
        }
        // Plain log lines, for tests to search and failures to show.
        command.env("NO_COLOR", "1");
        options.set_system_roots(&mut command);
        let process = Process::spawn("data-plane", command, dir.path())?;
        Ok(Self {
            process,
            node: options.node.clone(),
            admin: Admin::new("data-plane", ports.admin),
            ports,
            executable,
            outbound,
            _dir: dir,
            _outbound_port: outbound_port,
        })
    }

    /// Where an app sends its traffic, for `curl -x`: `127.0.0.1:15001`,
    /// or the options' [`ProxyOptions::outbound_addr`].
    pub fn proxy_addr(&self) -> SocketAddr {
        self.outbound
    }

    /// Its process id (for its memory in `/proc/PID/status`).
    pub fn pid(&self) -> u32 {
        self.process.id()
    }

    /// Its identity, as the control plane knows it (e.g. for CSDS).
    pub fn node(&self) -> &NodeId {
        &self.node
    }

    /// The binary this agent runs (for `data-plane analyze --proxy-exe`).
    pub fn executable(&self) -> &Path {
        &self.executable
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin.addr()
    }

    /// Envoy's Prometheus port (Istio's 15090).
    pub fn metrics_addr(&self) -> SocketAddr {
        self.ports.metrics
    }

    /// pilot-agent's status port (Istio's 15020).
    pub fn status_addr(&self) -> SocketAddr {
        self.ports.status
    }

    /// Istio's health port (15021).
    pub fn health_addr(&self) -> SocketAddr {
        self.ports.health
    }

    /// The agent's stdout (the access log) and stderr so far.
    pub fn logs(&self) -> String {
        self.process.logs()
    }

    /// Waits until `/ready` answers 200 `LIVE`; fails early, with the
    /// logs, if the agent exits first.
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let admin = self.admin;
        self.process
            .wait_until("ready", timeout, || admin.ensure_live())
    }

    /// Sends the agent SIGTERM, as the kubelet stops a pod: it drains.
    pub fn terminate(&self) -> Result<()> {
        process::signal(self.process.id(), "TERM")
    }

    /// Waits up to `timeout` for the agent to exit (after
    /// `/quitquitquit`, say); kills it and fails if it does not.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<std::process::ExitStatus> {
        self.process.wait_with_timeout(timeout)
    }

    /// GET `path` (e.g. `/clusters`) on the admin interface.
    pub fn admin_get(&self, path: &str) -> Result<CurlResponse> {
        self.admin.get(path)
    }

    /// `/config_dump`.
    pub fn config_dump(&self) -> Result<Value> {
        self.admin.ok("/config_dump")?.json()
    }

    /// What `/config_dump` says the agent holds from xDS.
    pub fn dynamic_resources(&self) -> Result<DynamicResources> {
        DynamicResources::parse(&self.config_dump()?)
    }

    /// `/clusters`: `cluster::address::stat::value`, one a line.
    pub fn clusters(&self) -> Result<String> {
        Ok(self.admin.ok("/clusters")?.body)
    }

    /// `/stats/prometheus`: the Prometheus text exposition.
    pub fn prometheus(&self) -> Result<String> {
        Ok(self.admin.ok("/stats/prometheus")?.body)
    }

    /// The sum of the series of metric `name` that carry every label in
    /// `labels` (e.g. `xds_updates_total` with `type="clusters"`); `None`
    /// when there is no such series.
    pub fn metric(&self, name: &str, labels: &[(&str, &str)]) -> Result<Option<f64>> {
        Ok(prometheus::sum(&self.prometheus()?, name, labels))
    }

    /// Every access log line written so far, oldest first.
    pub fn access_log(&self) -> Vec<String> {
        self.process.stdout().lines().map(str::to_string).collect()
    }

    /// Waits for an access log line that satisfies `matches` (the agent
    /// writes it as the response ends, so it can trail the client).
    pub fn wait_for_access_log(
        &self,
        timeout: Duration,
        matches: impl Fn(&str) -> bool,
    ) -> Result<String> {
        process::eventually(timeout, || {
            self.access_log()
                .into_iter()
                .find(|line| matches(line))
                .with_context(|| format!("no such access log line in\n{}", self.process.stdout()))
        })
    }
}

/// The agent's HTTP ports: admin, Prometheus, status and health.
#[derive(Debug, Clone, Copy)]
struct HttpPorts {
    admin: SocketAddr,
    metrics: SocketAddr,
    status: SocketAddr,
    health: SocketAddr,
}

impl HttpPorts {
    /// Four free ports on `ip`.
    fn free_on(ip: Ipv4Addr) -> Result<Self> {
        let on = |port| SocketAddr::from((ip, port));
        Ok(Self {
            admin: on(ports::free_port()?),
            metrics: on(ports::free_port()?),
            status: on(ports::free_port()?),
            health: on(ports::free_port()?),
        })
    }
}

/// Waits for the running sidecar agent, if any, to be dropped, and checks
/// that nothing else (an agent left over from an earlier run) holds 15001.
fn claim_outbound_port() -> Result<MutexGuard<'static, ()>> {
    let claim = OUTBOUND_PORT.lock().unwrap_or_else(PoisonError::into_inner);
    TcpListener::bind((Ipv4Addr::UNSPECIFIED, VIRTUAL_OUTBOUND)).with_context(|| {
        format!("port {VIRTUAL_OUTBOUND} is taken: is a data-plane sidecar still running?")
    })?;
    Ok(claim)
}
