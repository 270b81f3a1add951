//! Istio's Grafana dashboards show our agents' traffic: the app (real
//! curl) sends HTTP to edition.cnn.com through its sidecar (`sleep` in
//! `default`) and the egress gateway (`istio-egressgateway` in
//! `istio-system`), and TLS to api.dropbox.com through its sidecar (passed
//! through by SNI); a real Prometheus scrapes both agents' status ports
//! every second, as Istio's scrape annotations say; then every query of
//! `fixtures/istio-dashboards.yaml` (Istio's Mesh, Workload and Service
//! dashboards), its variables set as a user picking the workload or service
//! would, returns the series that user would see, with the workload and
//! service names, and values that follow the traffic. The gateway's
//! Workload dashboard shows its inbound traffic too: the sidecar names the
//! gateway as destination workload, from the `istio.workload` metadata the
//! control plane puts on the gateway's endpoint.

use std::net::Ipv4Addr;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use integration_tests::control_plane::{ConfigDir, ControlPlane};
use integration_tests::curl::{Curl, Repeating};
use integration_tests::dashboards::{self, Dashboard};
use integration_tests::data_plane::DataPlane;
use integration_tests::dns::DnsServer;
use integration_tests::fixtures::{
    GatewayPort, dns_service_entry, egress_gateway_service, http_via_gateway, mesh_config,
};
use integration_tests::ports::{free_addr, free_port};
use integration_tests::process::assert_eventually;
use integration_tests::prometheus_server::{Prometheus, Sample, ScrapeTarget};
use integration_tests::proxy_options::ProxyOptions;
use integration_tests::tls::TestCa;
use integration_tests::upstream::Upstream;

mod checks;

use checks::{CHECKS, Check, Value};

const CONVERGE: Duration = Duration::from_secs(20);
/// How often Prometheus scrapes the agents.
const SCRAPE_INTERVAL: Duration = Duration::from_secs(1);
/// How long the queries get to show the traffic.
const SHOW: Duration = Duration::from_secs(60);

/// The query of `check`'s panel in `dashboards`, its variables substituted.
fn query(dashboards: &[Dashboard], check: &Check) -> Result<String> {
    let dashboard = dashboards
        .iter()
        .find(|d| d.title == check.dashboard)
        .with_context(|| format!("no dashboard {:?} in the fixture", check.dashboard))?;
    let panel = dashboard
        .panels
        .iter()
        .find(|p| p.title == check.panel && p.ref_id == check.ref_id)
        .with_context(|| {
            format!(
                "no panel {:?} ({}) in {} ({})",
                check.panel, check.ref_id, dashboard.title, dashboard.source
            )
        })?;
    dashboards::substitute(&panel.expr, check.vars)
}

/// Whether `samples` hold a series with `check`'s labels and value.
fn shows(check: &Check, samples: &[Sample]) -> Result<()> {
    let wanted = samples.iter().find(|sample| {
        check
            .labels
            .iter()
            .all(|(key, value)| sample.labels.get(*key).map(String::as_str) == Some(*value))
    });
    let Some(sample) = wanted else {
        bail!("no series with {:?} in {samples:?}", check.labels);
    };
    let value = sample.value;
    let right = match check.value {
        Value::Positive => value > 0.0,
        Value::Fraction => value > 0.0 && value < 1.0,
        Value::Finite => value.is_finite(),
    };
    ensure!(
        right,
        "{:?} expected, got {value} in {sample:?}",
        check.value
    );
    Ok(())
}

