//! A local mesh walking through Istio's egress tasks, as the walkthrough in
//! the project's seed does: the control plane, a sidecar agent for the app
//! (explicit proxy on 15001, so no iptables), an egress gateway agent, and
//! local stand-ins for httpbin.org, www.baidu.com and edition.cnn.com
//! behind a private DNS server. Each step applies the walkthrough's YAML and
//! runs the same curl, printing what a user would see.
//!
//! The "external" services listen on ports 80 and 443 of 127.0.0.2-4, as
//! the real ones do, in the demo's own network namespace (`namespace.rs`):
//! `cargo run -p integration-tests --bin egress-demo`, as any user.

mod namespace;

use std::cell::RefCell;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use integration_tests::control_plane::{ConfigDir, ControlPlane};
use integration_tests::curl::{Curl, CurlResponse};
use integration_tests::data_plane::DataPlane;
use integration_tests::dns::DnsServer;
use integration_tests::fixtures::{GatewayPort, egress_gateway_service};
use integration_tests::proxy_options::ProxyOptions;
use integration_tests::tls::TestCa;
use integration_tests::upstream::Upstream;

const HTTPBIN: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const CNN: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);
const BAIDU: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 4);

fn main() -> Result<ExitCode> {
    match namespace::enter()? {
        namespace::Entered::Inside => run().map(|()| ExitCode::SUCCESS),
        namespace::Entered::RanInside(status) => Ok(if status.success() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }),
    }
}

/// The walkthrough, in the demo's namespaces.
fn run() -> Result<()> {
    let ca = TestCa::new()?;
    let _httpbin = Upstream::http_on(SocketAddr::from((HTTPBIN, 80)))?;
    let _cnn_http = Upstream::http_on(SocketAddr::from((CNN, 80)))?;
    let cnn_https = Upstream::https_on(SocketAddr::from((CNN, 443)), &ca, &["edition.cnn.com"])?;
    let _baidu = Upstream::https_on(SocketAddr::from((BAIDU, 443)), &ca, &["www.baidu.com"])?;
    let dns = DnsServer::start([
        ("httpbin.org", HTTPBIN),
        ("edition.cnn.com", CNN),
        ("www.baidu.com", BAIDU),
    ])?;
    println!(
        "Local stand-ins: httpbin.org={HTTPBIN} edition.cnn.com={CNN} www.baidu.com={BAIDU} (DNS {})",
        dns.addr()
    );

    let config = ConfigDir::new()?;
    let mesh = config.path().join("mesh").join("mesh.yaml");
    std::fs::create_dir_all(mesh.parent().context("mesh dir")?)?;
    std::fs::write(&mesh, "outboundTrafficPolicy:\n  mode: ALLOW_ANY\n")?;
    let resources = ConfigDir::new()?;
    // As an installed Istio has it: service ports 80 and 443 on the
    // gateway's container ports 8080 and 8443.
    resources.write(
        "egressgateway-service.yaml",
        &egress_gateway_service(&[
            GatewayPort::new(80, "HTTP").target(8080),
            GatewayPort::new(443, "HTTPS").target(8443),
        ])?,
    )?;
    let control_plane = ControlPlane::start(resources.path(), Some(&mesh))?;
    let sleep = DataPlane::start(&ProxyOptions::sleep(control_plane.channel(), dns.addr()))?;
    let gateway = DataPlane::start(&ProxyOptions::egress_gateway(
        control_plane.channel(),
        dns.addr(),
    ))?;
    let demo = Demo {
        proxy: sleep.proxy_addr(),
        ca_cert: ca.cert_path().to_path_buf(),
        resources,
        applied: RefCell::new(Vec::new()),
    };

    section("Envoy passes unknown destinations through (ALLOW_ANY)");
    demo.https_status("https://www.baidu.com")?;
    demo.https_status("https://edition.cnn.com")?;

    section("REGISTRY_ONLY: only registered destinations");
    std::fs::write(&mesh, "outboundTrafficPolicy:\n  mode: REGISTRY_ONLY\n")?;
    settle();
    demo.https_status("https://www.baidu.com")?;
    demo.https_status("https://edition.cnn.com")?;

    section("ServiceEntry for an external HTTP service");
    demo.apply_step("01-httpbin-serviceentry")?;
    let response = demo.curl(Curl::get("http://httpbin.org/headers"))?;
    println!("{}", response.body.trim_end());

    section("ServiceEntry for an external HTTPS service");
    demo.apply_step("02-baidu-https")?;
    demo.https_status("https://www.baidu.com")?;

    section("Route timeout: /delay/5, then with a 3s VirtualService timeout");
    demo.apply_step("01-httpbin-serviceentry")?;
    demo.timed_status("http://httpbin.org/delay/5")?;
    demo.apply_step("03-httpbin-timeout")?;
    demo.timed_status("http://httpbin.org/delay/5")?;

    section("HTTPS to edition.cnn.com through a ServiceEntry and a TLS route");
    demo.apply_step("04-cnn-https-passthrough")?;
    demo.https_status("https://edition.cnn.com/politics")?;

    section("TLS origination: the app speaks HTTP, the sidecar originates HTTPS");
    demo.apply_step("05-cnn-tls-origination")?;
    let before = cnn_https.tls_hellos().len();
    demo.headers("http://edition.cnn.com/politics")?;
    demo.show_sni(&cnn_https, before);

    section("Egress gateway for HTTP traffic: sleep -> istio-egressgateway -> edition.cnn.com");
    demo.apply_step("06-egress-gateway-http")?;
    demo.headers("http://edition.cnn.com/politics")?;
    show_last_access_log(&gateway);

    section("Egress gateway for HTTPS traffic (SNI passthrough)");
    demo.apply_step("07-egress-gateway-https")?;
    demo.https_status("https://edition.cnn.com/politics")?;
    show_last_access_log(&gateway);

    section("Egress gateway with mutual TLS from the sidecar and TLS origination at the gateway");
    demo.apply_step("09-egress-gateway-tls-origination")?;
    let before = cnn_https.tls_hellos().len();
    demo.headers("http://edition.cnn.com/politics")?;
    demo.show_sni(&cnn_https, before);
    show_last_access_log(&gateway);

    println!("\nDone. Everything the demo started ends with it.");
    Ok(())
}

