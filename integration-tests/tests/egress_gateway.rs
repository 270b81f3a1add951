//! Istio's egress gateway tasks through our own agents on loopback: the app
//! (real curl) uses the sidecar agent as its proxy; the sidecar sends
//! edition.cnn.com's traffic to the egress gateway agent (`data-plane proxy
//! router`, labelled istio=egressgateway), which becomes an endpoint of
//! `istio-egressgateway.istio-system.svc.cluster.local` when it connects to
//! the control plane and sends it on to the "external" server.
//!
//! Ports: the external servers listen on free ports and the ServiceEntry
//! ports are those ports; the gateway's service maps each to a free
//! `targetPort`, the port the gateway agent listens on.

use std::net::Ipv4Addr;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use integration_tests::control_plane::{ConfigDir, ControlPlane};
use integration_tests::curl::Curl;
use integration_tests::data_plane::DataPlane;
use integration_tests::dns::DnsServer;
use integration_tests::fixtures::{
    GatewayPort, egress_gateway_service, http_via_gateway, https_via_gateway,
    mutual_tls_via_gateway, peer_identity_mesh_config,
};
use integration_tests::ports::free_port;
use integration_tests::process::{assert_eventually, eventually};
use integration_tests::proxy_options::ProxyOptions;
use integration_tests::tls::TestCa;
use integration_tests::upstream::Upstream;

const CONVERGE: Duration = Duration::from_secs(10);

/// The mesh of a test: edition.cnn.com on loopback behind the test's DNS,
/// the control plane (REGISTRY_ONLY) serving the egress gateway's service
/// with `port` and the test's `cnn` config, the app's sidecar and the
/// egress gateway. Dropped in this order: the proxies first.
struct Mesh {
    sleep: DataPlane,
    gateway: DataPlane,
    control_plane: ControlPlane,
    dns: DnsServer,
    _config: ConfigDir,
    _mesh: ConfigDir,
}

impl Mesh {
    fn start(port: GatewayPort, cnn: &str) -> Result<Self> {
        let dns = DnsServer::start([("edition.cnn.com", Ipv4Addr::LOCALHOST)])?;
        let config = ConfigDir::new()?;
        config.write("gateway-service.yaml", &egress_gateway_service(&[port])?)?;
        config.write("cnn.yaml", cnn)?;
        // The gateway's access log ends with the client identity it saw.
        let mesh = ConfigDir::new()?;
        let mesh_file = mesh.write("mesh.yaml", &peer_identity_mesh_config()?)?;
        let control_plane = ControlPlane::start(config.path(), Some(&mesh_file))?;
        let sleep = DataPlane::start(&ProxyOptions::sleep(control_plane.channel(), dns.addr()))?;
        let gateway = start_gateway(&control_plane, &dns)?;
        Ok(Self {
            sleep,
            gateway,
            control_plane,
            dns,
            _config: config,
            _mesh: mesh,
        })
    }
}

fn start_gateway(control_plane: &ControlPlane, dns: &DnsServer) -> Result<DataPlane> {
    DataPlane::start(&ProxyOptions::egress_gateway(
        control_plane.channel(),
        dns.addr(),
    ))
}

#[test]
fn http_goes_through_the_egress_gateway_and_gets_no_healthy_upstream_without_it() -> Result<()> {
    let cnn = Upstream::http()?;
    let port = cnn.port();
    let mesh = Mesh::start(
        GatewayPort::new(port, "HTTP").target(free_port()?),
        &http_via_gateway(port),
    )?;
    let url = format!("http://edition.cnn.com:{port}/politics");
    let curl = || {
        Curl::get(&url)
            .proxy(mesh.sleep.proxy_addr())
            .max_time(Duration::from_secs(10))
            .run()
    };

    assert_eventually(CONVERGE, || curl()?.ensure_status(200).cloned());
    let gateway_line = mesh.gateway.wait_for_access_log(CONVERGE, |line| {
        line.contains("\"GET /politics HTTP/1.1\" 200")
            && line.contains(&format!("outbound|{port}||edition.cnn.com"))
    })?;
    let sidecar_line = mesh.sleep.wait_for_access_log(CONVERGE, |line| {
        line.contains("\"GET /politics HTTP/1.1\" 200")
    })?;
    let gateway_subset =
        format!("outbound|{port}|cnn|istio-egressgateway.istio-system.svc.cluster.local");
    ensure!(
        sidecar_line.contains(&gateway_subset),
        "the sidecar sent the request to the gateway's subset: {sidecar_line}"
    );
    let seen = cnn.requests();
    let last = seen.last().context("the external server saw the request")?;
    ensure!(
        last.header("x-envoy-decorator-operation").is_some(),
        "the request reached the external server through a proxy: {last:?}"
    );
    println!("gateway: {gateway_line}\nsidecar: {sidecar_line}");

    // The gateway goes away: its endpoint leaves the mesh, and the sidecar
    // answers as Envoy does for a cluster without endpoints: 503 "no healthy
    // upstream", logged with UH. (Until the control plane removes the
    // endpoint, the sidecar may still try the gateway's address: 503 UF.)
    drop(mesh.gateway);
    let failed = eventually(CONVERGE, || {
        let response = curl()?;
        ensure!(
            (response.status, response.body.as_str()) == (503, "no healthy upstream"),
            "expected 503 \"no healthy upstream\" without the gateway, got {} {:?}",
            response.status,
            response.body
        );
        Ok(response)
    })?;
    let no_gateway_line = mesh.sleep.wait_for_access_log(CONVERGE, |line| {
        line.contains("\"GET /politics HTTP/1.1\" 503 UH no_healthy_upstream ")
    })?;
    ensure!(
        no_gateway_line.contains(&gateway_subset),
        "the gateway's subset had no endpoint left: {no_gateway_line}"
    );
    println!(
        "without the gateway: {} {}\nsidecar: {no_gateway_line}",
        failed.status, failed.body
    );

    // It comes back: requests succeed again, nothing restarted.
    let _gateway = start_gateway(&mesh.control_plane, &mesh.dns)?;
    assert_eventually(CONVERGE, || curl()?.ensure_status(200).cloned());
    Ok(())
}

