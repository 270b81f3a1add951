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

const CONVERGE: Duration = Duration::from_secs(20);
/// How often Prometheus scrapes the agents.
const SCRAPE_INTERVAL: Duration = Duration::from_secs(1);
/// How long the queries get to show the traffic.
const SHOW: Duration = Duration::from_secs(60);

const GATEWAY_SERVICE: &str = "istio-egressgateway.istio-system.svc.cluster.local";

/// A dashboard's variables as a user sets them.
type Vars = &'static [(&'static str, &'static str)];

/// The Workload dashboard on the sidecar, its destination the gateway
/// (where the sidecar sends edition.cnn.com's HTTP).
const SLEEP_TO_GATEWAY: Vars = &[
    ("workload", "sleep"),
    ("namespace", "default"),
    ("qrep", "source"),
    ("dstsvc", GATEWAY_SERVICE),
];
/// The Workload dashboard on the sidecar, its destination the TLS service.
const SLEEP_TO_DROPBOX: Vars = &[
    ("workload", "sleep"),
    ("namespace", "default"),
    ("qrep", "source"),
    ("dstsvc", "api.dropbox.com"),
];
/// The Workload dashboard on the egress gateway.
const GATEWAY_TO_CNN: Vars = &[
    ("workload", "istio-egressgateway"),
    ("namespace", "istio-system"),
    ("qrep", "source"),
    ("dstsvc", "edition.cnn.com"),
];
/// The Workload dashboard on the egress gateway's inbound side, the
/// sidecar picked as its client.
const GATEWAY_INBOUND: Vars = &[
    ("workload", "istio-egressgateway"),
    ("namespace", "istio-system"),
    ("qrep", "source"),
    ("srcns", "default"),
    ("srcwl", "sleep"),
];
/// The Service dashboard on edition.cnn.com, as its clients report it.
const CNN_SERVICE: Vars = &[
    ("service", "edition.cnn.com"),
    ("qrep", "source"),
    ("srcns", "istio-system"),
];
/// The Service dashboard on api.dropbox.com.
const DROPBOX_SERVICE: Vars = &[("service", "api.dropbox.com"), ("qrep", "source")];

/// What a query's value must be, given the test's traffic.
#[derive(Debug, Clone, Copy)]
enum Value {
    /// A rate, a latency or a size the traffic makes non-zero.
    Positive,
    /// A success rate: the traffic holds 503s, so above 0 and below 1.
    Fraction,
    /// Any number (the median size of empty request bodies).
    Finite,
}

/// One query of a dashboard as the test runs it: the panel (title and
/// refId), the variables, labels some series must carry, and its value.
struct Check {
    dashboard: &'static str,
    panel: &'static str,
    ref_id: &'static str,
    vars: Vars,
    labels: &'static [(&'static str, &'static str)],
    value: Value,
}

const fn check(
    dashboard: &'static str,
    (panel, ref_id): (&'static str, &'static str),
    vars: Vars,
    labels: &'static [(&'static str, &'static str)],
    value: Value,
) -> Check {
    Check {
        dashboard,
        panel,
        ref_id,
        vars,
        labels,
        value,
    }
}

const MESH: &str = "Istio Mesh Dashboard";
const WORKLOAD: &str = "Istio Workload Dashboard";
const SERVICE: &str = "Istio Service Dashboard";
const CNN: &[(&str, &str)] = &[("destination_service", "edition.cnn.com")];
const DROPBOX: &[(&str, &str)] = &[("destination_service", "api.dropbox.com")];
const TO_GATEWAY: &[(&str, &str)] = &[("destination_service", GATEWAY_SERVICE)];
const FROM_SLEEP: &[(&str, &str)] = &[
    ("source_workload", "sleep"),
    ("source_workload_namespace", "default"),
];

use Value::{Finite, Fraction, Positive};

