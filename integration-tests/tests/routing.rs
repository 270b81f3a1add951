//! Traffic through a real Envoy sidecar configured by the control plane,
//! captured as in a pod: curl and Envoy share a network namespace whose
//! outbound TCP is redirected to Envoy's `virtualOutbound` (15001) by
//! istio-init's iptables rules, and Envoy runs as uid 1337 so its own
//! connections leave directly. The "external" httpbin.org, the DNS server
//! and the control plane listen on the host end of the namespace's veth.
//!
//! Needs root (namespaces, iptables): fails without it, unless
//! `EGRESS_MESH_SKIP_ROOT_TESTS=1` asks to skip it.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::{Result, ensure};
use integration_tests::control_plane::{ConfigDir, ControlPlane};
use integration_tests::curl::Curl;
use integration_tests::dns::DnsServer;
use integration_tests::envoy::Envoy;
use integration_tests::fixtures::{HTTPBIN_SERVICE_ENTRY, mesh_config};
use integration_tests::netns::{self, NetNs, PROXY_UID};
use integration_tests::process::assert_eventually;
use integration_tests::proxy_options::ProxyOptions;
use integration_tests::upstream::Upstream;

/// Envoy's outbound capture port (virtualOutbound).
const VIRTUAL_OUTBOUND: u16 = 15001;

#[test]
fn captured_curl_reaches_a_service_entry_and_nothing_else() -> Result<()> {
    if !netns::require_root("captured_curl_reaches_a_service_entry_and_nothing_else") {
        return Ok(());
    }
    // Declared first, so dropped last: every process in it is gone by then.
    let netns = NetNs::new()?;
    let external = netns.host_ip();
    let httpbin = Upstream::http_on(SocketAddr::from((external, 80)))?;
    let dns = DnsServer::start_on(external, [("httpbin.org", external)])?;
    let config = ConfigDir::new()?;
    config.write("httpbin-ext.yaml", HTTPBIN_SERVICE_ENTRY)?;
    let control_plane = ControlPlane::start_on(
        config.path(),
        Some(&mesh_config("registry-only")),
        IpAddr::V4(external),
    )?;
    netns.capture_outbound(
        VIRTUAL_OUTBOUND,
        PROXY_UID,
        &[control_plane.xds_addr().port()],
    )?;
    let options = ProxyOptions::sleep(control_plane.channel(), dns.addr());
    let mut envoy = Envoy::start_in(&netns, &options)?;
    envoy.wait_ready(Duration::from_secs(30))?;

    let curl = |url: &str, host: &str| {
        Curl::get(url)
            .resolve(host, 80, IpAddr::V4(external))
            .in_netns(&netns)
    };
    let response = assert_eventually(Duration::from_secs(10), || {
        let response = curl("http://httpbin.org/headers", "httpbin.org").run()?;
        response.ensure_status(200)?;
        Ok(response)
    });
    let echoed = &response.json()?["headers"];
    assert_eq!(echoed["Host"], "httpbin.org");
    assert_eq!(
        echoed["X-Envoy-Decorator-Operation"], "httpbin.org:80/*",
        "{echoed}"
    );
    let requests = httpbin.requests();
    let last = requests.last().expect("httpbin.org saw the request");
    assert_eq!(last.path, "/headers");
    assert_eq!(
        last.header("x-envoy-decorator-operation"),
        Some("httpbin.org:80/*")
    );
    assert_eq!(
        last.peer.ip(),
        IpAddr::V4(netns.ns_ip()),
        "the request came from the namespace"
    );
    assert!(
        dns.queries()
            .iter()
            .any(|query| query.name == "httpbin.org"),
        "Envoy resolved httpbin.org through the test DNS"
    );
    let served = envoy.stat("cluster.outbound|80||httpbin.org.upstream_rq_completed")?;
    assert!(
        served.is_some_and(|count| count > 0),
        "Envoy routed it: {served:?}"
    );

    let seen_before = httpbin.requests().len();
    let blocked = curl("http://unknown.example/", "unknown.example").run()?;
    assert_eq!(
        (blocked.exit_code, blocked.status),
        (0, 502),
        "REGISTRY_ONLY blocks hosts outside the registry: {blocked:?}"
    );
    assert_eq!(
        httpbin.requests().len(),
        seen_before,
        "nothing reached the upstream"
    );
    ensure_captured(&envoy)
}

/// Both requests went through Envoy: `0.0.0.0_80` binds no port, so only
/// virtualOutbound's original-destination hand-off gives it connections.
fn ensure_captured(envoy: &Envoy) -> Result<()> {
    let counters = envoy.counters()?;
    let accepted = counters
        .get("listener.0.0.0.0_80.downstream_cx_total")
        .copied()
        .unwrap_or_default();
    ensure!(
        accepted >= 2,
        "0.0.0.0_80 was handed {accepted} connections: {:?}",
        counters
            .iter()
            .filter(|(name, _)| name.starts_with("listener.0.0.0.0_"))
            .collect::<Vec<_>>()
    );
    Ok(())
}
