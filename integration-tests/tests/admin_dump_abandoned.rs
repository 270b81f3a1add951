//! Abandoned `/config_dump` requests do not hold up xDS: an egress gateway
//! agent holding thousands of hosts' clusters is sent ten `/config_dump`
//! requests, each read a little and dropped; the agent then applies the
//! next change on the same ADS stream (it never reconnects).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use integration_tests::control_plane::{ConfigDir, ControlPlane};
use integration_tests::data_plane::DataPlane;
use integration_tests::dns::DnsServer;
use integration_tests::fixtures::{http_dns_service_entry, many_tls_hosts, mesh_config};
use integration_tests::process::assert_eventually;
use integration_tests::proxy_options::ProxyOptions;

/// Hosts in the mesh: enough that a dump takes a while in a debug build.
const HOSTS: usize = 10_000;
/// The dumps abandoned.
const ABANDONED: usize = 10;
/// The host the change registers.
const CHANGED_HOST: &str = "changed.test";
/// Its cluster, as the agent's `/clusters` names it.
const CHANGED_CLUSTER: &str = "outbound|80||changed.test";
/// A guard against a hung test.
const GUARD: Duration = Duration::from_secs(120);

/// Sends `GET /config_dump`, reads the first bytes of the answer and
/// returns the socket, still open, for the caller to drop.
fn start_dump(agent: &DataPlane) -> Result<TcpStream> {
    let mut socket = TcpStream::connect_timeout(&agent.admin_addr(), GUARD)?;
    socket.set_read_timeout(Some(GUARD))?;
    socket.write_all(b"GET /config_dump HTTP/1.1\r\nHost: admin\r\n\r\n")?;
    let mut first = [0u8; 64];
    let read = socket
        .read(&mut first)
        .context("reading the dump's start")?;
    ensure!(
        first[..read].starts_with(b"HTTP/1.1 200"),
        "the dump starts with a 200: {:?}",
        String::from_utf8_lossy(&first[..read])
    );
    Ok(socket)
}

#[test]
fn abandoned_config_dumps_do_not_delay_xds() -> Result<()> {
    let dns = DnsServer::start([(CHANGED_HOST, Ipv4Addr::LOCALHOST)])?;
    let config = ConfigDir::new()?;
    config.write("hosts.yaml", &many_tls_hosts(HOSTS))?;
    let control_plane = ControlPlane::start(config.path(), Some(&mesh_config("registry-only")))?;
    let gateway = ProxyOptions::egress_gateway(control_plane.channel(), dns.addr());
    let agent = DataPlane::start(&gateway)?;
    assert_eventually(GUARD, || {
        ensure!(
            agent
                .clusters()?
                .contains("outbound|443||host-0.example.com"),
            "the hosts' clusters are not applied yet"
        );
        Ok(())
    });
    let attempts = agent.metric("xds_connection_attempts_total", &[])?;
    ensure!(
        !agent.clusters()?.contains(CHANGED_CLUSTER),
        "{CHANGED_HOST} is not registered yet"
    );

    let dumps = (0..ABANDONED)
        .map(|_| start_dump(&agent))
        .collect::<Result<Vec<_>>>()?;
    for socket in dumps {
        let _ = socket.shutdown(Shutdown::Both);
    }

    let written = Instant::now();
    config.write(
        "changed.yaml",
        &http_dns_service_entry("changed", CHANGED_HOST),
    )?;
    assert_eventually(GUARD, || {
        ensure!(
            agent.clusters()?.contains(CHANGED_CLUSTER),
            "{CHANGED_HOST} not applied yet"
        );
        Ok(())
    });
    let applied = written.elapsed();
    ensure!(
        agent.metric("xds_connected", &[])? == Some(1.0),
        "the agent is still connected"
    );
    ensure!(
        agent.metric("xds_connection_attempts_total", &[])? == attempts,
        "the ADS stream never dropped: {attempts:?} connection attempts before the dumps, \
         {:?} after",
        agent.metric("xds_connection_attempts_total", &[])?
    );
    eprintln!(
        "{ABANDONED} abandoned dumps of {HOSTS} hosts: the change applied {:.1} s after it was \
         written, on the same ADS stream (xds_connection_attempts_total stays {})",
        applied.as_secs_f64(),
        attempts.unwrap_or_default()
    );
    Ok(())
}