const CHECKS: &[Check] = &[
    check(MESH, ("Traffic Volume", "A"), &[], &[], Positive),
    check(MESH, ("Success Rate", "A"), &[], &[], Fraction),
    check(MESH, ("4xxs", "A"), &[], &[], Positive),
    check(MESH, ("5xxs", "A"), &[], &[], Positive),
    check(
        MESH,
        ("HTTP/gRPC Workloads", "requests"),
        &[],
        CNN,
        Positive,
    ),
    check(
        MESH,
        ("HTTP/gRPC Workloads", "requests"),
        &[],
        TO_GATEWAY,
        Positive,
    ),
    check(MESH, ("HTTP/gRPC Workloads", "p50"), &[], &[], Positive),
    check(MESH, ("HTTP/gRPC Workloads", "p90"), &[], &[], Positive),
    check(MESH, ("HTTP/gRPC Workloads", "p99"), &[], &[], Positive),
    check(MESH, ("HTTP/gRPC Workloads", "success"), &[], &[], Fraction),
    check(MESH, ("TCP Workloads", "recv"), &[], DROPBOX, Positive),
    check(MESH, ("TCP Workloads", "sent"), &[], DROPBOX, Positive),
    check(
        WORKLOAD,
        ("Variable: workload", "query"),
        &[("namespace", "default")],
        &[("source_workload", "sleep")],
        Positive,
    ),
    check(
        WORKLOAD,
        ("Variable: workload", "query"),
        &[("namespace", "istio-system")],
        &[("source_workload", "istio-egressgateway")],
        Positive,
    ),
    check(
        WORKLOAD,
        ("Variable: workload", "query"),
        &[("namespace", "istio-system")],
        &[("destination_workload", "istio-egressgateway")],
        Positive,
    ),
    check(
        WORKLOAD,
        ("Variable: namespace", "query"),
        &[],
        &[("destination_workload_namespace", "istio-system")],
        Positive,
    ),
    check(
        WORKLOAD,
        ("Variable: srcns", "query"),
        GATEWAY_INBOUND,
        &[("source_workload_namespace", "default")],
        Positive,
    ),
    check(
        WORKLOAD,
        ("Variable: srcwl", "query"),
        GATEWAY_INBOUND,
        &[("source_workload", "sleep")],
        Positive,
    ),
    check(
        WORKLOAD,
        ("Incoming Request Volume", "A"),
        GATEWAY_INBOUND,
        &[],
        Positive,
    ),
    check(
        WORKLOAD,
        ("Incoming Success Rate (non-5xx responses)", "A"),
        GATEWAY_INBOUND,
        &[],
        Fraction,
    ),
    check(
        WORKLOAD,
        ("Request Duration", "A"),
        GATEWAY_INBOUND,
        &[],
        Positive,
    ),
    check(
        WORKLOAD,
        ("Incoming Requests By Source And Response Code", "B"),
        GATEWAY_INBOUND,
        &[
            ("source_workload", "sleep"),
            ("source_workload_namespace", "default"),
            ("response_code", "503"),
        ],
        Positive,
    ),
    check(
        WORKLOAD,
        ("Incoming Success Rate (non-5xx responses) By Source", "B"),
        GATEWAY_INBOUND,
        FROM_SLEEP,
        Fraction,
    ),
    check(
        WORKLOAD,
        ("Incoming Request Duration By Source", "E"),
        GATEWAY_INBOUND,
        FROM_SLEEP,
        Positive,
    ),
    check(
        WORKLOAD,
        ("Incoming Request Size By Source", "E"),
        GATEWAY_INBOUND,
        FROM_SLEEP,
        Finite,
    ),
    check(
        WORKLOAD,
        ("Response Size By Source", "E"),
        GATEWAY_INBOUND,
        FROM_SLEEP,
        Positive,
    ),
    check(
        WORKLOAD,
        ("Variable: dstsvc", "query"),
        SLEEP_TO_GATEWAY,
        TO_GATEWAY,
        Positive,
    ),
    check(
        WORKLOAD,
        ("Variable: dstsvc", "query"),
        SLEEP_TO_DROPBOX,
        DROPBOX,
        Positive,
    ),
    check(
        WORKLOAD,
        ("Variable: dstsvc", "query"),
        GATEWAY_TO_CNN,
        CNN,
        Positive,
    ),
    check(
        WORKLOAD,
        ("TCP Client Traffic", "A"),
        SLEEP_TO_DROPBOX,
        &[],
        Positive,
    ),
    check(
        WORKLOAD,
        ("Outgoing Requests By Destination And Response Code", "B"),
        SLEEP_TO_GATEWAY,
        &[
            ("destination_service", GATEWAY_SERVICE),
            ("response_code", "503"),
        ],
        Positive,
    ),
    check(
        WORKLOAD,
        ("Outgoing Requests By Destination And Response Code", "B"),
        GATEWAY_TO_CNN,
        &[
            ("destination_service", "edition.cnn.com"),
            ("response_code", "200"),
        ],
        Positive,
    ),
    check(
        WORKLOAD,
        (
            "Outgoing Success Rate (non-5xx responses) By Destination",
            "B",
        ),
        GATEWAY_TO_CNN,
        CNN,
        Fraction,
    ),
    check(
        WORKLOAD,
        ("Outgoing Request Duration By Destination", "E"),
        SLEEP_TO_GATEWAY,
        TO_GATEWAY,
        Positive,
    ),
    check(
        WORKLOAD,
        ("Outgoing Request Size By Destination", "E"),
        GATEWAY_TO_CNN,
        CNN,
        Finite,
    ),
    check(
        WORKLOAD,
        ("Response Size By Destination", "E"),
        GATEWAY_TO_CNN,
        CNN,
        Positive,
    ),
    check(
        WORKLOAD,
        ("Bytes Sent on Outgoing TCP Connection", "B"),
        SLEEP_TO_DROPBOX,
        DROPBOX,
        Positive,
    ),
    check(
        WORKLOAD,
        ("Bytes Received from Outgoing TCP Connection", "B"),
        SLEEP_TO_DROPBOX,
        DROPBOX,
        Positive,
    ),
    check(SERVICE, ("Variable: service", "query"), &[], CNN, Positive),
    check(
        SERVICE,
        ("Variable: service", "query"),
        &[],
        DROPBOX,
        Positive,
    ),
    check(
        SERVICE,
        ("Variable: srcwl", "query"),
        CNN_SERVICE,
        &[("source_workload", "istio-egressgateway")],
        Positive,
    ),
    check(
        SERVICE,
        ("Client Request Volume", "A"),
        CNN_SERVICE,
        &[],
        Positive,
    ),
    check(
        SERVICE,
        ("Client Success Rate (non-5xx responses)", "A"),
        CNN_SERVICE,
        &[],
        Fraction,
    ),
    check(
        SERVICE,
        ("Client Request Duration", "A"),
        CNN_SERVICE,
        &[],
        Positive,
    ),
    check(
        SERVICE,
        ("TCP Received Bytes", "A"),
        DROPBOX_SERVICE,
        &[],
        Positive,
    ),
];

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
