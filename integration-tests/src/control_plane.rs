//! Our `control-plane` binary, through its command-line contract:
//!
//! - `control-plane serve --config DIR [--mesh FILE] --ca-dir DIR --secure-xds-addr ADDR
//!   [--plaintext-xds-addr ADDR] --metrics-addr ADDR [--workload-cert-ttl T] [--xds-san NAME|IP]..
//!   [--state-dir DIR]`
//! - `control-plane token create --ca-dir DIR --namespace NS --service-account SA [--ttl T]`
//!   ([`crate::mesh_ca::MeshCa`])
//! - `control-plane validate DIR [--mesh FILE]`
//! - `control-plane dump --config DIR [--mesh FILE] --node ID [--labels k=v,..] [--type KIND]`

use std::env;
use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use tempfile::TempDir;

use crate::binaries;
use crate::control_channel::ControlChannel;
use crate::curl::Curl;
use crate::grpcurl::Grpcurl;
use crate::mesh_ca::{MeshCa, XDS_SERVER_NAME};
use crate::netns::NetNs;
use crate::ports;
use crate::process::{self, CommandOutput, Process};
use crate::prometheus;

/// How long `serve` gets to bind its xDS port and write its root.
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
    plaintext_addr: Option<SocketAddr>,
    metrics_addr: SocketAddr,
    ca: Arc<MeshCa>,
    _dir: TempDir,
}

impl ControlPlane {
    /// Serves the config in `config_dir` (and the MeshConfig in `mesh`)
    /// over TLS on a free loopback port, with a CA of its own; returns once
    /// the port accepts connections and the root is written.
    pub fn start(config_dir: &Path, mesh: Option<&Path>) -> Result<Self> {
        Self::options(config_dir).mesh(mesh).start()
    }

    /// Like [`ControlPlane::start`], with xDS on a free port of `xds_ip`
    /// (e.g. a [`crate::netns::NetNs::host_ip`], for proxies in a namespace)
    /// and metrics on loopback.
    pub fn start_on(config_dir: &Path, mesh: Option<&Path>, xds_ip: IpAddr) -> Result<Self> {
        Self::options(config_dir).mesh(mesh).xds_ip(xds_ip).start()
    }

    /// Like [`ControlPlane::start`], with xDS on a free port of every
    /// address, so that proxies in any number of namespaces reach it at the
    /// host end of their own veth ([`ControlChannel::via`]).
    pub fn start_for_namespaces(config_dir: &Path, mesh: Option<&Path>) -> Result<Self> {
        Self::options(config_dir)
            .mesh(mesh)
            .xds_ip(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
            .start()
    }

    /// Every other way to start one.
    pub fn options(config_dir: &Path) -> ControlPlaneOptions<'_> {
        ControlPlaneOptions {
            config_dir,
            mesh: None,
            xds_addr: None,
            plaintext: false,
            ca: None,
            args: Vec::new(),
            netns: None,
        }
    }

    /// The secure (TLS) xDS address: ADS, CSDS, the CA.
    /// Its process id (for its descriptors and CPU time in `/proc/PID`).
    pub fn pid(&self) -> u32 {
        self.process.id()
    }

    pub fn xds_addr(&self) -> SocketAddr {
        self.xds_addr
    }

    /// How proxies reach it: TLS to [`ControlPlane::xds_addr`].
    pub fn channel(&self) -> ControlChannel {
        ControlChannel::tls(self.xds_addr, self.ca.clone())
    }

    /// The plaintext xDS address, when started with it.
    pub fn plaintext_addr(&self) -> Option<SocketAddr> {
        self.plaintext_addr
    }

    /// Its CA directory (kept for a restart: [`ControlPlaneOptions::ca`]).
    pub fn ca(&self) -> &Arc<MeshCa> {
        &self.ca
    }

