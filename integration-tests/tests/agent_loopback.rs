//! Istio's egress tasks through our own agent (`data-plane proxy sidecar`)
//! fed by our control plane, on loopback: real curl is the app and uses the
//! agent's `virtualOutbound` (127.0.0.1:15001) as its proxy (`curl -x`;
//! HTTPS goes through CONNECT), which routes every request as if that
//! destination had been captured. The "external" services are local
//! upstreams on free ports, so each ServiceEntry port is its upstream's
//! port (`httpbin.org:<port>`), and the agent resolves their names through
//! the test DNS server only.
//!
//! Every sidecar agent binds 15001, so these tests run one at a time
//! ([`DataPlane::start`] waits for the previous agent) and all live in this
//! one test binary.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use data_plane::testing::auto_ads::AutoAds;
use data_plane::testing::resources::{pack, resources_from_dump};
use integration_tests::control_channel::ControlChannel;
use integration_tests::control_plane::{self, ConfigDir, ControlPlane, DumpType};
use integration_tests::curl::{Curl, CurlResponse};
use integration_tests::data_plane::DataPlane;
use integration_tests::dns::DnsServer;
use integration_tests::fixtures::mesh_config;
use integration_tests::process::assert_eventually;
use integration_tests::proxy_options::ProxyOptions;
use integration_tests::tls::TestCa;
use integration_tests::upstream::Upstream;
use serde_json::{Value, json};
use shared::type_url::{CLUSTER, ROUTE};

/// How long a config change may take to reach the agent.
const CONVERGE: Duration = Duration::from_secs(10);

/// The names the "external" services go by; all are on 127.0.0.1.
const EXTERNAL_NAMES: [&str; 5] = [
    "httpbin.org",
    "www.baidu.com",
    "edition.cnn.com",
    "somehost.test",
    "unknown.test",
];

/// One test's mesh: the config directory, the control plane serving it,
/// the DNS server and the sidecar agent (dropped first).
struct Mesh {
    agent: DataPlane,
    control_plane: ControlPlane,
    config: ConfigDir,
    dns: DnsServer,
}

impl Mesh {
    /// Serves `files` (name, YAML) with the MeshConfig `mode` (`allow-any`
    /// or `registry-only`) to a sidecar agent, once it is ready.
    fn start(mode: &str, files: &[(&str, String)]) -> Result<Self> {
        let dns = DnsServer::start(EXTERNAL_NAMES.map(|name| (name, Ipv4Addr::LOCALHOST)))?;
        let config = ConfigDir::new()?;
        for (file, contents) in files {
            config.write(file, contents)?;
        }
        let control_plane = ControlPlane::start(config.path(), Some(&mesh_config(mode)))?;
        let agent = DataPlane::start(&sleep_sidecar(control_plane.channel(), &dns))?;
        Ok(Self {
            agent,
            control_plane,
            config,
            dns,
        })
    }

    /// `curl -x 127.0.0.1:15001 <url>`.
    fn curl(&self, url: &str) -> Curl {
        Curl::get(url).proxy(self.agent.proxy_addr())
    }
}

fn sleep_sidecar(control: ControlChannel, dns: &DnsServer) -> ProxyOptions {
    ProxyOptions::sidecar("sleep", "default", control, dns.addr())
}

/// A MESH_EXTERNAL ServiceEntry for `host` with `ports` (number, name,
/// protocol), resolved by DNS.
fn service_entry(name: &str, host: &str, ports: &[(u16, &str, &str)]) -> String {
    let mut yaml = format!(
        "apiVersion: networking.istio.io/v1\n\
         kind: ServiceEntry\n\
         metadata:\n  name: {name}\n\
         spec:\n  hosts:\n  - {host}\n  ports:\n"
    );
    for (number, port_name, protocol) in ports {
        yaml.push_str(&format!(
            "  - number: {number}\n    name: {port_name}\n    protocol: {protocol}\n"
        ));
    }
    yaml.push_str("  resolution: DNS\n  location: MESH_EXTERNAL\n");
    yaml
}

/// Istio's `httpbin-ext` ServiceEntry, on the upstream's port.
fn httpbin_entry(port: u16) -> String {
    service_entry("httpbin-ext", "httpbin.org", &[(port, "http", "HTTP")])
}

/// The access log line of the request for `request_line` (`GET /x`).
fn access_line(agent: &DataPlane, request_line: &str) -> Result<String> {
    let quoted = format!("\"{request_line} HTTP/1.1\"");
    agent.wait_for_access_log(Duration::from_secs(5), |line| line.contains(&quoted))
}