#[test]
fn istios_dashboards_show_the_agents_traffic() -> Result<()> {
    let dashboards = dashboards::dashboards()?;
    for dashboard in &dashboards {
        for panel in &dashboard.panels {
            ensure!(
                CHECKS.iter().any(|c| c.dashboard == dashboard.title
                    && c.panel == panel.title
                    && c.ref_id == panel.ref_id),
                "{} {:?} ({}) is in the fixture but never run",
                dashboard.title,
                panel.title,
                panel.ref_id
            );
        }
    }
    let queries: Vec<String> = CHECKS
        .iter()
        .map(|check| query(&dashboards, check))
        .collect::<Result<_>>()?;

    let ca = TestCa::new()?;
    let cnn = Upstream::http()?;
    let dropbox = Upstream::https(&ca, &["api.dropbox.com"])?;
    let dns = DnsServer::start([
        ("edition.cnn.com", Ipv4Addr::LOCALHOST),
        ("api.dropbox.com", Ipv4Addr::LOCALHOST),
    ])?;
    let config = ConfigDir::new()?;
    config.write(
        "gateway-service.yaml",
        &egress_gateway_service(&[GatewayPort::new(cnn.port(), "HTTP").target(free_port()?)])?,
    )?;
    config.write("cnn.yaml", &http_via_gateway(cnn.port()))?;
    config.write(
        "dropbox.yaml",
        &dns_service_entry("dropbox", "api.dropbox.com", dropbox.port(), "TLS"),
    )?;
    let control_plane = ControlPlane::start(config.path(), Some(&mesh_config("registry-only")))?;
    // The sidecar's outbound port is its own: 15001 may be another's.
    let sleep = DataPlane::start(
        &ProxyOptions::sleep(control_plane.channel(), dns.addr()).outbound_addr(free_addr()?),
    )?;
    let gateway = DataPlane::start(&ProxyOptions::egress_gateway(
        control_plane.channel(),
        dns.addr(),
    ))?;

    let through_sidecar = |url: String| {
        Curl::get(url)
            .proxy(sleep.proxy_addr())
            .max_time(Duration::from_secs(10))
    };
    let cnn_url = |path: &str| format!("http://edition.cnn.com:{}{path}", cnn.port());
    let tls = through_sidecar(format!(
        "https://api.dropbox.com:{}/politics",
        dropbox.port()
    ))
    .cacert(ca.cert_path());
    let politics = through_sidecar(cnn_url("/politics"));
    assert_eventually(CONVERGE, || politics.run()?.ensure_status(200).cloned());
    assert_eventually(CONVERGE, || tls.run()?.ensure_status(200).cloned());
    // Each round: a 200, a 404 and a 503 through the sidecar and the
    // gateway, and a TLS connection through the sidecar.
    let traffic = Repeating::start(
        vec![
            politics,
            through_sidecar(cnn_url("/status/404")),
            through_sidecar(cnn_url("/status/503")),
            tls,
        ],
        Duration::from_millis(100),
    );

    let mut prometheus = Prometheus::start(
        &[
            ScrapeTarget {
                addr: sleep.status_addr(),
                pod: "sleep".into(),
                namespace: "default".into(),
            },
            ScrapeTarget {
                addr: gateway.status_addr(),
                pod: "istio-egressgateway".into(),
                namespace: "istio-system".into(),
            },
        ],
        SCRAPE_INTERVAL,
    )?;
    prometheus.wait_until_scraped(CONVERGE)?;

    // Each query must show the traffic once; a rate of the last two
    // scrapes can miss it now and then, so each is asked again until then.
    let deadline = Instant::now() + SHOW;
    let mut pending: Vec<usize> = (0..CHECKS.len()).collect();
    let mut last_errors = Vec::new();
    while !pending.is_empty() && Instant::now() < deadline {
        last_errors.clear();
        pending.retain(|&i| {
            let check = &CHECKS[i];
            match prometheus
                .query(&queries[i])
                .and_then(|samples| shows(check, &samples))
            {
                Ok(()) => false,
                Err(error) => {
                    last_errors.push(format!(
                        "{} / {} ({}): {}\n  {error:#}",
                        check.dashboard, check.panel, check.ref_id, queries[i]
                    ));
                    true
                }
            }
        });
        thread::sleep(SCRAPE_INTERVAL);
    }
    drop(traffic);
    ensure!(
        pending.is_empty(),
        "after {SHOW:?}, {} of {} dashboard queries still show nothing right:\n{}\nPrometheus:\n{}",
        pending.len(),
        CHECKS.len(),
        last_errors.join("\n"),
        prometheus.logs()
    );
    Ok(())
}
