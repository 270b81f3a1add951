//! Transparent capture as istio-init does it, by `data-plane init` inside a
//! network namespace standing in for the app's pod (root only: without it
//! each test fails, unless `EGRESS_MESH_SKIP_ROOT_TESTS=1` asks to skip it).
//! Two of the walkthrough's steps:
//! - include/exclude IP ranges: traffic to an excluded range (or outside the
//!   included ones) bypasses the sidecar, everything else goes through it;
//! - bypass prevention: with `init --lockdown` in the app's namespace (what
//!   the Kubernetes NetworkPolicy of the walkthrough does), an app without a
//!   sidecar cannot reach the external service, while the sidecar reaches it
//!   through the egress gateway.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use integration_tests::control_plane::{ConfigDir, ControlPlane};
use integration_tests::curl::{Curl, CurlResponse};
use integration_tests::data_plane::DataPlane;
use integration_tests::dns::DnsServer;
use integration_tests::fixtures::{
    GatewayPort, HTTPBIN_SERVICE_ENTRY, egress_gateway_service, https_via_gateway, mesh_config,
};
use integration_tests::netns::{NetNs, require_root};
use integration_tests::ports::free_port;
use integration_tests::process::{self, assert_eventually};
use integration_tests::proxy_options::ProxyOptions;
use integration_tests::tls::TestCa;
use integration_tests::upstream::Upstream;

const CONVERGE: Duration = Duration::from_secs(10);

#[test]
fn include_and_exclude_ranges_decide_what_the_sidecar_sees() -> Result<()> {
    if !require_root("include_and_exclude_ranges_decide_what_the_sidecar_sees") {
        return Ok(());
    }
    let netns = NetNs::new()?;
    let host = netns.host_ip();
    let external = Upstream::http_on(SocketAddr::from((host, 80)))?;
    let dns = DnsServer::start_on(host, [("httpbin.org", host)])?;
    let config = ConfigDir::new()?;
    config.write("httpbin.yaml", HTTPBIN_SERVICE_ENTRY)?;
    let control_plane =
        ControlPlane::start_for_namespaces(config.path(), Some(&mesh_config("registry-only")))?;
    let xds_port = control_plane.xds_addr().port();
    let control = control_plane.channel().via(IpAddr::V4(host));
    let options = ProxyOptions::sleep(control, dns.addr()).ip(IpAddr::V4(netns.ns_ip()));
    let _sidecar = DataPlane::start_in(&netns, &options)?;
    // An unregistered host on the same address: the sidecar (REGISTRY_ONLY)
    // answers 502; a request that bypasses it reaches the server.
    let unknown = || -> Result<CurlResponse> {
        Curl::get("http://unknown.example/")
            .resolve("unknown.example", 80, IpAddr::V4(host))
            .in_netns(&netns)
            .max_time(Duration::from_secs(5))
            .run()
    };
    let host_range = format!("{host}/32");
    let cases: [(&[&str], u16); 4] = [
        (&["--include-outbound-ip-ranges", "*"], 502),
        (&["--include-outbound-ip-ranges", &host_range], 502),
        (
            &[
                "--include-outbound-ip-ranges",
                "*",
                "--exclude-outbound-ip-ranges",
                &host_range,
            ],
            200,
        ),
        (&["--include-outbound-ip-ranges", "10.255.255.0/24"], 200),
    ];
    for (ranges, expected) in cases {
        netns.data_plane(&["cleanup"], CONVERGE).ok();
        netns.data_plane_init(xds_port, ranges, CONVERGE)?;
        let seen = external.requests().len();
        let response = assert_eventually(CONVERGE, || {
            let response = unknown()?;
            ensure!(
                response.status == expected,
                "{ranges:?}: expected {expected}, got {response:?}"
            );
            Ok(response)
        });
        let reached = external.requests().len() > seen;
        ensure!(
            reached == (expected == 200),
            "{ranges:?}: the server {} the request",
            if reached { "saw" } else { "did not see" }
        );
        if let Some(request) = external.requests().last().filter(|_| reached) {
            ensure!(
                request.header("x-envoy-decorator-operation").is_none(),
                "{ranges:?}: a bypassing request does not go through the sidecar: {request:?}"
            );
        }
        println!("{ranges:?} -> {}", response.status);
    }
    Ok(())
}