/// Fails the test unless curl got a 200, with a panic, so that every
/// process prints its logs.
fn expect_ok(response: &CurlResponse) {
    if let Err(err) = response.ensure_status(200) {
        panic!("{err:#}");
    }
}

/// Runs `curl`, returning the response and how long it took.
fn timed(curl: &Curl) -> Result<(CurlResponse, Duration)> {
    let started = Instant::now();
    let response = curl.run()?;
    Ok((response, started.elapsed()))
}

#[test]
fn allow_any_passes_unknown_hosts_through() -> Result<()> {
    let ca = TestCa::new()?;
    let http = Upstream::http()?;
    let https = Upstream::https(&ca, &["somehost.test"])?;
    let mesh = Mesh::start("allow-any", &[])?;

    let response = mesh.curl(&http.url("somehost.test", "/headers")).run()?;
    expect_ok(&response);
    let seen = http.requests();
    let request = seen.last().expect("the upstream saw the request");
    assert_eq!(request.path, "/headers");
    assert_eq!(
        request.header("host"),
        Some(format!("somehost.test:{}", http.port()).as_str())
    );
    assert_eq!(
        request.header("x-envoy-decorator-operation"),
        None,
        "passed through, not routed by a ServiceEntry's route"
    );

    let response = mesh
        .curl(&https.url("somehost.test", "/headers"))
        .cacert(ca.cert_path())
        .run()?;
    expect_ok(&response);
    let hellos = https.tls_hellos();
    assert!(
        hellos
            .iter()
            .any(|hello| hello.sni.as_deref() == Some("somehost.test")),
        "curl's own TLS reached the upstream: {hellos:?}"
    );
    assert!(
        mesh.dns
            .queries()
            .iter()
            .any(|query| query.name == "somehost.test"),
        "the agent resolved the host through the test DNS"
    );
    let passthrough = mesh
        .agent
        .wait_for_access_log(Duration::from_secs(5), |line| {
            line.contains(" PassthroughCluster ")
        })?;
    assert!(
        passthrough.contains(&format!("127.0.0.1:{}", http.port()))
            || passthrough.contains(&format!("127.0.0.1:{}", https.port())),
        "{passthrough}"
    );
    Ok(())
}

#[test]
fn registry_only_blocks_hosts_outside_the_registry() -> Result<()> {
    let ca = TestCa::new()?;
    let http = Upstream::http()?;
    let https = Upstream::https(&ca, &["unknown.test"])?;
    let mesh = Mesh::start(
        "registry-only",
        &[("httpbin.yaml", httpbin_entry(http.port()))],
    )?;

    // The port has an HTTP listener: httpbin.org is let through...
    expect_ok(&mesh.curl(&http.url("httpbin.org", "/headers")).run()?);
    let seen_before = http.requests().len();
    // ...and any other host on it gets Istio's 502.
    let blocked = mesh.curl(&http.url("unknown.test", "/headers")).run()?;
    assert_eq!(
        (blocked.exit_code, blocked.status),
        (0, 502),
        "REGISTRY_ONLY answers 502 for an unknown host: {blocked:?}"
    );
    assert_eq!(http.requests().len(), seen_before, "nothing reached it");
    let line = mesh
        .agent
        .wait_for_access_log(Duration::from_secs(5), |line| {
            line.contains("\"unknown.test:")
        })?;
    assert!(line.contains("\"GET /headers HTTP/1.1\" 502 "), "{line}");
    assert!(
        line.split(' ').any(|field| field == "block_all"),
        "the block_all route answered: {line}"
    );

    let refused = mesh
        .curl(&https.url("unknown.test", "/"))
        .cacert(ca.cert_path())
        .run()?;
    assert!(
        refused.exit_code == 56 && refused.stderr.contains("response 502"),
        "the CONNECT to a host no ServiceEntry allows is refused with a 502: {refused:?}"
    );
    assert!(https.tls_hellos().is_empty(), "nothing reached it");
    Ok(())
}

