//! The agent's scrape and probe ports, as Istio's: Envoy's Prometheus
//! listener (15090) answers `/stats/prometheus` and nothing else,
//! pilot-agent's status port (15020) answers the merged `/stats/prometheus`
//! and `/healthz/ready`, and the health port (15021) `/healthz/ready`
//! alone; each scraped or probed for real, as Prometheus or the kubelet
//! would.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use integration_tests::admin::Admin;
use integration_tests::control_plane::{ConfigDir, ControlPlane};
use integration_tests::data_plane::DataPlane;
use integration_tests::dns::DnsServer;
use integration_tests::fixtures::{HTTPBIN_SERVICE_ENTRY, mesh_config};
use integration_tests::prometheus;
use integration_tests::proxy_options::ProxyOptions;

/// The metric names a scrape holds.
fn names(scrape: &str) -> BTreeSet<String> {
    scrape
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// GET `path` on `addr`: the status and body.
fn get(addr: SocketAddr, path: &str) -> Result<(u16, String)> {
    let response = Admin::new("data-plane", addr).get(path)?;
    ensure!(
        response.exit_code == 0,
        "GET {path} on {addr}: {response:?}"
    );
    Ok((response.status, response.body))
}

#[test]
fn the_metrics_and_status_ports_serve_istios_paths() -> Result<()> {
    let config = ConfigDir::new()?;
    config.write("httpbin.yaml", HTTPBIN_SERVICE_ENTRY)?;
    let control_plane = ControlPlane::start(config.path(), Some(&mesh_config("registry-only")))?;
    let dns = DnsServer::start([("httpbin.org", Ipv4Addr::LOCALHOST)])?;
    let agent = DataPlane::start(&ProxyOptions::sleep(control_plane.channel(), dns.addr()))?;
    let admin_names = names(&agent.prometheus()?);

    for (port, addr) in [
        ("metrics", agent.metrics_addr()),
        ("status", agent.status_addr()),
    ] {
        let (status, scrape) = get(addr, "/stats/prometheus")?;
        ensure!(status == 200, "{port} /stats/prometheus: {status} {scrape}");
        let scraped = names(&scrape);
        ensure!(
            scraped.iter().any(|name| name.starts_with("envoy_")),
            "{port}: no Envoy-format series in\n{scrape}"
        );
        ensure!(
            admin_names.is_subset(&scraped),
            "{port}: missing the admin's series {:?}",
            admin_names.difference(&scraped).collect::<Vec<_>>()
        );
        ensure!(
            prometheus::sum(&scrape, "xds_connected", &[]) == Some(1.0),
            "{port}: the agent's own xDS gauge is not 1 in\n{scrape}"
        );
        for path in ["/config_dump", "/clusters", "/stats", "/logging"] {
            let (status, body) = get(addr, path)?;
            ensure!(status == 404, "{port} {path}: {status} {body}");
        }
    }
    let (status, body) = get(agent.status_addr(), "/healthz/ready")?;
    ensure!(status == 200, "status /healthz/ready: {status} {body}");
    let (status, body) = get(agent.metrics_addr(), "/healthz/ready")?;
    ensure!(status == 404, "metrics /healthz/ready: {status} {body}");
    let (status, body) = get(agent.health_addr(), "/healthz/ready")?;
    ensure!(status == 200, "health /healthz/ready: {status} {body}");
    for path in ["/stats/prometheus", "/ready", "/config_dump"] {
        let (status, body) = get(agent.health_addr(), path)?;
        ensure!(status == 404, "health {path}: {status} {body}");
    }
    let response =
        Admin::new("data-plane", agent.status_addr()).request("POST", "/quitquitquit")?;
    ensure!(
        response.status == 404,
        "the status port must not stop the agent: {response:?}"
    );
    std::thread::sleep(Duration::from_millis(200));
    agent
        .admin_get("/ready")?
        .ensure_status(200)
        .context("the agent still runs")?;
    Ok(())
}