    /// grpcurl on the secure port, trusting the root, with an operator's
    /// token (as `istioctl` would inspect it).
    pub fn grpcurl(&self) -> Result<Grpcurl> {
        let grpcurl = Grpcurl::tls(self.xds_addr, &self.ca.root_cert(), XDS_SERVER_NAME);
        Ok(grpcurl.bearer(&self.ca.operator_token()?))
    }

    /// grpcurl on the secure port whose calls carry `token` (or none);
    /// reflection, to learn the schemas, carries an operator's.
    pub fn grpcurl_calling_with(&self, token: Option<&str>) -> Result<Grpcurl> {
        Ok(self.grpcurl()?.call_token(token))
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
    /// `pilot_total_xds_rejects`, whatever its labels); `None` when it
    /// has no series (a labelled metric has none until first counted).
    pub fn metric(&self, name: &str) -> Result<Option<f64>> {
        self.metric_with(name, &[])
    }

    /// The sum of the series of metric `name` that carry every label in
    /// `labels` (e.g. `pilot_xds_auth_failures_total` with
    /// `reason="expired_token"`).
    pub fn metric_with(&self, name: &str, labels: &[(&str, &str)]) -> Result<Option<f64>> {
        Ok(prometheus::sum(&self.metrics()?, name, labels))
    }
}

/// How to start a [`ControlPlane`]: by default TLS on a free loopback
/// port, metrics on loopback, a CA of its own, no plaintext port.
pub struct ControlPlaneOptions<'a> {
    config_dir: &'a Path,
    mesh: Option<&'a Path>,
    xds_addr: Option<XdsAddr>,
    plaintext: bool,
    ca: Option<Arc<MeshCa>>,
    args: Vec<OsString>,
    netns: Option<&'a NetNs>,
}

/// Where the TLS port listens.
enum XdsAddr {
    FreePortOn(IpAddr),
    At(SocketAddr),
}

impl<'a> ControlPlaneOptions<'a> {
    /// The MeshConfig file.
    pub fn mesh(self, mesh: Option<&'a Path>) -> Self {
        Self { mesh, ..self }
    }

    /// TLS xDS on a free port of `ip`.
    pub fn xds_ip(self, ip: IpAddr) -> Self {
        Self {
            xds_addr: Some(XdsAddr::FreePortOn(ip)),
            ..self
        }
    }

    /// TLS xDS on `addr` (e.g. the address of one that was stopped, where
    /// its proxies reconnect).
    pub fn xds_addr(self, addr: SocketAddr) -> Self {
        Self {
            xds_addr: Some(XdsAddr::At(addr)),
            ..self
        }
    }

    /// Also plaintext xDS, on a free port of the TLS port's address.
    pub fn plaintext(self) -> Self {
        Self {
            plaintext: true,
            ..self
        }
    }

    /// Serves from an existing CA directory (the root proxies already
    /// trust, the key their tokens are signed with).
    pub fn ca(self, ca: Arc<MeshCa>) -> Self {
        Self {
            ca: Some(ca),
            ..self
        }
    }

    /// `--workload-cert-ttl`.
    pub fn workload_cert_ttl(self, ttl: Duration) -> Self {
        self.arg("--workload-cert-ttl")
            .arg(format!("{}s", ttl.as_secs().max(1)))
    }

    /// `--gateway-service-account`: a `NAMESPACE/NAME` whose router proxies
    /// are gateway endpoints. Given at all, it replaces the default (Istio's
    /// egress gateway's), so a test that adds one names that one too.
    pub fn gateway_service_account(self, account: &str) -> Self {
        self.arg("--gateway-service-account").arg(account)
    }

    /// `--xds-san`: another name or IP for its serving certificate.
    pub fn xds_san(self, san: &str) -> Self {
        self.arg("--xds-san").arg(san)
    }

    /// `--state-dir`: where it keeps the egress inventory
    /// (`egress-inventory.json`), which `control-plane egress` reads.
    pub fn state_dir(self, dir: &Path) -> Self {
        self.arg("--state-dir").arg(dir)
    }