#[test]
fn service_entry_routes_http_with_istio_headers_and_logs() -> Result<()> {
    let http = Upstream::http()?;
    let port = http.port();
    let mesh = Mesh::start("registry-only", &[("httpbin.yaml", httpbin_entry(port))])?;

    let response = mesh.curl(&http.url("httpbin.org", "/headers")).run()?;
    expect_ok(&response);
    let echoed = &response.json()?["headers"];
    assert_eq!(echoed["Host"], format!("httpbin.org:{port}"), "{echoed}");
    assert_eq!(
        echoed["X-Envoy-Decorator-Operation"],
        format!("httpbin.org:{port}/*"),
        "{echoed}"
    );
    let service_time = response.header("x-envoy-upstream-service-time");
    assert!(
        service_time.is_some_and(|millis| millis.parse::<u64>().is_ok()),
        "x-envoy-upstream-service-time in milliseconds: {service_time:?}"
    );

    let line = access_line(&mesh.agent, "GET /headers")?;
    assert!(line.contains("\"GET /headers HTTP/1.1\" 200 "), "{line}");
    assert!(
        line.contains(&format!(" outbound|{port}||httpbin.org ")),
        "{line}"
    );
    assert!(line.contains(&format!("\"127.0.0.1:{port}\"")), "{line}");
    assert!(
        mesh.dns
            .queries()
            .iter()
            .any(|query| query.name == "httpbin.org"),
        "the agent resolved httpbin.org through the test DNS"
    );
    Ok(())
}

#[test]
fn service_entry_passes_https_through_by_sni() -> Result<()> {
    let ca = TestCa::new()?;
    let https = Upstream::https(&ca, &["www.baidu.com"])?;
    let port = https.port();
    let entry = service_entry("baidu", "www.baidu.com", &[(port, "https", "HTTPS")]);
    let mesh = Mesh::start("registry-only", &[("baidu.yaml", entry)])?;

    let response = mesh
        .curl(&https.url("www.baidu.com", "/"))
        .cacert(ca.cert_path())
        .arg("-I")
        .run()?;
    expect_ok(&response);
    let hellos = https.tls_hellos();
    assert!(
        !hellos.is_empty()
            && hellos
                .iter()
                .all(|hello| hello.sni.as_deref() == Some("www.baidu.com")),
        "curl's own TLS, SNI www.baidu.com, reached the upstream: {hellos:?}"
    );
    let seen = https.requests();
    let request = seen.last().expect("the upstream saw the request");
    assert_eq!(
        request.header("x-envoy-decorator-operation"),
        None,
        "the agent only forwarded the TLS bytes"
    );
    let line = mesh
        .agent
        .wait_for_access_log(Duration::from_secs(5), |line| {
            line.contains(&format!(" outbound|{port}||www.baidu.com "))
        })?;
    assert!(line.contains(" www.baidu.com "), "SNI is logged: {line}");
    Ok(())
}

#[test]
fn virtual_service_timeout_cuts_slow_responses() -> Result<()> {
    let http = Upstream::http()?;
    let mesh = Mesh::start(
        "registry-only",
        &[("httpbin.yaml", httpbin_entry(http.port()))],
    )?;
    let slow = mesh.curl(&http.url("httpbin.org", "/delay/2"));

    let (response, took) = timed(&slow)?;
    expect_ok(&response);
    assert!(
        took >= Duration::from_secs(2),
        "no timeout without a VirtualService: {took:?}"
    );

    mesh.config.write(
        "httpbin-vs.yaml",
        "apiVersion: networking.istio.io/v1\n\
         kind: VirtualService\n\
         metadata:\n  name: httpbin-ext\n\
         spec:\n  hosts:\n  - httpbin.org\n  http:\n  - timeout: 1s\n    route:\n    \
         - destination:\n        host: httpbin.org\n      weight: 100\n",
    )?;
    assert_eventually(CONVERGE, || {
        let dump = mesh.agent.config_dump()?.to_string();
        ensure!(
            dump.contains("\"timeout\":\"1s\""),
            "no 1s route timeout yet"
        );
        Ok(())
    });
    let (response, took) = timed(&slow)?;
    assert_eq!(
        (response.exit_code, response.status, response.body.as_str()),
        (0, 504, "upstream request timeout"),
        "{response:?}"
    );
    assert!(
        took >= Duration::from_millis(900),
        "the 1s route timeout fired after {took:?}"
    );
    let line = mesh
        .agent
        .wait_for_access_log(Duration::from_secs(5), |line| line.contains(" 504 "))?;
    assert!(line.contains("\"GET /delay/2 HTTP/1.1\" 504 UT "), "{line}");
    Ok(())
}

