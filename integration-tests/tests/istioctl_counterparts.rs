//! The istioctl counterparts against a running control plane: an egress
//! gateway agent and a sidecar agent connect over TLS, and `control-plane
//! proxy-status` (reading CSDS on the loopback plaintext port) shows both
//! SYNCED, and `control-plane proxy-config` shows each one's clusters,
//! listeners, routes and endpoints (a cluster's DestinationRule and a
//! route's VirtualService named in their columns); with nothing listening
//! it exits non-zero with one line.

use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use integration_tests::binaries;
use integration_tests::control_plane::{ConfigDir, ControlPlane};
use integration_tests::data_plane::DataPlane;
use integration_tests::dns::DnsServer;
use integration_tests::fixtures::{GatewayPort, egress_gateway_service, http_via_gateway};
use integration_tests::ports::{free_addr, free_port};
use integration_tests::process::{self, CommandOutput, eventually};
use integration_tests::proxy_options::ProxyOptions;

const CONVERGE: Duration = Duration::from_secs(20);
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

fn control_plane_command(args: &[String]) -> Result<CommandOutput> {
    let mut command = Command::new(binaries::control_plane()?);
    command.args(args);
    process::run("control-plane-cli", command, COMMAND_TIMEOUT)
}

/// `proxy-status` against the plaintext port at `addr`.
fn proxy_status(addr: &str) -> Result<CommandOutput> {
    control_plane_command(&[
        "proxy-status".into(),
        "--plaintext".into(),
        "--xds-address".into(),
        addr.into(),
    ])
}

/// `proxy-config KIND PROXY ARGS...` against the plaintext port at `addr`.
fn proxy_config(addr: &str, kind: &str, proxy: &str, args: &[&str]) -> Result<CommandOutput> {
    let all: Vec<String> = [
        "proxy-config",
        kind,
        proxy,
        "--plaintext",
        "--xds-address",
        addr,
    ]
    .iter()
    .chain(args)
    .map(|a| a.to_string())
    .collect();
    let output = control_plane_command(&all)?;
    ensure!(
        output.status.success(),
        "proxy-config {kind} {proxy} failed: {}",
        output.stderr
    );
    Ok(output)
}

