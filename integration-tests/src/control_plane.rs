//! Our `control-plane` binary, through its command-line contract:
//!
//! - `control-plane serve --config DIR [--mesh FILE] --xds-addr ADDR --metrics-addr ADDR`
//! - `control-plane validate DIR [--mesh FILE]`
//! - `control-plane dump --config DIR [--mesh FILE] --node ID [--labels k=v,..] [--type KIND]`

use std::env;
use std::fmt;
use std::fs;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};
use tempfile::TempDir;

use crate::binaries;
use crate::curl::Curl;
use crate::ports;
use crate::process::{self, CommandOutput, Process};

/// How long `serve` gets to bind its xDS port.
const STARTUP: Duration = Duration::from_secs(20);
/// How long `validate` and `dump` may run.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// A directory of Istio config files for one test, removed on drop.
pub struct ConfigDir {
    dir: TempDir,
    staging: TempDir,
}

impl ConfigDir {
    pub fn new() -> Result<Self> {
        Ok(Self {
            dir: tempfile::tempdir().context("creating a config dir")?,
            staging: tempfile::tempdir().context("creating a staging dir")?,
        })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `contents` to `file` in the directory atomically (written
    /// elsewhere, then renamed in), so a watcher never sees half a file.
    pub fn write(&self, file: &str, contents: &str) -> Result<PathBuf> {
        let staged = self.staging.path().join(file);
        fs::write(&staged, contents).with_context(|| format!("writing {}", staged.display()))?;
        let target = self.dir.path().join(file);
        fs::rename(&staged, &target)
            .with_context(|| format!("moving {} into place", target.display()))?;
        Ok(target)
    }

    /// Deletes `file` from the directory.
    pub fn remove(&self, file: &str) -> Result<()> {
        let target = self.dir.path().join(file);
        fs::remove_file(&target).with_context(|| format!("removing {}", target.display()))
    }
}

/// A running `control-plane serve`; killed on drop.
pub struct ControlPlane {
    process: Process,
    xds_addr: SocketAddr,
    metrics_addr: SocketAddr,
    _dir: TempDir,
}

impl ControlPlane {
    /// Serves the config in `config_dir` (and the MeshConfig in `mesh`) on
    /// free loopback ports; returns once the xDS port accepts connections.
    pub fn start(config_dir: &Path, mesh: Option<&Path>) -> Result<Self> {
        Self::start_on(config_dir, mesh, IpAddr::V4(Ipv4Addr::LOCALHOST))
    }

    /// Like [`ControlPlane::start`], with xDS on a free port of `xds_ip`
    /// (e.g. a [`crate::netns::NetNs::host_ip`], for proxies in a namespace)
    /// and metrics on loopback.
    pub fn start_on(config_dir: &Path, mesh: Option<&Path>, xds_ip: IpAddr) -> Result<Self> {
        Self::start_at(
            config_dir,
            mesh,
            SocketAddr::new(xds_ip, ports::free_port()?),
        )
    }

    /// Like [`ControlPlane::start`], with xDS on a free port of every
    /// address, so that proxies in any number of namespaces reach it at the
    /// host end of their own veth, on [`ControlPlane::xds_addr`]'s port.
    pub fn start_for_namespaces(config_dir: &Path, mesh: Option<&Path>) -> Result<Self> {
        Self::start_on(config_dir, mesh, IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }

    /// Like [`ControlPlane::start`], with xDS on `xds_addr`: the address of
    /// one that was stopped, to restart it where its proxies reconnect.
    pub fn start_at(config_dir: &Path, mesh: Option<&Path>, xds_addr: SocketAddr) -> Result<Self> {
        let metrics_addr = ports::free_addr()?;
        let dir = tempfile::tempdir().context("creating the control plane's temp dir")?;
        let mut command = Command::new(binaries::control_plane()?);
        command.arg("serve").arg("--config").arg(config_dir);
        add_mesh(&mut command, mesh);
        command
            .arg("--xds-addr")
            .arg(xds_addr.to_string())
            .arg("--metrics-addr")
            .arg(metrics_addr.to_string());
        if env::var_os("RUST_LOG").is_none() {
            command.env("RUST_LOG", "info");
        }
        // Plain log lines, for tests to search and failures to show.
        command.env("NO_COLOR", "1");
        let mut process = Process::spawn("control-plane", command, dir.path())?;
        process.wait_for_port(xds_addr, STARTUP)?;
        Ok(Self {
            process,
            xds_addr,
            metrics_addr,
            _dir: dir,
        })
    }

    /// The ADS (gRPC) address.
    pub fn xds_addr(&self) -> SocketAddr {
        self.xds_addr
    }

    /// The Prometheus metrics address.
    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics_addr
    }

    /// The server's stdout and stderr so far.
    pub fn logs(&self) -> String {
        self.process.logs()
    }

    /// `GET /metrics`: the Prometheus text exposition.
    pub fn metrics(&self) -> Result<String> {
        let response = Curl::get(format!("http://{}/metrics", self.metrics_addr)).run()?;
        response.ensure_status(200).context("GET /metrics")?;
        Ok(response.body)
    }

    /// The sum of every series of metric `name` (e.g.
    /// `pilot_total_xds_rejects_total`, whatever its labels); `None` when it
    /// has no series (a labelled metric has none until first counted).
    pub fn metric(&self, name: &str) -> Result<Option<f64>> {
        let values: Vec<f64> = self
            .metrics()?
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                let series_name = series.split('{').next()?;
                (series_name == name).then(|| value.parse().ok())?
            })
            .collect();
        Ok((!values.is_empty()).then(|| values.iter().sum()))
    }
}

/// `control-plane validate DIR [--mesh FILE]`.
pub fn validate(config_dir: &Path, mesh: Option<&Path>) -> Result<CommandOutput> {
    let mut command = Command::new(binaries::control_plane()?);
    command.arg("validate").arg(config_dir);
    add_mesh(&mut command, mesh);
    process::run("control-plane-validate", command, COMMAND_TIMEOUT)
}

/// Which resources `dump` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DumpType {
    Clusters,
    Listeners,
    Routes,
    Endpoints,
    All,
}

impl fmt::Display for DumpType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DumpType::Clusters => "clusters",
            DumpType::Listeners => "listeners",
            DumpType::Routes => "routes",
            DumpType::Endpoints => "endpoints",
            DumpType::All => "all",
        })
    }
}

/// `control-plane dump --config DIR [--mesh FILE] --node ID [--labels ..]
/// --type KIND`: the resources the control plane would send node `node`
/// with workload labels `labels`.
pub fn dump(
    config_dir: &Path,
    mesh: Option<&Path>,
    node: &str,
    labels: &[(&str, &str)],
    kind: DumpType,
) -> Result<CommandOutput> {
    let mut command = Command::new(binaries::control_plane()?);
    command.arg("dump").arg("--config").arg(config_dir);
    add_mesh(&mut command, mesh);
    command.args(["--node", node]);
    if !labels.is_empty() {
        let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        command.arg("--labels").arg(labels.join(","));
    }
    command.arg("--type").arg(kind.to_string());
    process::run("control-plane-dump", command, COMMAND_TIMEOUT)
}

fn add_mesh(command: &mut Command, mesh: Option<&Path>) {
    if let Some(mesh) = mesh {
        command.arg("--mesh").arg(mesh);
    }
}