#[test]
fn destination_rule_originates_tls_for_plain_http() -> Result<()> {
    let ca = TestCa::new()?;
    let http = Upstream::http()?;
    let https = Upstream::https(&ca, &["edition.cnn.com"])?;
    let (http_port, https_port) = (http.port(), https.port());
    let entry = service_entry(
        "edition-cnn-com",
        "edition.cnn.com",
        &[
            (http_port, "http-port", "HTTP"),
            (https_port, "https-port-for-tls-origination", "HTTPS"),
        ],
    );
    let virtual_service = format!(
        "apiVersion: networking.istio.io/v1\n\
         kind: VirtualService\n\
         metadata:\n  name: edition-cnn-com\n\
         spec:\n  hosts:\n  - edition.cnn.com\n  http:\n  - match:\n    - port: {http_port}\n    \
         route:\n    - destination:\n        host: edition.cnn.com\n        \
         subset: tls-origination\n        port:\n          number: {https_port}\n"
    );
    let destination_rule = format!(
        "apiVersion: networking.istio.io/v1\n\
         kind: DestinationRule\n\
         metadata:\n  name: edition-cnn-com\n\
         spec:\n  host: edition.cnn.com\n  subsets:\n  - name: tls-origination\n    \
         trafficPolicy:\n      loadBalancer:\n        simple: ROUND_ROBIN\n      \
         portLevelSettings:\n      - port:\n          number: {https_port}\n        \
         tls:\n          mode: SIMPLE\n          caCertificates: {ca}\n",
        ca = ca.cert_path().display()
    );
    let mesh = Mesh::start(
        "registry-only",
        &[
            ("cnn-se.yaml", entry),
            ("cnn-vs.yaml", virtual_service),
            ("cnn-dr.yaml", destination_rule),
        ],
    )?;

    let response = mesh.curl(&http.url("edition.cnn.com", "/politics")).run()?;
    expect_ok(&response);
    assert_eq!(response.header("location"), None, "no redirect");
    assert!(http.requests().is_empty(), "nothing went out in plain HTTP");
    let seen = https.requests();
    let request = seen.last().expect("the HTTPS upstream saw the request");
    assert_eq!(request.path, "/politics");
    assert_eq!(request.sni.as_deref(), Some("edition.cnn.com"));
    assert_eq!(
        request.header("host"),
        Some(format!("edition.cnn.com:{http_port}").as_str())
    );
    let line = access_line(&mesh.agent, "GET /politics")?;
    assert!(
        line.contains(&format!(
            " outbound|{https_port}|tls-origination|edition.cnn.com "
        )),
        "{line}"
    );
    Ok(())
}

#[test]
fn agent_survives_a_control_plane_restart() -> Result<()> {
    let http = Upstream::http()?;
    let dns = DnsServer::start(EXTERNAL_NAMES.map(|name| (name, Ipv4Addr::LOCALHOST)))?;
    let config = ConfigDir::new()?;
    config.write("httpbin.yaml", &httpbin_entry(http.port()))?;
    let mode = mesh_config("registry-only");
    let control_plane = ControlPlane::start(config.path(), Some(&mode))?;
    let (xds_addr, ca) = (control_plane.xds_addr(), control_plane.ca().clone());
    let agent = DataPlane::start(&sleep_sidecar(control_plane.channel(), &dns))?;
    let curl = |url: &str| Curl::get(url).proxy(agent.proxy_addr()).run();
    let connected = || agent.metric("xds_connected", &[]);
    let httpbin = http.url("httpbin.org", "/headers");
    let baidu = http.url("www.baidu.com", "/headers");
    expect_ok(&curl(&httpbin)?);

    // Killed: the agent notices, and keeps serving its last config.
    drop(control_plane);
    assert_eventually(CONVERGE, || {
        ensure!(connected()? == Some(0.0), "still connected");
        Ok(())
    });
    for _ in 0..3 {
        expect_ok(&curl(&httpbin)?);
    }
    assert_eq!(curl(&baidu)?.status, 502, "www.baidu.com is not registered");

    // Back on the same address with the same CA: the agent reconnects and
    // follows changes.
    let control_plane = ControlPlane::options(config.path())
        .mesh(Some(&mode))
        .xds_addr(xds_addr)
        .ca(ca)
        .start()?;
    assert_eventually(Duration::from_secs(20), || {
        ensure!(connected()? == Some(1.0), "not reconnected");
        Ok(())
    });
    config.write(
        "baidu.yaml",
        &service_entry("baidu", "www.baidu.com", &[(http.port(), "http", "HTTP")]),
    )?;
    assert_eventually(CONVERGE, || {
        curl(&baidu)?.ensure_status(200)?;
        Ok(())
    });
    expect_ok(&curl(&httpbin)?);
    assert!(
        control_plane.metric("pilot_xds")? >= Some(1.0),
        "the new control plane serves the agent"
    );
    Ok(())
}

