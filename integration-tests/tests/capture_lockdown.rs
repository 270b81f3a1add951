//! Capture with no way around it: `data-plane init --lockdown
//! --capture-dns` in the app's network namespace, then every bypass
//! `data-plane analyze` knows tried from there as the app's uid (not the
//! proxy's): direct TCP to an external address, IPv6, UDP 443 (QUIC) and
//! DNS to a resolver outside the mesh. Each fails, the servers see nothing
//! from the app, and `analyze` reports clean. Without `--lockdown` (IPv6
//! is still refused), `analyze` names the gaps: UDP, DNS to any resolver;
//! `init` runs twice without complaint, and `init --cleanup` leaves the
//! rules as they were.
//!
//! The "external" servers listen on the host end of the namespace's veth
//! (IPv4 and IPv6), the outside resolver on its port 53. The app's tries
//! are `egress-probe`, this crate's one-shot client, run as
//! `netns::APP_UID`. Needs root: see `netns::require_root`.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use integration_tests::control_plane::{ConfigDir, ControlPlane};
use integration_tests::data_plane::DataPlane;
use integration_tests::dns::DnsServer;
use integration_tests::fixtures::mesh_config;
use integration_tests::netns::{NetNs, require_root};
use integration_tests::process::{self, CommandOutput};
use integration_tests::proxy_options::ProxyOptions;
use integration_tests::tcp_greeter::TcpGreeter;
use integration_tests::udp_sink::UdpSink;

/// How long `init`, `analyze` and the agent's start may take.
const CONVERGE: Duration = Duration::from_secs(20);
/// How long a datagram gets to arrive before its absence counts.
const DATAGRAM_WAIT: Duration = Duration::from_secs(1);
/// The external TCP service's port.
const TCP_PORT: u16 = 5432;
/// A name only the outside resolver and the mesh's DNS server know.
const OUTSIDE_NAME: &str = "tracker.outside.example";
/// A UDP port that is neither DNS nor QUIC.
const OTHER_UDP_PORT: u16 = 5353;

/// The external servers on the host end of the veth, v4 and v6.
struct Outside {
    tcp: TcpGreeter,
    tcp6: TcpGreeter,
    quic: UdpSink,
    quic6: UdpSink,
    other_udp: UdpSink,
    resolver: DnsServer,
    mesh_dns: DnsServer,
}

impl Outside {
    fn start(netns: &NetNs) -> Result<Self> {
        let (host6, _) = netns.add_ipv6()?;
        let host = netns.host_ip();
        Ok(Self {
            tcp: TcpGreeter::start(None, SocketAddr::from((host, TCP_PORT)), "outside")?,
            tcp6: TcpGreeter::start(None, SocketAddr::from((host6, TCP_PORT)), "outside6")?,
            quic: UdpSink::start(SocketAddr::from((host, 443)))?,
            quic6: UdpSink::start(SocketAddr::from((host6, 443)))?,
            other_udp: UdpSink::start(SocketAddr::from((host, OTHER_UDP_PORT)))?,
            resolver: DnsServer::start_at(SocketAddr::from((host, 53)), [(OUTSIDE_NAME, host)])?,
            mesh_dns: DnsServer::start_on(host, [(OUTSIDE_NAME, host)])?,
        })
    }

    fn asked_the_resolver(&self) -> bool {
        self.resolver
            .queries()
            .iter()
            .any(|query| query.name == OUTSIDE_NAME)
    }
}

/// `egress-probe <args>` inside `netns` as the app's uid.
fn probe(netns: &NetNs, args: &[&str]) -> Result<CommandOutput> {
    let dir = tempfile::tempdir()?;
    let mut command =
        netns.app_command(Path::new(env!("CARGO_BIN_EXE_egress-probe")), dir.path())?;
    command.args(args);
    let output = process::run("egress-probe", command, CONVERGE)?;
    ensure!(
        matches!(output.code(), Some(0 | 1)),
        "egress-probe {args:?} did not run: {output:?}"
    );
    println!("probe {args:?}: {}", output.stdout.trim());
    Ok(output)
}

fn addr(addr: SocketAddr) -> String {
    addr.to_string()
}

