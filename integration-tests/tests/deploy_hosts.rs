//! The mesh brought up from `deploy/systemd`'s own command lines, one
//! network namespace per host: the control plane's unit on one, the egress
//! gateway's on a second, the sidecar's (istio-init's rules, then the agent
//! as uid 1337) on a third, each pair joined by a link of its own. Each
//! unit's `ExecStart=` (and the sidecar's `ExecStartPre=`/`ExecStopPost=`)
//! is read from the file, with its specifiers pointed at a directory per
//! host, the binaries at the ones built here, and only the settings the
//! units leave to `/etc/egress-mesh/<role>.env` set: addresses, identity,
//! and the test's DNS server. The app's plain HTTP, captured by the
//! sidecar, reaches edition.cnn.com through the gateway over ISTIO_MUTUAL,
//! and `control-plane proxy-status` on the control plane's host shows both
//! proxies SYNCED.
//!
//! Needs root: see `netns::require_root`.

use std::collections::BTreeMap;
use std::fs;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::{PermissionsExt, chown};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use integration_tests::binaries;
use integration_tests::curl::Curl;
use integration_tests::dns::DnsServer;
use integration_tests::fixtures::{
    GatewayPort, egress_gateway_service, mutual_tls_via_gateway, peer_identity_mesh_config,
};
use integration_tests::netns::{NetNs, PROXY_UID, require_root};
use integration_tests::ports::free_port;
use integration_tests::process::{self, Process, eventually};
use integration_tests::tls::TestCa;
use integration_tests::unit_file::{CommandLine, ServiceUnit, Specifiers};
use integration_tests::upstream::Upstream;

const CONVERGE: Duration = Duration::from_secs(30);
const STARTUP: Duration = Duration::from_secs(30);
const CONTROL_PLANE_UNIT: &str = "egress-mesh-control-plane.service";
const GATEWAY_UNIT: &str = "egress-mesh-egress-gateway.service";
const SIDECAR_UNIT: &str = "egress-mesh-sidecar.service";
const CONTROL_PLANE_BIN: &str = "/usr/local/bin/control-plane";
const DATA_PLANE_BIN: &str = "/usr/local/bin/data-plane";

/// One host's file system: `%E` and `%S` of its units, and where its
/// processes' logs and the proxy's copy of the binary go.
struct HostFiles {
    specifiers: Specifiers,
    run: PathBuf,
}

impl HostFiles {
    fn new(root: &Path, name: &str) -> Result<Self> {
        let base = root.join(name);
        let files = Self {
            specifiers: Specifiers {
                config: base.join("etc"),
                state: base.join("var/lib"),
                host: name.to_string(),
            },
            run: base.join("run"),
        };
        for dir in [files.etc().as_path(), &files.specifiers.state, &files.run] {
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        Ok(files)
    }

    /// `%E/egress-mesh`.
    fn etc(&self) -> PathBuf {
        self.specifiers.config.join("egress-mesh")
    }

    fn unit(&self, name: &str) -> Result<ServiceUnit> {
        ServiceUnit::load(name, &self.specifiers)
    }

    /// A file of `%E/egress-mesh` only `istio-proxy` (uid 1337) reads.
    fn proxy_secret(&self, name: &str, contents: &str) -> Result<()> {
        let path = self.etc().join(name);
        fs::write(&path, contents)?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o400))?;
        chown(&path, Some(PROXY_UID), Some(PROXY_UID))?;
        Ok(())
    }
}

/// `command` as the unit runs it on `host`, with the unit's `environment`
/// (the agent reads pilot-agent's variables from it): the binary the unit
/// names replaced by the one built here, as root or as `istio-proxy`.
fn unit_command(
    host: &NetNs,
    files: &HostFiles,
    unit: &ServiceUnit,
    environment: &BTreeMap<String, String>,
    command: &CommandLine,
) -> Result<Command> {
    let binary = match command.program.as_str() {
        CONTROL_PLANE_BIN => binaries::control_plane()?,
        DATA_PLANE_BIN => binaries::data_plane()?,
        other => anyhow::bail!("the units run {other}, which this test does not know"),
    };
    let mut process = match unit.value("User") {
        Some("istio-proxy") if !command.privileged => host.proxy_command(&binary, &files.run)?,
        Some("istio-proxy" | "egress-mesh") | None => host.command(binary),
        Some(other) => anyhow::bail!("User={other} is not a user this test knows"),
    };
    process
        .args(&command.args)
        .envs(environment)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1");
    Ok(process)
}