#[test]
fn unreadable_ca_is_nacked_and_traffic_keeps_flowing() -> Result<()> {
    const MISSING_CA: &str = "/nonexistent/ca.pem";
    let http = Upstream::http()?;
    let mesh = Mesh::start(
        "registry-only",
        &[("httpbin.yaml", httpbin_entry(http.port()))],
    )?;
    let httpbin = http.url("httpbin.org", "/headers");
    expect_ok(&mesh.curl(&httpbin).run()?);
    let rejected = |agent: &DataPlane| {
        agent.metric(
            "xds_updates_total",
            &[("type", "clusters"), ("result", "rejected")],
        )
    };
    assert_eq!(rejected(&mesh.agent)?, Some(0.0));

    mesh.config.write(
        "httpbin-dr.yaml",
        &format!(
            "apiVersion: networking.istio.io/v1\n\
             kind: DestinationRule\n\
             metadata:\n  name: httpbin-ext\n\
             spec:\n  host: httpbin.org\n  trafficPolicy:\n    tls:\n      mode: SIMPLE\n      \
             caCertificates: {MISSING_CA}\n"
        ),
    )?;
    assert_eventually(CONVERGE, || {
        let count = rejected(&mesh.agent)?.unwrap_or_default();
        ensure!(count >= 1.0, "no CDS update rejected yet");
        Ok(())
    });
    assert_eventually(CONVERGE, || {
        let rejects = mesh
            .control_plane
            .metric("pilot_total_xds_rejects")?
            .unwrap_or_default();
        ensure!(rejects >= 1.0, "the control plane counted no NACK");
        Ok(())
    });
    let node = mesh.agent.node().to_string();
    let statuses = mesh
        .control_plane
        .grpcurl()?
        .client_status(&node, CLUSTER)?;
    let nacked: Vec<&Value> = statuses
        .iter()
        .filter(|status| status["clientStatus"] == "NACKED")
        .collect();
    assert!(
        !nacked.is_empty(),
        "CSDS shows no NACKed cluster: {statuses:#?}"
    );
    for status in &nacked {
        let details = status["errorState"]["details"].as_str().unwrap_or_default();
        assert!(
            details.contains(MISSING_CA),
            "the NACK names the file: {status:#}"
        );
    }

    // Still on the last good (plaintext) cluster.
    for _ in 0..3 {
        expect_ok(&mesh.curl(&httpbin).run()?);
    }
    Ok(())
}

#[test]
fn invalid_regex_route_is_nacked_and_old_routes_keep_serving() -> Result<()> {
    let http = Upstream::http()?;
    let port = http.port();
    let dns = DnsServer::start(EXTERNAL_NAMES.map(|name| (name, Ipv4Addr::LOCALHOST)))?;
    // What our control plane serves for httpbin.org, from a fake ADS server
    // that can later send what the control plane never would.
    let config = ConfigDir::new()?;
    config.write("httpbin.yaml", &httpbin_entry(port))?;
    // The fake ADS server speaks plaintext only.
    let ads = AutoAds::start()?;
    let options = sleep_sidecar(ControlChannel::plaintext(ads.address()), &dns);
    let dump = control_plane::dump(
        config.path(),
        Some(&mesh_config("registry-only")),
        &options.node.to_string(),
        &[("app", "sleep")],
        DumpType::All,
    )?;
    dump.ensure_success()?;
    let mut resources = dump.json()?;
    for (type_url, packed) in resources_from_dump(&resources)? {
        ads.set(&type_url, packed);
    }
    let agent = DataPlane::start(&options)?;
    let httpbin = http.url("httpbin.org", "/headers");
    let curl = || Curl::get(&httpbin).proxy(agent.proxy_addr());
    expect_ok(&curl().run()?);

    let route_config = port.to_string();
    let routes = resources["routes"]
        .as_array_mut()
        .context("the dump has routes")?;
    let httpbin_routes = routes
        .iter_mut()
        .find(|routes| routes["name"] == route_config.as_str())
        .and_then(|routes| routes["virtualHosts"][0]["routes"].as_array_mut())
        .with_context(|| format!("no route configuration {route_config} in the dump"))?;
    httpbin_routes.insert(
        0,
        json!({
            "name": "bad-regex",
            "match": { "safeRegex": { "regex": "(unclosed" } },
            "route": { "cluster": format!("outbound|{port}||httpbin.org") },
        }),
    );
    let packed = routes
        .iter()
        .map(|routes| pack(ROUTE, routes))
        .collect::<Result<_, _>>()?;
    ads.set(ROUTE, packed);

    let nack = ads.wait_for_request(CONVERGE, |request| {
        request.type_url == ROUTE && request.error_detail.is_some()
    })?;
    let message = nack
        .error_detail
        .map(|status| status.message)
        .unwrap_or_default();
    assert!(
        message.contains(&format!("route configuration \"{route_config}\""))
            && message.contains("\"(unclosed\""),
        "the NACK names the route configuration and the regex: {message}"
    );
    assert_eq!(nack.version_info, "1", "the NACK keeps the applied version");
    let rejected = agent.metric(
        "xds_updates_total",
        &[("type", "routes"), ("result", "rejected")],
    )?;
    assert_eq!(rejected, Some(1.0));

    let response = curl().run()?;
    expect_ok(&response);
    assert_eq!(
        response.json()?["headers"]["X-Envoy-Decorator-Operation"],
        format!("httpbin.org:{port}/*"),
        "the previous routes still serve"
    );
    Ok(())
}