#[test]
fn lockdown_leaves_the_proxy_as_the_only_way_out() -> Result<()> {
    if !require_root("lockdown_leaves_the_proxy_as_the_only_way_out") {
        return Ok(());
    }
    let netns = NetNs::new()?;
    let outside = Outside::start(&netns)?;
    let host = netns.host_ip();
    let config = ConfigDir::new()?;
    let control_plane =
        ControlPlane::start_for_namespaces(config.path(), Some(&mesh_config("registry-only")))?;
    let control = control_plane.channel().via(IpAddr::V4(host));
    netns.data_plane_init(
        control.addr().port(),
        &[
            "--include-outbound-ip-ranges",
            "*",
            "--capture-dns",
            "--lockdown",
        ],
        CONVERGE,
    )?;
    let options = ProxyOptions::sleep(control, outside.mesh_dns.addr())
        .ip(IpAddr::V4(netns.ns_ip()))
        .dns_capture();
    let agent = DataPlane::start_in(&netns, &options)?;

    // Direct TCP to an external address: captured, and under REGISTRY_ONLY
    // the proxy sends it nowhere.
    let tcp = probe(&netns, &["tcp", &addr(outside.tcp.addr())])?;
    ensure!(!tcp.success(), "direct TCP got out: {}", tcp.stdout);
    ensure!(
        outside.tcp.peers().is_empty(),
        "the external TCP server saw {:?}",
        outside.tcp.peers()
    );
    // IPv6 TCP: no way out either.
    let tcp6 = probe(&netns, &["tcp", &addr(outside.tcp6.addr())])?;
    ensure!(!tcp6.success(), "IPv6 TCP got out: {}", tcp6.stdout);
    ensure!(
        outside.tcp6.peers().is_empty(),
        "the external IPv6 server saw {:?}",
        outside.tcp6.peers()
    );
    // UDP 443 (QUIC), v4 and v6: nothing arrives.
    probe(&netns, &["udp", &addr(outside.quic.addr())])?;
    probe(&netns, &["udp", &addr(outside.quic6.addr())])?;
    thread::sleep(DATAGRAM_WAIT);
    ensure!(
        outside.quic.received().is_empty() && outside.quic6.received().is_empty(),
        "UDP 443 got out: {:?} {:?}",
        outside.quic.received(),
        outside.quic6.received()
    );
    // DNS to the outside resolver: the agent answers instead (forwarding
    // what it does not know to the mesh's DNS server).
    let dns = probe(
        &netns,
        &["dns", &addr(outside.resolver.addr()), OUTSIDE_NAME],
    )?;
    ensure!(
        !outside.asked_the_resolver(),
        "the outside resolver was asked: {:?}",
        outside.resolver.queries()
    );
    ensure!(
        dns.success(),
        "the agent's DNS proxy answers in the resolver's place: {}\n{}",
        dns.stdout,
        agent.logs()
    );

    let admin = agent.admin_addr().to_string();
    let analyze = netns.data_plane_output(
        &[
            "analyze",
            "--admin-addr",
            &admin,
            "--proxy-exe",
            &agent.executable().display().to_string(),
        ],
        CONVERGE,
    )?;
    println!(
        "analyze with --lockdown:\n{}{}",
        analyze.stdout, analyze.stderr
    );
    analyze
        .ensure_success()
        .context("data-plane analyze after init --lockdown --capture-dns")?;
    Ok(())
}

#[test]
fn without_lockdown_analyze_names_the_gaps_and_cleanup_restores_the_rules() -> Result<()> {
    if !require_root("without_lockdown_analyze_names_the_gaps_and_cleanup_restores_the_rules") {
        return Ok(());
    }
    let netns = NetNs::new()?;
    let outside = Outside::start(&netns)?;
    let before = netns.iptables_save()?;

    // Before any rule, every probe gets out: they can tell.
    ensure!(probe(&netns, &["tcp", &addr(outside.tcp.addr())])?.success());
    ensure!(probe(&netns, &["tcp", &addr(outside.tcp6.addr())])?.success());
    let dns = probe(
        &netns,
        &["dns", &addr(outside.resolver.addr()), OUTSIDE_NAME],
    )?;
    ensure!(dns.success() && outside.asked_the_resolver());

    // A plain init, twice: the second changes nothing.
    let init = ["init", "--include-outbound-ip-ranges", "*"];
    netns.data_plane(&init, CONVERGE)?;
    let once = netns.iptables_save()?;
    netns.data_plane(&init, CONVERGE)?;
    ensure!(
        netns.iptables_save()? == once,
        "init twice must leave the rules of init once:\n{once}\n---\n{}",
        netns.iptables_save()?
    );

    // IPv6 is refused (not captured: the agent's capture is IPv4).
    let tcp6 = probe(&netns, &["tcp", &addr(outside.tcp6.addr())])?;
    ensure!(!tcp6.success(), "IPv6 got out after init: {}", tcp6.stdout);
    // UDP that is neither DNS nor QUIC still leaves, as analyze must say.
    probe(&netns, &["udp", &addr(outside.other_udp.addr())])?;
    process::eventually(DATAGRAM_WAIT, || {
        ensure!(!outside.other_udp.received().is_empty(), "no datagram yet");
        Ok(())
    })
    .context("without --lockdown, UDP leaves the namespace")?;
    let analyze = netns.data_plane_output(&["analyze"], CONVERGE)?;
    let report = format!("{}{}", analyze.stdout, analyze.stderr);
    println!("analyze without --lockdown:\n{report}");
    ensure!(
        !analyze.success(),
        "analyze must fail without --lockdown:\n{report}"
    );
    for gap in ["IPv4 UDP", "DNS over UDP"] {
        ensure!(
            report.contains(gap),
            "analyze names the {gap} gap:\n{report}"
        );
    }

    netns.data_plane(&["init", "--cleanup"], CONVERGE)?;
    let after = netns.iptables_save()?;
    ensure!(
        after == before,
        "init --cleanup must restore the rules:\nbefore:\n{before}\nafter:\n{after}"
    );
    Ok(())
}