#[test]
fn the_units_command_lines_bring_up_a_mesh_across_three_hosts() -> Result<()> {
    if !require_root("the_units_command_lines_bring_up_a_mesh_across_three_hosts") {
        return Ok(());
    }
    // Declared first, dropped last: every process in them is gone by then.
    let control_host = NetNs::new()?;
    let app_host = NetNs::new()?;
    let gateway_host = NetNs::new()?;
    let (control_for_app, app_ip) = control_host.link(&app_host)?;
    let (control_for_gateway, _) = control_host.link(&gateway_host)?;
    let (_, gateway_ip) = app_host.link(&gateway_host)?;

    let root = tempfile::tempdir()?;
    // istio-proxy reaches its own files below.
    fs::set_permissions(root.path(), fs::Permissions::from_mode(0o755))?;
    let control_files = HostFiles::new(root.path(), "control")?;
    let gateway_files = HostFiles::new(root.path(), "gateway")?;
    let app_files = HostFiles::new(root.path(), "app")?;

    let ca = TestCa::new()?;
    let external = gateway_host.host_ip();
    let cnn = Upstream::https_on(SocketAddr::from((external, 443)), &ca, &["edition.cnn.com"])?;
    let gateway_dns = DnsServer::start_on(external, [("edition.cnn.com", external)])?;
    let app_dns = DnsServer::start_on(app_host.host_ip(), [("edition.cnn.com", external)])?;
    let gateway_port = free_port()?;

    // The control plane's host: its config where the unit reads it.
    let config = control_files.etc().join("config");
    fs::create_dir_all(&config)?;
    fs::write(
        config.join("gateway-service.yaml"),
        egress_gateway_service(&[GatewayPort::new(443, "HTTPS").target(gateway_port)])?,
    )?;
    fs::write(
        config.join("cnn.yaml"),
        mutual_tls_via_gateway(443, &ca.cert_path().display().to_string()),
    )?;
    // The gateway's access log ends with the client identity it saw.
    fs::write(
        control_files.etc().join("mesh.yaml"),
        peer_identity_mesh_config()?,
    )?;
    // What StateDirectory= makes before the service starts.
    let state = control_files
        .specifiers
        .state
        .join("egress-mesh/control-plane");
    fs::create_dir_all(&state)?;
    fs::set_permissions(&state, fs::Permissions::from_mode(0o700))?;
    let xds_port = free_port()?;
    let unit = control_files.unit(CONTROL_PLANE_UNIT)?;
    let environment = unit.environment(&[
        ("SECURE_XDS_ADDR", &format!("0.0.0.0:{xds_port}")),
        ("METRICS_ADDR", &format!("127.0.0.1:{}", free_port()?)),
        // The plaintext port `proxy-status` reads, on the host's loopback.
        ("CONTROL_PLANE_ARGS", "--plaintext-xds-addr 127.0.0.1:15010"),
    ])?;
    let start = unit.command("ExecStart", &environment)?;
    let mut control_plane = Process::spawn(
        "control-plane",
        unit_command(&control_host, &control_files, &unit, &environment, &start)?,
        &control_files.run,
    )?;
    control_plane.wait_for_port(SocketAddr::from((control_host.ns_ip(), xds_port)), STARTUP)?;
    let ca_dir = state.join("ca");
    let root_cert = control_plane.wait_until("writing its root", STARTUP, || {
        let pem = fs::read_to_string(ca_dir.join("root-cert.pem"))?;
        ensure!(pem.contains("-----END CERTIFICATE-----"));
        Ok(pem)
    })?;
    let token = |namespace: &str, service_account: &str| -> Result<String> {
        let mut command = Command::new(binaries::control_plane()?);
        command
            .args(["token", "create", "--ca-dir"])
            .arg(&ca_dir)
            .args([
                "--namespace",
                namespace,
                "--service-account",
                service_account,
            ]);
        let output = process::run("token-create", command, STARTUP)?;
        output.ensure_success()?;
        Ok(output.stdout.trim().to_string())
    };

    // The egress gateway's host.
    gateway_files.proxy_secret("root-cert.pem", &root_cert)?;
    gateway_files.proxy_secret(
        "egress-gateway.jwt",
        &token("istio-system", "istio-egressgateway-service-account")?,
    )?;
    let unit = gateway_files.unit(GATEWAY_UNIT)?;
    let environment = unit.environment(&[
        ("XDS_ADDR", &format!("{control_for_gateway}:{xds_port}")),
        ("INSTANCE_IP", &gateway_ip.to_string()),
        (
            "AGENT_ARGS",
            &format!("--dns-server {}", gateway_dns.addr()),
        ),
    ])?;
    let start = unit.command("ExecStart", &environment)?;
    let gateway = Process::spawn(
        "gateway",
        unit_command(&gateway_host, &gateway_files, &unit, &environment, &start)?,
        &gateway_files.run,
    )?;

    // The app's host: istio-init's rules, then the sidecar.
    app_files.proxy_secret("root-cert.pem", &root_cert)?;
    app_files.proxy_secret("sidecar.jwt", &token("default", "sleep")?)?;
    let unit = app_files.unit(SIDECAR_UNIT)?;
    let environment = unit.environment(&[
        ("XDS_ADDR", &format!("{control_for_app}:{xds_port}")),
        ("INSTANCE_IP", &app_ip.to_string()),
        ("POD_NAMESPACE", "default"),
        ("SERVICE_ACCOUNT", "sleep"),
        ("LABELS", "app=sleep"),
        ("AGENT_ARGS", &format!("--dns-server {}", app_dns.addr())),
    ])?;
    let pre = unit.command("ExecStartPre", &environment)?;
    ensure!(pre.privileged, "istio-init's rules need root: {pre:?}");
    process::run(
        "init",
        unit_command(&app_host, &app_files, &unit, &environment, &pre)?,
        STARTUP,
    )?
    .ensure_success()?;
    let start = unit.command("ExecStart", &environment)?;
    let mut sidecar = Process::spawn(
        "sidecar",
        unit_command(&app_host, &app_files, &unit, &environment, &start)?,
        &app_files.run,
    )?;

    let logs = |sidecar: &Process| {
        format!(
            "control plane:\n{}\nsidecar:\n{}\ngateway:\n{}",
            control_plane.logs(),
            sidecar.logs(),
            gateway.logs()
        )
    };
    // Plain HTTP from the app, captured by its sidecar.
    let response = eventually(CONVERGE, || {
        Curl::get("http://edition.cnn.com/politics")
            .resolve("edition.cnn.com", 80, IpAddr::V4(app_host.host_ip()))
            .in_netns(&app_host)
            .max_time(Duration::from_secs(10))
            .run()?
            .ensure_status(200)
            .cloned()
    })
    .with_context(|| logs(&sidecar))?;
    ensure!(response.body.contains("politics"), "{}", response.body);

    // The gateway saw the sidecar's identity, and originated TLS itself.
    eventually(CONVERGE, || {
        let log = gateway.stdout();
        ensure!(
            log.lines()
                .any(|line| line.contains("\"GET /politics HTTP/1.1\" 200")
                    && line.contains("spiffe://cluster.local/ns/default/sa/sleep")),
            "no access log line of the sidecar's request"
        );
        Ok(())
    })
    .with_context(|| logs(&sidecar))?;
    let hello = cnn.tls_hellos().pop().context("edition.cnn.com saw TLS")?;
    ensure!(
        hello.peer.ip() == IpAddr::V4(gateway_host.ns_ip()),
        "the external server's peer is the gateway's host: {hello:?}"
    );

    // istioctl proxy-status's counterpart, on the control plane's host,
    // shows both proxies SYNCED (CDS and LDS).
    eventually(CONVERGE, || {
        let mut command = control_host.command(binaries::control_plane()?);
        command.args([
            "proxy-status",
            "--plaintext",
            "--xds-address",
            "127.0.0.1:15010",
        ]);
        let output = process::run("proxy-status", command, STARTUP)?;
        output.ensure_success()?;
        // Rows are named `<pod>.<namespace>`: the gateway's in
        // istio-system, the sidecar's in default.
        for namespace in [".istio-system", ".default"] {
            let row: Vec<&str> = output
                .stdout
                .lines()
                .map(|line| line.split_whitespace().collect::<Vec<_>>())
                .find(|cells| cells.first().is_some_and(|name| name.ends_with(namespace)))
                .with_context(|| format!("no row in {namespace}:\n{}", output.stdout))?;
            ensure!(
                row.get(2..4) == Some(&["SYNCED", "SYNCED"][..]),
                "the proxy in {namespace} is not SYNCED:\n{}",
                output.stdout
            );
        }
        Ok(())
    })
    .with_context(|| logs(&sidecar))?;

    // Stopped, the sidecar's unit removes istio-init's rules.
    sidecar.kill();
    let stop = unit.command("ExecStopPost", &environment)?;
    process::run(
        "cleanup",
        unit_command(&app_host, &app_files, &unit, &environment, &stop)?,
        STARTUP,
    )?
    .ensure_success()?;
    let rules = app_host.iptables_save()?;
    ensure!(
        !rules.contains("ISTIO"),
        "istio-init's chains are left:\n{rules}"
    );
    Ok(())
}
