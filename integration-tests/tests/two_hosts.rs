//! The mesh across hosts: the control plane in one network namespace, the
//! app and its sidecar in another, the egress gateway in a third, each pair
//! joined by a veth link of its own (no routing through this host). The
//! proxies reach the control plane over TLS at its address on their link,
//! verifying that address as the control plane's certificate names it
//! (`--xds-san`); the app's plain HTTP goes to the gateway over
//! ISTIO_MUTUAL, and the gateway originates TLS to edition.cnn.com, which
//! listens on this host at the end of the gateway's veth.
//!
//! Needs root: see `netns::require_root`.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use integration_tests::control_plane::{ConfigDir, ControlPlane};
use integration_tests::curl::Curl;
use integration_tests::data_plane::DataPlane;
use integration_tests::dns::DnsServer;
use integration_tests::fixtures::{
    GatewayPort, egress_gateway_service, mutual_tls_via_gateway, peer_identity_mesh_config,
};
use integration_tests::netns::{NetNs, require_root};
use integration_tests::ports::free_port;
use integration_tests::process::eventually;
use integration_tests::proxy_options::ProxyOptions;
use integration_tests::tls::TestCa;
use integration_tests::upstream::Upstream;

const CONVERGE: Duration = Duration::from_secs(30);

#[test]
fn istio_mutual_to_a_gateway_on_another_host_with_the_control_plane_on_a_third() -> Result<()> {
    if !require_root("istio_mutual_to_a_gateway_on_another_host_with_the_control_plane_on_a_third")
    {
        return Ok(());
    }
    // Declared first, dropped last: every process in them is gone by then.
    let control_host = NetNs::new()?;
    let app_host = NetNs::new()?;
    let gateway_host = NetNs::new()?;
    let (control_for_app, app_ip) = control_host.link(&app_host)?;
    let (control_for_gateway, _) = control_host.link(&gateway_host)?;
    let (_, gateway_ip) = app_host.link(&gateway_host)?;

    let ca = TestCa::new()?;
    let external = gateway_host.host_ip();
    let cnn = Upstream::https_on(SocketAddr::from((external, 443)), &ca, &["edition.cnn.com"])?;
    let gateway_dns = DnsServer::start_on(external, [("edition.cnn.com", external)])?;
    let app_dns = DnsServer::start_on(app_host.host_ip(), [("edition.cnn.com", external)])?;
    let gateway_port = free_port()?;
    let config = ConfigDir::new()?;
    config.write(
        "gateway-service.yaml",
        &egress_gateway_service(&[GatewayPort::new(443, "HTTPS").target(gateway_port)])?,
    )?;
    config.write(
        "cnn.yaml",
        &mutual_tls_via_gateway(443, &ca.cert_path().display().to_string()),
    )?;
    // The gateway's access log ends with the client identity it saw.
    let mesh = ConfigDir::new()?;
    let mesh_file = mesh.write("mesh.yaml", &peer_identity_mesh_config()?)?;
    let control_plane = ControlPlane::options(config.path())
        .mesh(Some(&mesh_file))
        .in_netns(&control_host)
        .xds_san(&control_for_app.to_string())
        .xds_san(&control_for_gateway.to_string())
        .start()?;
    // Each proxy verifies the address it dials.
    let reach = |ip: std::net::Ipv4Addr| {
        control_plane
            .channel()
            .via(IpAddr::V4(ip))
            .server_name(&ip.to_string())
    };

    let gateway = DataPlane::start_in(
        &gateway_host,
        &ProxyOptions::egress_gateway(reach(control_for_gateway), gateway_dns.addr())
            .ip(IpAddr::V4(gateway_ip)),
    )?;
    app_host.data_plane_init(
        control_plane.xds_addr().port(),
        &["--include-outbound-ip-ranges", "*"],
        CONVERGE,
    )?;
    let sidecar = DataPlane::start_in(
        &app_host,
        &ProxyOptions::sleep(reach(control_for_app), app_dns.addr()).ip(IpAddr::V4(app_ip)),
    )?;

    // The app sends plain HTTP, captured by its sidecar; it resolves the
    // name to an address its host routes (the link to this host), as any
    // would do, since capture hands the connection to the sidecar.
    let response = eventually(CONVERGE, || {
        Curl::get("http://edition.cnn.com/politics")
            .resolve("edition.cnn.com", 80, IpAddr::V4(app_host.host_ip()))
            .in_netns(&app_host)
            .max_time(Duration::from_secs(10))
            .run()?
            .ensure_status(200)
            .cloned()
    })
    .with_context(|| format!("sidecar:\n{}\ngateway:\n{}", sidecar.logs(), gateway.logs()))?;
    ensure!(response.body.contains("politics"), "{}", response.body);

    // The gateway terminated mutual TLS from the sidecar's identity...
    let line = gateway.wait_for_access_log(CONVERGE, |line| {
        line.contains("\"GET /politics HTTP/1.1\" 200")
    })?;
    ensure!(
        line.contains("spiffe://cluster.local/ns/default/sa/sleep"),
        "the gateway logs the sidecar's SPIFFE identity: {line}"
    );
    // ...and originated TLS from its own host.
    let hello = cnn
        .tls_hellos()
        .pop()
        .context("the external server saw TLS")?;
    ensure!(hello.sni.as_deref() == Some("edition.cnn.com"), "{hello:?}");
    ensure!(
        hello.peer.ip() == IpAddr::V4(gateway_host.ns_ip()),
        "the external server's peer is the gateway's host: {hello:?}"
    );
    let sidecar_line = sidecar.wait_for_access_log(CONVERGE, |line| {
        line.contains("\"GET /politics HTTP/1.1\" 200")
    })?;
    ensure!(
        sidecar_line.contains(&format!("{gateway_ip}:{gateway_port}")),
        "the sidecar reached the gateway at its address on their link: {sidecar_line}"
    );
    println!("sidecar: {sidecar_line}\ngateway: {line}");
    Ok(())
}