/// A table line split into its cells.
fn cells(line: &str) -> Vec<String> {
    line.split("   ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(String::from)
        .collect()
}

/// Whether `table` has a row whose cells are `wanted` (then maybe more).
fn has_row(table: &str, wanted: &[&str]) -> bool {
    table.lines().map(cells).any(|row| {
        row.len() >= wanted.len() && row[..wanted.len()].iter().zip(wanted).all(|(a, b)| a == b)
    })
}

/// The row of `name` in a table, split into its cells.
fn row(table: &str, name: &str) -> Option<Vec<String>> {
    table.lines().find(|line| line.starts_with(name)).map(cells)
}

/// A control plane serving the egress gateway HTTP task for `port` (the
/// gateway listening on `target`) on a plaintext port, with a sidecar and
/// the gateway connected.
struct Mesh {
    plaintext: String,
    sleep: DataPlane,
    gateway: DataPlane,
    _control_plane: ControlPlane,
    _config: ConfigDir,
    _dns: DnsServer,
}

impl Mesh {
    fn start(port: u16, target: u16) -> Result<Self> {
        let dns = DnsServer::start([("edition.cnn.com", std::net::Ipv4Addr::LOCALHOST)])?;
        let config = ConfigDir::new()?;
        config.write(
            "gateway-service.yaml",
            &egress_gateway_service(&[GatewayPort::new(port, "HTTP").target(target)])?,
        )?;
        config.write("cnn.yaml", &http_via_gateway(port))?;
        let control_plane = ControlPlane::options(config.path()).plaintext().start()?;
        let plaintext = control_plane
            .plaintext_addr()
            .context("started with a plaintext port")?
            .to_string();
        let sleep = DataPlane::start(&ProxyOptions::sleep(control_plane.channel(), dns.addr()))?;
        let gateway = DataPlane::start(&ProxyOptions::egress_gateway(
            control_plane.channel(),
            dns.addr(),
        ))?;
        Ok(Self {
            plaintext,
            sleep,
            gateway,
            _control_plane: control_plane,
            _config: config,
            _dns: dns,
        })
    }
}

#[test]
fn proxy_status_shows_a_gateway_and_a_sidecar_synced() -> Result<()> {
    let mesh = Mesh::start(free_port()?, free_port()?)?;
    let Mesh {
        plaintext,
        sleep,
        gateway,
        ..
    } = &mesh;
    let table = eventually(CONVERGE, || {
        let output = proxy_status(plaintext)?;
        ensure!(
            output.status.success(),
            "proxy-status failed: {}",
            output.stderr
        );
        for proxy in [sleep, gateway] {
            let name = &proxy.node().id;
            let cells = row(&output.stdout, name)
                .with_context(|| format!("no row for {name}:\n{}", output.stdout))?;
            ensure!(
                cells[2] == "SYNCED" && cells[3] == "SYNCED",
                "{name}: CDS and LDS not both SYNCED:\n{}",
                output.stdout
            );
        }
        Ok(output.stdout)
    })?;
    assert!(
        table.starts_with("NAME") && table.lines().next().is_some_and(|h| h.contains("ECDS")),
        "istioctl's header: {table}"
    );
    let sleep_row = row(&table, &sleep.node().id).expect("checked above");
    assert_eq!(sleep_row[1], "Kubernetes", "{table}");
    Ok(())
}

#[test]
fn proxy_status_without_a_control_plane_fails_with_one_line() -> Result<()> {
    let output = proxy_status(&free_addr()?.to_string())?;
    assert!(!output.status.success(), "{}", output.stdout);
    assert_eq!(output.stderr.trim().lines().count(), 1, "{}", output.stderr);
    assert!(
        output.stderr.contains("cannot reach the control plane"),
        "{}",
        output.stderr
    );
    Ok(())
}

#[test]
fn proxy_config_shows_what_a_gateway_and_a_sidecar_were_sent() -> Result<()> {
    let port = free_port()?;
    // Where the gateway listens for `port`, as a Service's targetPort.
    let target = free_port()?;
    let mesh = Mesh::start(port, target)?;
    let addr = &mesh.plaintext;
    let port_text = port.to_string();
    let sleep_name = mesh.sleep.node().id.clone();
    let gateway_name = mesh.gateway.node().id.clone();

    let clusters = eventually(CONVERGE, || {
        let out = proxy_config(addr, "clusters", &gateway_name, &[])?.stdout;
        ensure!(
            has_row(
                &out,
                &["edition.cnn.com", &port_text, "-", "outbound", "STRICT_DNS"]
            ),
            "the gateway's cluster outbound|{port}||edition.cnn.com:\n{out}"
        );
        Ok(out)
    })?;
    assert!(clusters.starts_with("SERVICE FQDN"), "{clusters}");
    let endpoints = proxy_config(
        addr,
        "endpoints",
        &gateway_name,
        &["--cluster", &format!("outbound|{port}||edition.cnn.com")],
    )?
    .stdout;
    assert!(
        has_row(&endpoints, &[&format!("edition.cnn.com:{port}"), "HEALTHY"]),
        "{endpoints}"
    );
    let gateway_listeners = proxy_config(addr, "listeners", &gateway_name, &[])?.stdout;
    assert!(
        has_row(
            &gateway_listeners,
            &[
                "0.0.0.0",
                &target.to_string(),
                "ALL",
                &format!("Route: http.{target}")
            ]
        ),
        "the gateway's listener 0.0.0.0_{target}, routes by Istio's name http.<target port>:\n{gateway_listeners}"
    );

    let sleep_clusters = eventually(CONVERGE, || {
        let out = proxy_config(addr, "clusters", &sleep_name, &["--subset", "cnn"])?.stdout;
        ensure!(
            has_row(
                &out,
                &[
                    "istio-egressgateway.istio-system.svc.cluster.local",
                    &port_text,
                    "cnn",
                    "outbound"
                ]
            ),
            "the sidecar's cluster to the gateway's cnn subset:\n{out}"
        );
        Ok(out)
    })?;
    assert!(
        !sleep_clusters.contains("PassthroughCluster"),
        "filtered by subset: {sleep_clusters}"
    );
    let subset_row = row(
        &sleep_clusters,
        "istio-egressgateway.istio-system.svc.cluster.local",
    );
    assert_eq!(
        subset_row
            .as_ref()
            .and_then(|cells| cells.last())
            .map(String::as_str),
        Some("egressgateway-for-cnn.default"),
        "the DESTINATION RULE column names the rule of the subset's cluster:\n{sleep_clusters}"
    );
    let listeners = proxy_config(addr, "listeners", &sleep_name, &["--port", &port_text])?.stdout;
    assert!(
        has_row(
            &listeners,
            &["0.0.0.0", &port_text, "ALL", &format!("Route: {port}")]
        ),
        "the sidecar's listener 0.0.0.0_{port}:\n{listeners}"
    );
    let routes = proxy_config(addr, "routes", &sleep_name, &["--name", &port_text])?.stdout;
    assert!(
        has_row(
            &routes,
            &[
                &port_text,
                &format!("edition.cnn.com:{port}"),
                "edition.cnn.com"
            ]
        ),
        "{routes}"
    );
    assert!(
        routes.lines().any(|line| line.contains("edition.cnn.com")
            && line
                .trim_end()
                .ends_with("direct-cnn-through-egress-gateway.default")),
        "the VIRTUAL SERVICE column names the route's VirtualService:\n{routes}"
    );
    let json = proxy_config(
        addr,
        "listeners",
        &sleep_name,
        &["--port", &port_text, "-o", "json"],
    )?
    .stdout;
    let listeners: serde_json::Value = serde_json::from_str(&json).context("JSON")?;
    assert_eq!(listeners[0]["name"], format!("0.0.0.0_{port}"), "{json}");

    let unknown = control_plane_command(&[
        "proxy-config".into(),
        "clusters".into(),
        "nobody.default".into(),
        "--plaintext".into(),
        "--xds-address".into(),
        addr.clone(),
    ])?;
    assert!(!unknown.status.success(), "{}", unknown.stdout);
    assert!(
        unknown
            .stderr
            .contains("no proxy nobody.default is connected"),
        "{}",
        unknown.stderr
    );
    Ok(())
}