#[test]
fn admin_interface_shows_config_stats_and_endpoints() -> Result<()> {
    let http = Upstream::http()?;
    let internal = Upstream::http()?;
    let (port, internal_port) = (http.port(), internal.port());
    let static_entry = format!(
        "apiVersion: networking.istio.io/v1\n\
         kind: ServiceEntry\n\
         metadata:\n  name: api-internal\n\
         spec:\n  hosts:\n  - api.internal.test\n  ports:\n  - number: {internal_port}\n    \
         name: http\n    protocol: HTTP\n  resolution: STATIC\n  location: MESH_EXTERNAL\n  \
         endpoints:\n  - address: 127.0.0.1\n"
    );
    let mesh = Mesh::start(
        "registry-only",
        &[
            ("httpbin.yaml", httpbin_entry(port)),
            ("api-internal.yaml", static_entry),
        ],
    )?;
    expect_ok(&mesh.curl(&http.url("httpbin.org", "/headers")).run()?);
    expect_ok(
        &mesh
            .curl(&internal.url("api.internal.test", "/headers"))
            .run()?,
    );
    let httpbin_cluster = format!("outbound|{port}||httpbin.org");
    let internal_cluster = format!("outbound|{internal_port}||api.internal.test");

    let dump = mesh.agent.dynamic_resources()?;
    assert_all(
        dump.clusters.keys(),
        &[&httpbin_cluster, &internal_cluster, "PassthroughCluster"],
    );
    assert_all(dump.endpoints.keys(), &[&internal_cluster]);
    assert_all(
        dump.listeners.keys(),
        &["virtualOutbound", &format!("0.0.0.0_{port}")],
    );
    assert_all(
        dump.routes.keys(),
        &[&port.to_string(), &internal_port.to_string()],
    );

    let served = mesh.agent.metric(
        "envoy_cluster_upstream_rq_total",
        &[("envoy_cluster_name", &httpbin_cluster)],
    )?;
    assert_eq!(served, Some(1.0), "{}", mesh.agent.prometheus()?);

    let hosts = mesh.agent.clusters()?;
    for (cluster, endpoint) in [(&httpbin_cluster, port), (&internal_cluster, internal_port)] {
        let prefix = format!("{cluster}::127.0.0.1:{endpoint}::");
        assert!(
            hosts.lines().any(|line| line.starts_with(&prefix)),
            "/clusters lists {prefix}..:\n{hosts}"
        );
        let total = format!("{prefix}rq_total::1");
        assert!(
            hosts.lines().any(|line| line == total),
            "{total} in:\n{hosts}"
        );
    }
    Ok(())
}

fn assert_all<'a>(found: impl Iterator<Item = &'a String>, wanted: &[&str]) {
    let found: BTreeSet<&str> = found.map(String::as_str).collect();
    for name in wanted {
        assert!(found.contains(name), "{name} missing from {found:?}");
    }
}
