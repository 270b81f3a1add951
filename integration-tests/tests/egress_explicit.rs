//! Blocked egress seen through the explicit proxy (`curl -x`, loopback, no
//! root) as through capture: under REGISTRY_ONLY, HTTP to an unregistered
//! host gets the same 502 and one-line body whether or not its port has a
//! listener (not 503 `no healthy upstream`), and every CONNECT target,
//! allowed or blocked, is named in the access log line as its authority.
//! Past `--max-unregistered-destinations`, unregistered hosts are counted
//! as `other`.
//!
//! The agent binds 15001: these tests run one at a time
//! ([`DataPlane::start`] waits for the previous agent).

use std::net::Ipv4Addr;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use integration_tests::control_plane::{ConfigDir, ControlPlane};
use integration_tests::curl::{Curl, CurlResponse};
use integration_tests::data_plane::DataPlane;
use integration_tests::dns::DnsServer;
use integration_tests::fixtures::{HTTPBIN_SERVICE_ENTRY, mesh_config};
use integration_tests::process::eventually;
use integration_tests::prometheus;
use integration_tests::proxy_options::ProxyOptions;
use integration_tests::tls::TestCa;
use integration_tests::upstream::Upstream;

/// How long the agent gets to write a log line.
const LOG_WAIT: Duration = Duration::from_secs(5);
/// The registered HTTP host (port 80).
const HTTPBIN: &str = "httpbin.org";
/// The registered TLS host.
const TLS_HOST: &str = "edition.cnn.com";
/// Hosts no ServiceEntry declares, asked for in this order under ALLOW_ANY.
const UNREGISTERED: [&str; 3] = ["one.vendor.test", "two.vendor.test", "three.vendor.test"];
/// A host no ServiceEntry declares.
const UNKNOWN: &str = "unknown.test";
/// A port no ServiceEntry declares: no listener for it.
const UNLISTENED_PORT: u16 = 8081;

/// The blocked reply's body for `host` (the request's authority).
fn blocked_body(host: &str) -> String {
    format!("no ServiceEntry allows {host} (REGISTRY_ONLY)\n")
}

/// A REGISTRY_ONLY mesh with httpbin.org on port 80 (so port 80 has a
/// listener) and edition.cnn.com on the HTTPS upstream's port.
struct Mesh {
    agent: DataPlane,
    _control_plane: ControlPlane,
    _config: ConfigDir,
    _dns: DnsServer,
}

impl Mesh {
    fn start(tls_port: u16) -> Result<Self> {
        Self::start_with("registry-only", tls_port, |options| options)
    }

    /// The mesh with the MeshConfig `mode` (`allow-any`, `registry-only`),
    /// its agent started with the options `agent` makes.
    fn start_with(
        mode: &str,
        tls_port: u16,
        agent: impl FnOnce(ProxyOptions) -> ProxyOptions,
    ) -> Result<Self> {
        let names = [HTTPBIN, TLS_HOST, UNKNOWN]
            .into_iter()
            .chain(UNREGISTERED)
            .map(|name| (name, Ipv4Addr::LOCALHOST));
        let dns = DnsServer::start(names)?;
        let config = ConfigDir::new()?;
        config.write("httpbin.yaml", HTTPBIN_SERVICE_ENTRY)?;
        config.write(
            "cnn.yaml",
            &format!(
                "apiVersion: networking.istio.io/v1\n\
                 kind: ServiceEntry\n\
                 metadata:\n  name: cnn\n\
                 spec:\n  hosts:\n  - {TLS_HOST}\n  ports:\n\
                 \x20 - number: {tls_port}\n    name: tls\n    protocol: TLS\n\
                 \x20 resolution: DNS\n  location: MESH_EXTERNAL\n"
            ),
        )?;
        let control_plane = ControlPlane::start(config.path(), Some(&mesh_config(mode)))?;
        let agent = DataPlane::start(&agent(ProxyOptions::sidecar(
            "sleep",
            "default",
            control_plane.channel(),
            dns.addr(),
        )))?;
        Ok(Self {
            agent,
            _control_plane: control_plane,
            _config: config,
            _dns: dns,
        })
    }

    fn curl(&self, url: &str) -> Result<CurlResponse> {
        Curl::get(url)
            .proxy(self.agent.proxy_addr())
            .max_time(Duration::from_secs(5))
            .run()
    }

    /// The access log line whose authority field is `authority`.
    fn line_for(&self, authority: &str) -> Result<String> {
        let quoted = format!("\"{authority}\"");
        self.agent
            .wait_for_access_log(LOG_WAIT, |line| line.contains(&quoted))
    }
}

