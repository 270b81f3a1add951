//! Certificate rotation under load: with workload certificates living a
//! few seconds (`--workload-cert-ttl`), each agent gets a new one at half
//! its life, as Istio's pilot-agent does, and steady traffic from the app
//! through its sidecar to the egress gateway (ISTIO_MUTUAL, then TLS
//! origination) loses no request across at least two rotations. Each agent
//! logs the serial of every certificate it is issued; the sidecar's —
//! what the gateway is shown on new handshakes — changes, at half the
//! certificate's life and not before (however far back the CA dates a
//! certificate's start for clock skew).
//!
//! On loopback: the app (real curl) uses the sidecar as its proxy.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, ensure};
use integration_tests::control_plane::{ConfigDir, ControlPlane};
use integration_tests::curl::Curl;
use integration_tests::data_plane::DataPlane;
use integration_tests::dns::DnsServer;
use integration_tests::fixtures::{
    GatewayPort, egress_gateway_service, mutual_tls_via_gateway, peer_identity_mesh_config,
};
use integration_tests::ports::free_port;
use integration_tests::process::assert_eventually;
use integration_tests::proxy_options::ProxyOptions;
use integration_tests::tls::TestCa;
use integration_tests::upstream::Upstream;

/// Short enough for several rotations within a test.
const CERT_TTL: Duration = Duration::from_secs(6);
/// Rotations the traffic must go through.
const ROTATIONS: usize = 2;
/// However slow the machine, traffic stops after this long.
const LONGEST: Duration = Duration::from_secs(90);
const CONVERGE: Duration = Duration::from_secs(20);
/// What the agent logs for each certificate it is issued.
const ISSUED: &str = "workload certificate issued";

/// The serials of the certificates the agent logged as issued, in order.
fn serials(agent: &DataPlane) -> Vec<String> {
    issued(agent)
        .into_iter()
        .map(|(_, serial)| serial)
        .collect()
}

/// When the agent logged each certificate it was issued, and its serial.
fn issued(agent: &DataPlane) -> Vec<(SystemTime, String)> {
    agent
        .logs()
        .lines()
        .filter(|line| line.contains(ISSUED))
        .filter_map(|line| {
            let at = humantime::parse_rfc3339_weak(line.split_whitespace().next()?).ok()?;
            let (_, rest) = line.split_once("serial=")?;
            let serial = rest.split_whitespace().next()?;
            Some((at, serial.trim_matches('"').to_string()))
        })
        .collect()
}

/// Fails unless each of `agent`'s certificates served at least about half
/// its life before the next was issued.
fn ensure_rotated_at_half_life(agent: &DataPlane) -> Result<()> {
    let issued = issued(agent);
    let times: Vec<String> = issued
        .iter()
        .map(|(at, serial)| format!("{} {serial}", humantime::format_rfc3339_millis(*at)))
        .collect();
    for pair in issued.windows(2) {
        let served = pair[1].0.duration_since(pair[0].0).unwrap_or_default();
        ensure!(
            served >= CERT_TTL / 2 - Duration::from_secs(1),
            "certificate {} was replaced after {served:?}, before half its life ({CERT_TTL:?} / 2); issued:\n{}",
            pair[0].1,
            times.join("\n")
        );
    }
    Ok(())
}

#[test]
fn steady_traffic_through_mutual_tls_loses_nothing_across_rotations() -> Result<()> {
    let ca = TestCa::new()?;
    let cnn = Upstream::https(&ca, &["edition.cnn.com"])?;
    let dns = DnsServer::start([("edition.cnn.com", Ipv4Addr::LOCALHOST)])?;
    let config = ConfigDir::new()?;
    config.write(
        "gateway-service.yaml",
        &egress_gateway_service(&[GatewayPort::new(443, "HTTPS").target(free_port()?)])?,
    )?;
    config.write(
        "cnn.yaml",
        &mutual_tls_via_gateway(cnn.port(), &ca.cert_path().display().to_string()),
    )?;
    // Istio's line, with the client's identity the gateway saw appended.
    let mesh = ConfigDir::new()?;
    let mesh_file = mesh.write("mesh.yaml", &peer_identity_mesh_config()?)?;
    let control_plane = ControlPlane::options(config.path())
        .mesh(Some(&mesh_file))
        .workload_cert_ttl(CERT_TTL)
        .start()?;
    let gateway = DataPlane::start(&ProxyOptions::egress_gateway(
        control_plane.channel(),
        dns.addr(),
    ))?;
    let sidecar = DataPlane::start(&ProxyOptions::sleep(control_plane.channel(), dns.addr()))?;
    let curl = Curl::get("http://edition.cnn.com/politics")
        .proxy(sidecar.proxy_addr())
        .max_time(Duration::from_secs(10));
    assert_eventually(CONVERGE, || curl.run()?.ensure_status(200).cloned());

    let started = Instant::now();
    let first = serials(&sidecar);
    let mut served = 0;
    loop {
        let response = curl.run()?;
        ensure!(
            response.exit_code == 0 && response.status == 200,
            "request {} after {:?} failed: {response:?}\nsidecar serials: {:?}\ngateway serials: {:?}",
            served + 1,
            started.elapsed(),
            serials(&sidecar),
            serials(&gateway),
        );
        served += 1;
        let rotated = serials(&sidecar).len().saturating_sub(first.len());
        if rotated >= ROTATIONS {
            break;
        }
        ensure!(
            started.elapsed() < LONGEST,
            "{rotated} rotations in {LONGEST:?} with certificates of {CERT_TTL:?}\n{}",
            sidecar.logs()
        );
    }

    let sidecar_serials = serials(&sidecar);
    let distinct: BTreeSet<&String> = sidecar_serials.iter().collect();
    ensure!(
        distinct.len() == sidecar_serials.len() && distinct.len() > ROTATIONS,
        "each rotation brings a new serial: {sidecar_serials:?}"
    );
    ensure!(
        serials(&gateway).len() > ROTATIONS,
        "the gateway rotates too: {:?}",
        serials(&gateway)
    );
    ensure_rotated_at_half_life(&sidecar)?;
    ensure_rotated_at_half_life(&gateway)?;
    // What the sidecar presents now, as its admin `/certs` shows it, is the
    // last certificate it logged (one more may arrive while we look).
    let logged_before = serials(&sidecar).pop().unwrap_or_default();
    let certs = sidecar.admin_get("/certs")?.json()?;
    let logged_after = serials(&sidecar).pop().unwrap_or_default();
    let in_use = certs["certificates"][0]["cert_chain"][0]["serial_number"].clone();
    ensure!(
        in_use == logged_before.as_str() || in_use == logged_after.as_str(),
        "/certs shows {in_use}, the last issued is {logged_after}: {certs:#}"
    );
    let line = gateway
        .wait_for_access_log(CONVERGE, |line| {
            line.contains("\"GET /politics HTTP/1.1\" 200")
        })
        .context("the gateway served the traffic")?;
    ensure!(
        line.contains("spiffe://cluster.local/ns/default/sa/sleep"),
        "{line}"
    );
    println!(
        "{served} requests in {:?}, all 200; sidecar serials {sidecar_serials:?}",
        started.elapsed()
    );
    Ok(())
}
