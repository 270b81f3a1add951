//! Only the egress gateway's service account makes a proxy an endpoint of
//! `istio-egressgateway.istio-system.svc.cluster.local`: proxies that claim
//! the gateway's labels — one with a sidecar's service account and its own
//! valid token, one over the plaintext port claiming the gateway's service
//! account too — get the gateway's config but never become its endpoints,
//! and the app's sidecar never routes to them, even when the real gateway
//! is gone.
//!
//! The sidecar and the real gateway run on loopback (the app uses the
//! sidecar as its proxy); each impostor runs in a network namespace of its
//! own (so it can bind the gateway's port too), claiming the namespace's
//! address. Needs root: see `netns::require_root`.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use integration_tests::control_channel::ControlChannel;
use integration_tests::control_plane::{ConfigDir, ControlPlane};
use integration_tests::curl::Curl;
use integration_tests::data_plane::DataPlane;
use integration_tests::dns::DnsServer;
use integration_tests::fixtures::{
    GatewayPort, egress_gateway_service, http_via_gateway, mesh_config,
};
use integration_tests::netns::{NetNs, require_root};
use integration_tests::ports::free_port;
use integration_tests::process::{assert_eventually, eventually};
use integration_tests::proxy_options::ProxyOptions;
use integration_tests::upstream::Upstream;

const CONVERGE: Duration = Duration::from_secs(20);
const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// An impostor gateway in a namespace of its own, with the DNS server it
/// resolves through on the host end of its veth. Drops the agent first.
struct Impostor {
    agent: DataPlane,
    _dns: DnsServer,
    _netns: NetNs,
}

impl Impostor {
    /// Istio's egress gateway as `options` describe it, at the namespace's
    /// address, reaching the control plane through `control`.
    fn start(
        control: ControlChannel,
        options: impl FnOnce(ProxyOptions) -> ProxyOptions,
    ) -> Result<Self> {
        let netns = NetNs::new()?;
        let host = netns.host_ip();
        let dns = DnsServer::start_on(host, [("edition.cnn.com", host)])?;
        let gateway = ProxyOptions::egress_gateway(control.via(IpAddr::V4(host)), dns.addr())
            .ip(IpAddr::V4(netns.ns_ip()));
        let agent = DataPlane::start_in(&netns, &options(gateway))?;
        Ok(Self {
            agent,
            _dns: dns,
            _netns: netns,
        })
    }
}

/// The endpoints the sidecar holds for `cluster`.
fn endpoints(sidecar: &DataPlane, cluster: &str) -> Result<BTreeSet<String>> {
    let resources = sidecar.dynamic_resources()?;
    Ok(resources
        .endpoints
        .get(cluster)
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .collect())
}

#[test]
fn gateway_labels_without_the_gateways_service_account_make_no_endpoint() -> Result<()> {
    if !require_root("gateway_labels_without_the_gateways_service_account_make_no_endpoint") {
        return Ok(());
    }
    let cnn = Upstream::http()?;
    let port = cnn.port();
    let target = free_port()?;
    let dns = DnsServer::start([("edition.cnn.com", Ipv4Addr::LOCALHOST)])?;
    let config = ConfigDir::new()?;
    config.write(
        "gateway-service.yaml",
        &egress_gateway_service(&[GatewayPort::new(port, "HTTP").target(target)])?,
    )?;
    config.write("cnn.yaml", &http_via_gateway(port))?;
    let control_plane = ControlPlane::options(config.path())
        .mesh(Some(&mesh_config("registry-only")))
        .xds_ip(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
        .plaintext()
        .start()?;
    let plaintext_addr = control_plane
        .plaintext_addr()
        .context("started with a plaintext port")?;

    // A valid token, for a sidecar's service account of istio-system.
    let with_sidecar_account = Impostor::start(control_plane.channel(), |gateway| {
        gateway.service_account("sleep")
    })?;
    // The gateway's own service account claimed, without a token.
    let over_plaintext =
        Impostor::start(ControlChannel::plaintext(plaintext_addr), |gateway| gateway)?;
    let impostors = [&with_sidecar_account, &over_plaintext];

    let local = control_plane.channel().via(LOCALHOST);
    let gateway = DataPlane::start(&ProxyOptions::egress_gateway(local.clone(), dns.addr()))?;
    let sidecar = DataPlane::start(&ProxyOptions::sleep(local, dns.addr()))?;
    let real = BTreeSet::from([SocketAddr::new(LOCALHOST, target).to_string()]);
    let clusters = [
        format!("outbound|{port}||istio-egressgateway.istio-system.svc.cluster.local"),
        format!("outbound|{port}|cnn|istio-egressgateway.istio-system.svc.cluster.local"),
    ];
    for cluster in &clusters {
        let held = eventually(CONVERGE, || {
            let held = endpoints(&sidecar, cluster)?;
            ensure!(!held.is_empty(), "no endpoint of {cluster} yet");
            Ok(held)
        })?;
        ensure!(
            held == real,
            "{cluster}: only the real gateway is an endpoint, got {held:?}"
        );
    }

    let url = format!("http://edition.cnn.com:{port}/politics");
    let curl = || {
        Curl::get(&url)
            .proxy(sidecar.proxy_addr())
            .max_time(Duration::from_secs(10))
            .run()
    };
    for _ in 0..5 {
        assert_eventually(CONVERGE, || curl()?.ensure_status(200).cloned());
    }
    gateway.wait_for_access_log(CONVERGE, |line| {
        line.contains("\"GET /politics HTTP/1.1\" 200")
    })?;

    // The real gateway goes away: its endpoint with it, and the sidecar
    // has nowhere to send the request, rather than an impostor.
    drop(gateway);
    assert_eventually(CONVERGE, || {
        let response = curl()?;
        ensure!(
            (response.status, response.body.as_str()) == (503, "no healthy upstream"),
            "expected 503 \"no healthy upstream\", got {} {:?}",
            response.status,
            response.body
        );
        Ok(())
    });
    for cluster in &clusters {
        let held = endpoints(&sidecar, cluster)?;
        ensure!(held.is_empty(), "{cluster} still has {held:?}");
    }
    for impostor in impostors {
        let served = impostor.agent.access_log();
        ensure!(
            served.is_empty(),
            "an impostor was sent traffic: {served:#?}"
        );
    }
    Ok(())
}