    /// Any other `serve` flag.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Runs it inside `netns` (as root), TLS xDS on every address there
    /// unless told otherwise, metrics on [`NetNs::ns_ip`].
    pub fn in_netns(self, netns: &'a NetNs) -> Self {
        Self {
            netns: Some(netns),
            ..self
        }
    }

    /// Starts it; returns once the TLS port accepts connections and the
    /// root is written.
    pub fn start(self) -> Result<ControlPlane> {
        let local_ip = self.netns.map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |netns| {
            IpAddr::V4(netns.ns_ip())
        });
        let xds_addr = match self.xds_addr {
            Some(XdsAddr::At(addr)) => addr,
            Some(XdsAddr::FreePortOn(ip)) => SocketAddr::new(ip, ports::free_port()?),
            None if self.netns.is_some() => {
                SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), ports::free_port()?)
            }
            None => SocketAddr::new(local_ip, ports::free_port()?),
        };
        let plaintext_addr = if self.plaintext {
            Some(SocketAddr::new(xds_addr.ip(), ports::free_port()?))
        } else {
            None
        };
        let metrics_addr = SocketAddr::new(local_ip, ports::free_port()?);
        let ca = match self.ca {
            Some(ca) => ca,
            None => Arc::new(MeshCa::new()?),
        };
        let dir = tempfile::tempdir().context("creating the control plane's temp dir")?;
        let binary = binaries::control_plane()?;
        let mut command = match self.netns {
            None => Command::new(binary),
            Some(netns) => netns.command(binary),
        };
        command.arg("serve").arg("--config").arg(self.config_dir);
        add_mesh(&mut command, self.mesh);
        command
            .arg("--ca-dir")
            .arg(ca.dir())
            .arg("--secure-xds-addr")
            .arg(xds_addr.to_string())
            .arg("--metrics-addr")
            .arg(metrics_addr.to_string());
        if let Some(addr) = plaintext_addr {
            command.arg("--plaintext-xds-addr").arg(addr.to_string());
        }
        command.args(&self.args);
        if env::var_os("RUST_LOG").is_none() {
            command.env("RUST_LOG", "info");
        }
        // Plain log lines, for tests to search and failures to show.
        command.env("NO_COLOR", "1");
        let mut process = Process::spawn("control-plane", command, dir.path())?;
        // An unspecified address is reached on the local one.
        let reachable = if xds_addr.ip().is_unspecified() {
            SocketAddr::new(local_ip, xds_addr.port())
        } else {
            xds_addr
        };
        process.wait_for_port(reachable, STARTUP)?;
        let root = ca.root_cert();
        process.wait_until("writing its root certificate", STARTUP, || {
            let pem = fs::read_to_string(&root).unwrap_or_default();
            ensure!(
                pem.contains("-----END CERTIFICATE-----"),
                "no certificate in {}",
                root.display()
            );
            Ok(())
        })?;
        Ok(ControlPlane {
            process,
            xds_addr,
            plaintext_addr,
            metrics_addr,
            ca,
            _dir: dir,
        })
    }
}

/// `control-plane validate DIR [--mesh FILE]`.
pub fn validate(config_dir: &Path, mesh: Option<&Path>) -> Result<CommandOutput> {
    let mut command = Command::new(binaries::control_plane()?);
    command.arg("validate").arg(config_dir);
    add_mesh(&mut command, mesh);
    process::run("control-plane-validate", command, COMMAND_TIMEOUT)
}

/// Runs `control-plane validate --strict` on `config_dir`: warnings fail too,
/// as with `istioctl analyze`.
pub fn validate_strict(config_dir: &Path) -> Result<CommandOutput> {
    let mut command = Command::new(binaries::control_plane()?);
    command.arg("validate").arg("--strict").arg(config_dir);
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