#[test]
fn lockdown_leaves_the_egress_gateway_as_the_only_way_out() -> Result<()> {
    if !require_root("lockdown_leaves_the_egress_gateway_as_the_only_way_out") {
        return Ok(());
    }
    let ca = TestCa::new()?;
    let netns = NetNs::new()?;
    let host = netns.host_ip();
    let external = Upstream::https_on(SocketAddr::from((host, 443)), &ca, &["edition.cnn.com"])?;
    let dns = DnsServer::start_on(host, [("edition.cnn.com", host)])?;
    let gateway_port = free_port()?;
    let config = ConfigDir::new()?;
    config.write(
        "gateway-service.yaml",
        &egress_gateway_service(&[GatewayPort::new(443, "TLS").target(gateway_port)])?,
    )?;
    config.write("cnn.yaml", &https_via_gateway(443))?;
    let control_plane =
        ControlPlane::start_for_namespaces(config.path(), Some(&mesh_config("registry-only")))?;
    let xds_port = control_plane.xds_addr().port();
    let control = control_plane.channel().via(IpAddr::V4(host));
    // The walkthrough's NetworkPolicy, as `init --lockdown`: only the
    // proxy's uid (to the control plane, the gateway, DNS) gets out.
    netns.data_plane_init(
        xds_port,
        &[
            "--include-outbound-ip-ranges",
            "*",
            "--lockdown",
            "--capture-dns",
        ],
        CONVERGE,
    )?;
    let curl = || -> Result<CurlResponse> {
        Curl::get("https://edition.cnn.com/politics")
            .resolve("edition.cnn.com", 443, IpAddr::V4(host))
            .cacert(ca.cert_path())
            .in_netns(&netns)
            .max_time(Duration::from_secs(3))
            .run()
    };

    // No sidecar: nothing takes the captured connection, and nothing
    // else may leave.
    let blocked = curl()?;
    ensure!(
        blocked.exit_code != 0,
        "without a sidecar the app must not get out: {blocked:?}"
    );
    ensure!(
        external.tls_hellos().is_empty(),
        "nothing reached the external server"
    );
    println!("without a sidecar: curl exit {}", blocked.exit_code);
    // The control plane's port is never captured: the app cannot use that
    // hole either (curl cannot connect: 7 refused, or 28 dropped).
    let hole = Curl::get(format!("http://{host}:{xds_port}/"))
        .in_netns(&netns)
        .max_time(Duration::from_secs(3))
        .run()?;
    ensure!(
        [7, 28].contains(&hole.exit_code),
        "the app must not connect to an uncaptured port: {hole:?}"
    );

    // With a sidecar and the egress gateway, the same request succeeds.
    let gateway = DataPlane::start(
        &ProxyOptions::egress_gateway(control.clone(), dns.addr()).ip(IpAddr::V4(host)),
    )?;
    let options = ProxyOptions::sleep(control, dns.addr()).ip(IpAddr::V4(netns.ns_ip()));
    let sidecar = DataPlane::start_in(&netns, &options)?;
    let response = process::eventually(CONVERGE, || curl()?.ensure_status(200).cloned())
        .with_context(|| format!("sidecar:\n{}\ngateway:\n{}", sidecar.logs(), gateway.logs()))?;
    let hello = external
        .tls_hellos()
        .pop()
        .context("the external server saw TLS")?;
    ensure!(
        hello.peer.ip() == IpAddr::V4(host),
        "the external server's peer is the gateway on the host, not the app's namespace: {hello:?}"
    );
    println!(
        "with the sidecar and the egress gateway: {}",
        response.status
    );
    Ok(())
}
