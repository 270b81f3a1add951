//! A mesh of many hosts survives a control plane restart: the agent (an
//! egress gateway, which is sent every host's cluster), fed a config of tens
//! of thousands of ServiceEntry hosts, resubscribes to the restarted control
//! plane (its first delta request names every resource it holds, several
//! megabytes) and applies the next change.
//!
//! The CI-sized run has 10,000 hosts. The 100,000 hosts of a large mesh
//! take minutes to load in a debug build; run them in release:
//!
//! ```text
//! cargo test --release -p integration-tests --test large_config -- --ignored --nocapture
//! ```
//!
//! Both print the time from the restart to the change being applied.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use integration_tests::control_plane::{ConfigDir, ControlPlane};
use integration_tests::data_plane::DataPlane;
use integration_tests::dns::DnsServer;
use integration_tests::fixtures::{http_dns_service_entry, many_tls_hosts, mesh_config};
use integration_tests::process::assert_eventually;
use integration_tests::proxy_options::ProxyOptions;

/// The host the change registers.
const CHANGED_HOST: &str = "changed.test";
/// Its cluster, as the agent's `/clusters` names it.
const CHANGED_CLUSTER: &str = "outbound|80||changed.test";
/// How long the agent may take to notice the control plane is gone.
const DISCONNECT: Duration = Duration::from_secs(10);
/// A guard against a hung test, well above the 30 s a large mesh is
/// required to converge in (a debug build is many times slower).
const GUARD: Duration = Duration::from_secs(240);

/// Whether the agent holds the cluster the change adds.
fn has_changed_cluster(agent: &DataPlane) -> Result<bool> {
    Ok(agent.clusters()?.contains(CHANGED_CLUSTER))
}

/// Serves `hosts` hosts to an egress gateway agent, kills and restarts the
/// control plane, adds a host once it is back, and returns how long after
/// the restart the agent had applied it.
fn restart_with(hosts: usize) -> Result<Duration> {
    let dns = DnsServer::start([(CHANGED_HOST, Ipv4Addr::LOCALHOST)])?;
    let config = ConfigDir::new()?;
    config.write("hosts.yaml", &many_tls_hosts(hosts))?;
    let mode = mesh_config("registry-only");
    let control_plane = ControlPlane::start(config.path(), Some(&mode))?;
    let (xds_addr, ca) = (control_plane.xds_addr(), control_plane.ca().clone());
    let gateway = ProxyOptions::egress_gateway(control_plane.channel(), dns.addr());
    let agent = DataPlane::start(&gateway)?;
    ensure!(
        agent
            .clusters()?
            .contains("outbound|443||host-0.example.com"),
        "the agent holds the hosts' clusters"
    );
    ensure!(
        !has_changed_cluster(&agent)?,
        "{CHANGED_HOST} is not registered yet"
    );

    drop(control_plane);
    assert_eventually(DISCONNECT, || {
        ensure!(
            agent.metric("xds_connected", &[])? == Some(0.0),
            "still connected"
        );
        Ok(())
    });

    let restarted = Instant::now();
    let control_plane = ControlPlane::options(config.path())
        .mesh(Some(&mode))
        .xds_addr(xds_addr)
        .ca(ca)
        .start()?;
    config.write(
        "changed.yaml",
        &http_dns_service_entry("changed", CHANGED_HOST),
    )?;
    assert_eventually(GUARD, || {
        ensure!(
            has_changed_cluster(&agent)?,
            "{CHANGED_HOST} not applied yet"
        );
        Ok(())
    });
    let converged = restarted.elapsed();
    ensure!(
        agent.metric("xds_connected", &[])? == Some(1.0),
        "the agent is connected to the restarted control plane"
    );
    let logs = control_plane.logs();
    ensure!(
        !logs.contains("could not be read"),
        "the control plane read every request of the agent:\n{logs}"
    );
    eprintln!(
        "{hosts} hosts: resubscribed and the change applied {:.1} s after the restart",
        converged.as_secs_f64()
    );
    Ok(converged)
}

#[test]
fn ten_thousand_hosts_resubscribe_and_apply_a_change_after_a_restart() -> Result<()> {
    restart_with(10_000)?;
    Ok(())
}

#[test]
#[ignore = "minutes in a debug build; run in release (see the module's doc)"]
fn a_hundred_thousand_hosts_resubscribe_and_apply_a_change_after_a_restart() -> Result<()> {
    restart_with(100_000)?;
    Ok(())
}
