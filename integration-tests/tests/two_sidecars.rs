//! Two sidecars on one host, as README's "Run it on your hosts" says: each
//! agent with its own outbound (`--outbound-addr`), admin, Prometheus and
//! status ports, both connected to one control plane, each proxying its
//! own app's traffic and only that, both SYNCED in `control-plane
//! proxy-status`. A third agent started on a port one of them holds fails
//! with the flag that gives it another.

use std::net::Ipv4Addr;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use integration_tests::binaries;
use integration_tests::control_plane::{ConfigDir, ControlPlane};
use integration_tests::curl::Curl;
use integration_tests::data_plane::DataPlane;
use integration_tests::dns::DnsServer;
use integration_tests::fixtures::dns_service_entry;
use integration_tests::ports::free_addr;
use integration_tests::process::{self, assert_eventually, eventually};
use integration_tests::proxy_options::ProxyOptions;
use integration_tests::upstream::Upstream;

const CONVERGE: Duration = Duration::from_secs(20);

/// `control-plane proxy-status` against the plaintext port `addr`: its
/// table.
fn proxy_status(addr: &str) -> Result<String> {
    let mut command = Command::new(binaries::control_plane()?);
    command.args(["proxy-status", "--plaintext", "--xds-address", addr]);
    let output = process::run("proxy-status", command, Duration::from_secs(30))?;
    output.ensure_success()?;
    Ok(output.stdout)
}

/// Whether `table` shows proxy `id` with CDS and LDS SYNCED (istioctl's
/// columns: NAME, CLUSTER, CDS, LDS, ...).
fn synced(table: &str, id: &str) -> Result<()> {
    let row = table
        .lines()
        .find(|line| line.split_whitespace().next() == Some(id))
        .with_context(|| format!("no row for {id}:\n{table}"))?;
    let cells: Vec<&str> = row.split_whitespace().collect();
    ensure!(
        cells.get(2..4) == Some(&["SYNCED", "SYNCED"][..]),
        "{id}: CDS and LDS not both SYNCED:\n{table}"
    );
    Ok(())
}

#[test]
fn two_sidecars_share_a_host_each_with_its_own_ports() -> Result<()> {
    let httpbin = Upstream::http()?;
    let dns = DnsServer::start([("httpbin.org", Ipv4Addr::LOCALHOST)])?;
    let config = ConfigDir::new()?;
    config.write(
        "httpbin.yaml",
        &dns_service_entry("httpbin", "httpbin.org", httpbin.port(), "HTTP"),
    )?;
    let control_plane = ControlPlane::options(config.path()).plaintext().start()?;
    let plaintext = control_plane
        .plaintext_addr()
        .context("started with a plaintext port")?
        .to_string();
    let sidecar = |app: &str| -> Result<ProxyOptions> {
        Ok(
            ProxyOptions::sidecar(app, "default", control_plane.channel(), dns.addr())
                .outbound_addr(free_addr()?),
        )
    };
    let sleep = DataPlane::start(&sidecar("sleep")?)?;
    let curl = DataPlane::start(&sidecar("curl")?)?;
    ensure!(
        sleep.proxy_addr() != curl.proxy_addr()
            && sleep.admin_addr() != curl.admin_addr()
            && sleep.metrics_addr() != curl.metrics_addr()
            && sleep.status_addr() != curl.status_addr(),
        "each agent has ports of its own"
    );

    // Each app sends through its own sidecar; each sidecar logs its own
    // app's requests and not the other's.
    for (agent, app) in [(&sleep, "sleep"), (&curl, "curl")] {
        let url = format!("http://httpbin.org:{}/headers?app={app}", httpbin.port());
        assert_eventually(CONVERGE, || {
            Curl::get(&url)
                .proxy(agent.proxy_addr())
                .run()?
                .ensure_status(200)
                .cloned()
        });
    }
    for (agent, own, other) in [(&sleep, "sleep", "curl"), (&curl, "curl", "sleep")] {
        agent.wait_for_access_log(CONVERGE, |line| {
            line.contains(&format!("/headers?app={own} "))
        })?;
        let log = agent.access_log();
        ensure!(
            !log.iter()
                .any(|line| line.contains(&format!("app={other}"))),
            "{own}'s sidecar proxied {other}'s traffic:\n{}",
            log.join("\n")
        );
    }

    let table = eventually(CONVERGE, || {
        let table = proxy_status(&plaintext)?;
        synced(&table, &sleep.node().id)?;
        synced(&table, &curl.node().id)?;
        Ok(table)
    })?;
    println!("{table}");

    // A third on the first one's outbound port: its listener cannot be
    // bound, and it says which flag moves it.
    let mut third = DataPlane::spawn(
        &ProxyOptions::sidecar("third", "default", control_plane.channel(), dns.addr())
            .outbound_addr(sleep.proxy_addr()),
    )?;
    let complaint = eventually(CONVERGE, || {
        let logs = third.logs();
        ensure!(
            logs.contains("--outbound-addr"),
            "no bind error naming --outbound-addr yet:\n{logs}"
        );
        Ok(logs)
    })?;
    ensure!(
        complaint.contains(&sleep.proxy_addr().to_string()),
        "the error names the address: {complaint}"
    );
    ensure!(
        third.wait_ready(Duration::from_secs(1)).is_err(),
        "an agent without its outbound listener is not ready"
    );
    drop(third);

    // And on the first one's admin port: it stops at once, naming the flag.
    let mut fourth = DataPlane::spawn(
        &ProxyOptions::sidecar("fourth", "default", control_plane.channel(), dns.addr())
            .outbound_addr(free_addr()?)
            .admin_addr(sleep.admin_addr()),
    )?;
    let status = fourth.wait_exit(CONVERGE)?;
    let logs = fourth.logs();
    ensure!(
        !status.success() && logs.contains("Give this one another with --admin-addr"),
        "a second agent on the first one's admin port: {status}, and the flag named in\n{logs}"
    );
    // The first two go on.
    for agent in [&sleep, &curl] {
        agent.admin_get("/ready")?.ensure_status(200)?;
    }
    Ok(())
}