fn show_last_access_log(gateway: &DataPlane) {
    std::thread::sleep(Duration::from_millis(200));
    println!("# the egress gateway's access log:");
    if let Some(line) = gateway.access_log().last() {
        println!("{line}");
    }
}

fn section(title: &str) {
    println!("\n=== {title} ===");
}

/// Config changes reach the proxies within a few hundred milliseconds.
fn settle() {
    std::thread::sleep(Duration::from_millis(700));
}

struct Demo {
    proxy: SocketAddr,
    ca_cert: std::path::PathBuf,
    resources: ConfigDir,
    /// The files of the step in force.
    applied: RefCell<Vec<String>>,
}

impl Demo {
    /// Replaces the config with the walkthrough's YAML for `step`, as it
    /// stands in `control-plane/tests/fixtures/seed/<step>/` (unchanged,
    /// but for the demo's own CA where TLS is originated, and the egress
    /// gateway's service, which the demo declares with its container ports).
    fn apply_step(&self, step: &str) -> Result<()> {
        for file in self.applied.borrow_mut().drain(..) {
            self.resources.remove(&file)?;
        }
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../control-plane/tests/fixtures/seed")
            .join(step);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .with_context(|| format!("read {}", dir.display()))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
            .filter(|path| {
                path.file_name()
                    .is_some_and(|name| name != "istio-egressgateway.yaml")
            })
            .collect();
        files.sort();
        for path in files {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .context("file name")?
                .to_string();
            let yaml = std::fs::read_to_string(&path)?;
            let yaml = self.trust_demo_ca(&yaml);
            println!("# {step}/{name}\n{}", yaml.trim_end());
            self.resources.write(&format!("{step}-{name}"), &yaml)?;
            self.applied.borrow_mut().push(format!("{step}-{name}"));
        }
        settle();
        Ok(())
    }

    /// Adds `caCertificates` (the demo's CA) beside every `mode: SIMPLE`.
    fn trust_demo_ca(&self, yaml: &str) -> String {
        let mut out = String::with_capacity(yaml.len());
        for line in yaml.lines() {
            if line.trim_start().starts_with("mode: SIMPLE") {
                let indent = &line[..line.len() - line.trim_start().len()];
                out.push_str(&format!(
                    "{indent}caCertificates: {} # the demo's CA signs the local servers\n",
                    self.ca_cert.display()
                ));
            }
            out.push_str(line);
            out.push('\n');
        }
        out
    }

    fn show_sni(&self, server: &Upstream, before: usize) {
        if let Some(hello) = server.tls_hellos().get(before..).and_then(|new| new.last()) {
            println!(
                "(edition.cnn.com saw TLS with SNI {:?})",
                hello.sni.as_deref().unwrap_or("-")
            );
        }
    }

    fn curl(&self, curl: Curl) -> Result<CurlResponse> {
        curl.proxy(self.proxy)
            .cacert(Path::new(&self.ca_cert))
            .max_time(Duration::from_secs(15))
            .run()
    }

    fn https_status(&self, url: &str) -> Result<()> {
        println!("$ curl -I {url} | grep HTTP/");
        let response = self.curl(Curl::get(url).arg("-I"))?;
        match response.exit_code {
            0 => println!("HTTP/1.1 {}", response.status),
            code => println!("command terminated with exit code {code}"),
        }
        Ok(())
    }

    fn timed_status(&self, url: &str) -> Result<()> {
        println!("$ time curl -o /dev/null -s -w \"%{{http_code}}\\n\" {url}");
        let start = Instant::now();
        let response = self.curl(Curl::get(url))?;
        println!(
            "{}\nreal    {:.2}s",
            response.status,
            start.elapsed().as_secs_f64()
        );
        Ok(())
    }

    fn headers(&self, url: &str) -> Result<()> {
        println!("$ curl -sL -o /dev/null -D - {url}");
        let response = self.curl(Curl::get(url))?;
        println!("HTTP/1.1 {}", response.status);
        for (name, value) in &response.headers {
            println!("{name}: {value}");
        }
        Ok(())
    }
}
