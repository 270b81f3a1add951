//! A real Envoy 1.40 as the control plane's client over ADS: it must accept
//! every resource it is sent (no NACK, no rejected update of any type), hold
//! what Istio would give it, and pick up config changes while connected.
//!
//! Sidecars run in a network namespace of their own when the tests run as
//! root (as in CI), so their virtualOutbound listener on 15001 never clashes
//! with another test's; the gateway listens on a free port on the host.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use integration_tests::config_dump::DynamicResources;
use integration_tests::control_plane::{ConfigDir, ControlPlane};
use integration_tests::curl::Curl;
use integration_tests::dns::DnsServer;
use integration_tests::envoy::Envoy;
use integration_tests::fixtures::{
    CNN_TLS_SERVICE_ENTRY, GatewayPort, HTTPBIN_SERVICE_ENTRY, egress_gateway_service,
    example_mesh, mesh_config,
};
use integration_tests::netns::SidecarHost;
use integration_tests::ports;
use integration_tests::process::assert_eventually;
use integration_tests::proxy_options::ProxyOptions;

/// How long Envoy gets to connect and go live.
const READY: Duration = Duration::from_secs(30);
/// How long a resource may take to show up in Envoy's config dump.
const CONVERGE: Duration = Duration::from_secs(10);

/// Istio's egress tasks on httpbin.org with a 3s timeout, sent to subset
/// `v1` of a DestinationRule that sets a traffic policy at both levels.
const HTTPBIN_TRAFFIC_MANAGEMENT: &str =
    include_str!("../fixtures/httpbin-traffic-management.yaml");

/// The test DNS server, on `ip`, that Envoy resolves the walkthrough's
/// names through; nothing here sends traffic, so every name points at
/// loopback.
fn walkthrough_dns(ip: Ipv4Addr) -> Result<DnsServer> {
    DnsServer::start_on(
        ip,
        ["httpbin.org", "edition.cnn.com", "www.baidu.com"].map(|name| (name, Ipv4Addr::LOCALHOST)),
    )
}

/// A sidecar Envoy of workload `sleep` in `default`, fed by a control plane
/// serving `config` (and `mesh`), in a [`SidecarHost`] of its own. Dropped
/// in reverse order: Envoy, then the servers, then the namespace.
struct Sidecar {
    envoy: Envoy,
    control_plane: ControlPlane,
    _dns: DnsServer,
    _host: SidecarHost,
}

impl Sidecar {
    fn start(config: &ConfigDir, mesh: Option<&Path>) -> Result<Self> {
        let host = SidecarHost::new()?;
        let control_plane =
            ControlPlane::start_on(config.path(), mesh, IpAddr::V4(host.server_ip()))?;
        let dns = walkthrough_dns(host.server_ip())?;
        let options = ProxyOptions::sleep(control_plane.channel(), dns.addr());
        assert_eq!(
            options.node.to_string(),
            "sidecar~127.0.0.1~sleep.default~default.svc.cluster.local"
        );
        let mut envoy = Envoy::start_sidecar(&host, &options)?;
        envoy.wait_ready(READY)?;
        Ok(Self {
            envoy,
            control_plane,
            _dns: dns,
            _host: host,
        })
    }
}

/// Fails, with every rejection Envoy recorded, unless Envoy rejected no
/// update of any type (every `*update_rejected` stat is 0, no resource has
/// an `error_state`). Returns the counters.
fn ensure_nothing_rejected(envoy: &Envoy) -> Result<BTreeMap<String, u64>> {
    let counters = envoy.counters()?;
    let rejected: Vec<(&String, &u64)> = counters
        .iter()
        .filter(|(name, value)| name.ends_with("update_rejected") && **value > 0)
        .collect();
    let errors = envoy.dynamic_resources()?.errors;
    ensure!(
        rejected.is_empty() && errors.is_empty(),
        "Envoy rejected config: {rejected:?}\nerror states: {errors:#?}\nEnvoy's log lines about it:\n{}",
        rejection_lines(&envoy.logs())
    );
    Ok(counters)
}