#[test]
fn https_passes_through_the_egress_gateway_by_sni() -> Result<()> {
    let ca = TestCa::new()?;
    let cnn = Upstream::https(&ca, &["edition.cnn.com"])?;
    let port = cnn.port();
    let mesh = Mesh::start(
        GatewayPort::new(port, "TLS").target(free_port()?),
        &https_via_gateway(port),
    )?;

    // curl's own TLS, verified against the external server's certificate.
    let url = format!("https://edition.cnn.com:{port}/politics");
    assert_eventually(CONVERGE, || {
        Curl::get(&url)
            .proxy(mesh.sleep.proxy_addr())
            .cacert(ca.cert_path())
            .max_time(Duration::from_secs(10))
            .run()?
            .ensure_status(200)
            .cloned()
    });
    let hello = cnn
        .tls_hellos()
        .pop()
        .context("the external server saw a TLS handshake")?;
    ensure!(
        hello.sni.as_deref() == Some("edition.cnn.com"),
        "SNI as curl sent it: {hello:?}"
    );
    let line = mesh.gateway.wait_for_access_log(CONVERGE, |line| {
        line.contains(&format!("outbound|{port}||edition.cnn.com"))
            && line.contains(" edition.cnn.com ")
    })?;
    println!("gateway: {line}");
    Ok(())
}

#[test]
fn istio_mutual_to_the_gateway_then_tls_origination() -> Result<()> {
    let ca = TestCa::new()?;
    let cnn = Upstream::https(&ca, &["edition.cnn.com"])?;
    let gateway_port = free_port()?;
    let mesh = Mesh::start(
        GatewayPort::new(443, "HTTPS").target(gateway_port),
        &mutual_tls_via_gateway(cnn.port(), &ca.cert_path().display().to_string()),
    )?;

    // The app sends plain HTTP.
    assert_eventually(CONVERGE, || {
        Curl::get("http://edition.cnn.com/politics")
            .proxy(mesh.sleep.proxy_addr())
            .max_time(Duration::from_secs(10))
            .run()?
            .ensure_status(200)
            .cloned()
    });
    // The gateway terminated mutual TLS from the sidecar's mesh identity...
    let line = mesh.gateway.wait_for_access_log(CONVERGE, |line| {
        line.contains("\"GET /politics HTTP/1.1\" 200")
    })?;
    ensure!(
        line.contains("spiffe://cluster.local/ns/default/sa/sleep"),
        "the gateway logs the sidecar's SPIFFE identity: {line}"
    );
    ensure!(
        line.contains(" edition.cnn.com "),
        "the gateway logs the SNI: {line}"
    );
    // ...and originated TLS to the external server with the right SNI.
    let hello = cnn
        .tls_hellos()
        .pop()
        .context("the external server saw TLS")?;
    ensure!(hello.sni.as_deref() == Some("edition.cnn.com"), "{hello:?}");
    ensure!(
        cnn.requests().iter().any(|r| r.path == "/politics"),
        "the request arrived over TLS"
    );

    // The gateway port speaks mutual TLS only: a plaintext client is refused.
    let plaintext = Curl::get(format!("http://127.0.0.1:{gateway_port}/politics"))
        .header("Host", "edition.cnn.com")
        .max_time(Duration::from_secs(5))
        .run()?;
    ensure!(
        plaintext.exit_code != 0 && plaintext.status != 200,
        "plaintext to the gateway must fail, got status {} exit {}",
        plaintext.status,
        plaintext.exit_code
    );
    Ok(())
}