#[test]
fn blocked_http_is_the_same_502_with_or_without_a_listener() -> Result<()> {
    let mesh = Mesh::start(443)?;
    // Port 80 has a listener (httpbin.org's): its block_all route answers.
    let on_listener = mesh.curl(&format!("http://{UNKNOWN}/"))?;
    // No listener on 8081: the fall-through answers, as captured traffic
    // would get it.
    let without_listener = mesh.curl(&format!("http://{UNKNOWN}:{UNLISTENED_PORT}/"))?;
    for (response, authority) in [
        (&on_listener, UNKNOWN.to_string()),
        (&without_listener, format!("{UNKNOWN}:{UNLISTENED_PORT}")),
    ] {
        ensure!(
            response.exit_code == 0 && response.status == 502,
            "{authority}: expected the blocked 502, got {response:?}"
        );
        ensure!(
            response
                .body
                .starts_with(&format!("no ServiceEntry allows {UNKNOWN}"))
                && response.body.ends_with(" (REGISTRY_ONLY)\n")
                && response.body.lines().count() == 1,
            "{authority}: the blocked body names the host: {:?}",
            response.body
        );
        ensure!(
            response
                .header("content-type")
                .is_some_and(|value| value.starts_with("text/plain")),
            "{authority}: text/plain: {:?}",
            response.headers
        );
        let line = mesh.line_for(&authority)?;
        ensure!(
            line.contains("\" 502 "),
            "{authority}: the log line is the blocked 502: {line}"
        );
    }
    ensure!(
        on_listener.body == blocked_body(UNKNOWN),
        "the body is exactly Istio's one line: {:?}",
        on_listener.body
    );
    Ok(())
}

#[test]
fn connect_targets_are_named_in_the_access_log() -> Result<()> {
    let ca = TestCa::new()?;
    let https = Upstream::https(&ca, &[TLS_HOST])?;
    let mesh = Mesh::start(https.port())?;
    let allowed_target = format!("{TLS_HOST}:{}", https.port());

    // A registered TLS host through CONNECT: allowed, named host:port.
    let allowed = eventually(Duration::from_secs(10), || {
        let response = Curl::get(https.url(TLS_HOST, "/"))
            .proxy(mesh.agent.proxy_addr())
            .cacert(ca.cert_path())
            .max_time(Duration::from_secs(5))
            .run()?;
        response.ensure_status(200)?;
        Ok(response)
    })
    .with_context(|| mesh.agent.logs())?;
    println!("allowed CONNECT: {}", allowed.status);
    let line = mesh.line_for(&allowed_target)?;
    ensure!(
        line.contains(" outbound|"),
        "an allowed CONNECT names its cluster: {line}"
    );

    // An unregistered one: refused, and still named.
    let blocked_target = format!("{UNKNOWN}:443");
    let blocked = Curl::get(format!("https://{UNKNOWN}/"))
        .proxy(mesh.agent.proxy_addr())
        .cacert(ca.cert_path())
        .max_time(Duration::from_secs(5))
        .run()?;
    ensure!(
        blocked.exit_code != 0,
        "a blocked CONNECT must not get through: {blocked:?}"
    );
    let line = mesh.line_for(&blocked_target)?;
    ensure!(
        line.contains(" BlackHoleCluster "),
        "the blocked CONNECT went to BlackHoleCluster: {line}"
    );
    Ok(())
}

#[test]
fn unregistered_destinations_past_the_cap_are_counted_as_other() -> Result<()> {
    let http = Upstream::http()?;
    let mesh = Mesh::start_with("allow-any", 443, |options| {
        options.max_unregistered_destinations(2)
    })?;
    for host in UNREGISTERED {
        mesh.curl(&http.url(host, "/"))?.ensure_status(200)?;
    }
    let text = eventually(LOG_WAIT, || {
        let text = mesh.agent.prometheus()?;
        ensure!(
            prometheus::sum(
                &text,
                "istio_requests_total",
                &[("destination_service", "other")]
            )
            .is_some(),
            "no istio_requests_total for destination_service=\"other\""
        );
        Ok(text)
    })
    .with_context(|| mesh.agent.logs())?;
    let series: Vec<&str> = text
        .lines()
        .filter(|line| line.starts_with("istio_requests_total{"))
        .collect();
    let named = |host: &str| {
        let label = format!("destination_service=\"{host}");
        series.iter().any(|line| line.contains(&label))
    };
    ensure!(
        named(UNREGISTERED[0]) && named(UNREGISTERED[1]) && !named(UNREGISTERED[2]),
        "the first two unregistered hosts have series of their own, the third is other:\n{}",
        series.join("\n")
    );
    ensure!(
        prometheus::sum(
            &text,
            "istio_requests_total",
            &[
                ("destination_service", "other"),
                ("destination_service_name", "PassthroughCluster"),
                ("egress_policy", "-"),
            ],
        ) == Some(1.0),
        "one request folded into other, PassthroughCluster's, unmarked:\n{}",
        series.join("\n")
    );
    Ok(())
}