/// The lines where Envoy says why it rejected an xDS update.
fn rejection_lines(logs: &str) -> String {
    logs.lines()
        .filter(|line| line.contains("rejected") || line.contains("gRPC config for"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Waits until Envoy's config dump satisfies `check`.
fn converged(envoy: &Envoy, check: impl Fn(&DynamicResources) -> Result<()>) -> DynamicResources {
    assert_eventually(CONVERGE, || {
        let resources = envoy.dynamic_resources()?;
        check(&resources).with_context(|| format!("Envoy holds {resources:#?}"))?;
        Ok(resources)
    })
}

fn ensure_has(
    resources: &DynamicResources,
    clusters: &[&str],
    listeners: &[&str],
    routes: &[&str],
) -> Result<()> {
    for cluster in clusters {
        ensure!(
            resources.clusters.contains_key(*cluster),
            "no cluster {cluster}"
        );
    }
    for listener in listeners {
        ensure!(
            resources.listeners.contains_key(*listener),
            "no listener {listener}"
        );
    }
    for route in routes {
        ensure!(
            resources.routes.contains_key(*route),
            "no route configuration {route}"
        );
    }
    Ok(())
}

fn counter(counters: &BTreeMap<String, u64>, name: &str) -> Result<u64> {
    counters
        .get(name)
        .copied()
        .with_context(|| format!("Envoy has no stat {name}"))
}

/// The counters whose names end with `suffix`.
fn counters_ending(counters: &BTreeMap<String, u64>, suffix: &str) -> Vec<(String, u64)> {
    counters
        .iter()
        .filter(|(name, _)| name.ends_with(suffix))
        .map(|(name, value)| (name.clone(), *value))
        .collect()
}

#[test]
fn sidecar_accepts_every_resource_type() -> Result<()> {
    let config = ConfigDir::new()?;
    config.write("httpbin-serviceentry.yaml", HTTPBIN_SERVICE_ENTRY)?;
    config.write("httpbin-traffic.yaml", HTTPBIN_TRAFFIC_MANAGEMENT)?;
    config.write("cnn-tls.yaml", CNN_TLS_SERVICE_ENTRY)?;
    config.write(
        "istio-egressgateway.yaml",
        &egress_gateway_service(&[GatewayPort::new(80, "HTTP"), GatewayPort::new(443, "HTTPS")])?,
    )?;
    let sidecar = Sidecar::start(&config, Some(&mesh_config("registry-only")))?;
    let (envoy, control_plane) = (&sidecar.envoy, &sidecar.control_plane);

    let gateway_eds = "outbound|80||istio-egressgateway.istio-system.svc.cluster.local";
    let resources = converged(envoy, |resources| {
        ensure_has(
            resources,
            &[
                "outbound|80||httpbin.org",
                "outbound|80|v1|httpbin.org",
                "outbound|443||edition.cnn.com",
                gateway_eds,
                "PassthroughCluster",
                "BlackHoleCluster",
            ],
            &["virtualOutbound", "0.0.0.0_80", "0.0.0.0_443"],
            &["80"],
        )
    });
    assert_eq!(
        resources.listeners["virtualOutbound"]["address"]["socket_address"]["port_value"],
        15001
    );

    let counters = assert_eventually(CONVERGE, || {
        let counters = ensure_nothing_rejected(envoy)?;
        for stat in [
            "cluster_manager.cds.update_success",
            "listener_manager.lds.update_success",
        ] {
            ensure!(counter(&counters, stat)? > 0, "{stat} is 0");
        }
        let rds = counters_ending(&counters, ".rds.80.update_success");
        ensure!(
            !rds.is_empty() && rds.iter().all(|(_, value)| *value > 0),
            "RDS of route 80 not applied: {rds:?}"
        );
        let eds = counter(&counters, &format!("cluster.{gateway_eds}.update_success"))?;
        ensure!(eds > 0, "EDS of {gateway_eds} not applied");
        Ok(counters)
    });
    for stat in [
        "cluster_manager.cds.update_rejected",
        "listener_manager.lds.update_rejected",
    ] {
        assert_eq!(counter(&counters, stat)?, 0, "{stat}");
    }
    assert!(
        !counters_ending(&counters, ".rds.80.update_rejected").is_empty(),
        "Envoy has no RDS stats for route 80"
    );
    assert_eq!(
        counter(&counters, &format!("cluster.{gateway_eds}.update_rejected"))?,
        0
    );
    let rejects = control_plane.metric("pilot_total_xds_rejects")?;
    assert_eq!(
        rejects.unwrap_or_default(),
        0.0,
        "the control plane saw NACKs"
    );
    Ok(())
}

#[test]
fn egress_gateway_accepts_its_config() -> Result<()> {
    let listen_port = ports::free_port()?;
    let config = ConfigDir::new()?;
    for file in ["httpbin.yaml", "baidu.yaml", "cnn-via-egress-gateway.yaml"] {
        let yaml = std::fs::read_to_string(example_mesh().join(file))
            .with_context(|| format!("reading examples/mesh/{file}"))?;
        config.write(file, &yaml)?;
    }
    config.write(
        "egressgateway-service.yaml",
        &egress_gateway_service(&[
            GatewayPort::new(80, "HTTP").target(listen_port),
            GatewayPort::new(443, "HTTPS"),
        ])?,
    )?;
    let control_plane = ControlPlane::start(config.path(), Some(&mesh_config("registry-only")))?;
    let dns = walkthrough_dns(Ipv4Addr::LOCALHOST)?;
    let options = ProxyOptions::egress_gateway(control_plane.channel(), dns.addr());
    let mut envoy = Envoy::start(&options)?;
    envoy.wait_ready(READY)?;

    let listener = format!("0.0.0.0_{listen_port}");
    let route = format!("http.{listen_port}");
    let resources = converged(&envoy, |resources| {
        ensure_has(
            resources,
            &["outbound|80||edition.cnn.com"],
            &[&listener],
            &[&route],
        )
    });
    assert_eq!(
        resources.listeners[&listener]["address"]["socket_address"]["port_value"],
        listen_port
    );
    let counters = assert_eventually(CONVERGE, || {
        let counters = ensure_nothing_rejected(&envoy)?;
        ensure!(counter(&counters, "listener_manager.lds.update_success")? > 0);
        Ok(counters)
    });
    assert_eq!(
        counter(&counters, "cluster_manager.cds.update_rejected")?,
        0
    );
    assert_eq!(
        counter(&counters, "listener_manager.lds.update_rejected")?,
        0
    );

    // The listener is bound and serves HTTP: a host no Gateway server
    // admits gets Envoy's own 404, with the server name istiod gives
    // gateways.
    let response = Curl::get(format!("http://127.0.0.1:{listen_port}/"))
        .header("Host", "unknown.example")
        .run()?;
    assert_eq!(response.status, 404, "{response:?}");
    assert_eq!(response.header("server"), Some("istio-envoy"));
    Ok(())
}

#[test]
fn connected_envoy_gets_a_new_service_entry_pushed() -> Result<()> {
    let config = ConfigDir::new()?;
    config.write("httpbin.yaml", HTTPBIN_SERVICE_ENTRY)?;
    let sidecar = Sidecar::start(&config, None)?;
    let (envoy, control_plane) = (&sidecar.envoy, &sidecar.control_plane);
    let before = converged(envoy, |resources| {
        ensure_has(
            resources,
            &["outbound|80||httpbin.org"],
            &["0.0.0.0_80"],
            &["80"],
        )
    });
    assert!(
        !before
            .clusters
            .contains_key("outbound|443||edition.cnn.com")
    );
    let version_before = control_plane
        .metric("config_snapshot_version")?
        .context("no config_snapshot_version")?;
    let updates_before = envoy
        .stat("cluster_manager.cds.update_success")?
        .context("no CDS stats")?;

    config.write("cnn.yaml", CNN_TLS_SERVICE_ENTRY)?;
    let written = Instant::now();
    assert_eventually(CONVERGE, || {
        let resources = envoy.dynamic_resources()?;
        ensure_has(
            &resources,
            &["outbound|443||edition.cnn.com"],
            &["0.0.0.0_443"],
            &[],
        )
    });
    eprintln!(
        "Envoy had the new cluster {:?} after the write",
        written.elapsed()
    );

    let version_after = control_plane.metric("config_snapshot_version")?;
    assert!(
        version_after > Some(version_before),
        "config_snapshot_version went from {version_before} to {version_after:?}"
    );
    let counters = ensure_nothing_rejected(envoy)?;
    assert!(counter(&counters, "cluster_manager.cds.update_success")? > updates_before);
    Ok(())
}
