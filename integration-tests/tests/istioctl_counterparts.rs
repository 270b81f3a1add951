//! The istioctl counterparts against a running control plane: an egress
//! gateway agent and a sidecar agent connect over TLS, and `control-plane
//! proxy-status` (reading CSDS on the loopback plaintext port) shows both
//! SYNCED; with nothing listening it exits non-zero with one line.

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

/// The row of `name` in a table, split into its cells.
fn row(table: &str, name: &str) -> Option<Vec<String>> {
    table
        .lines()
        .find(|line| line.starts_with(name))
        .map(|line| {
            line.split("   ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(String::from)
                .collect()
        })
}

#[test]
fn proxy_status_shows_a_gateway_and_a_sidecar_synced() -> Result<()> {
    let port = free_port()?;
    let dns = DnsServer::start([("edition.cnn.com", std::net::Ipv4Addr::LOCALHOST)])?;
    let config = ConfigDir::new()?;
    config.write(
        "gateway-service.yaml",
        &egress_gateway_service(&[GatewayPort::new(port, "HTTP").target(free_port()?)])?,
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
    let table = eventually(CONVERGE, || {
        let output = proxy_status(&plaintext)?;
        ensure!(
            output.status.success(),
            "proxy-status failed: {}",
            output.stderr
        );
        for proxy in [&sleep, &gateway] {
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
