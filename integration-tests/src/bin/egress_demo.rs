//! A local mesh walking through Istio's egress tasks, as the walkthrough in
//! the project's seed does: the control plane, a sidecar agent for the app
//! (explicit proxy on 15001, so no iptables), an egress gateway agent, and
//! local stand-ins for httpbin.org, www.baidu.com and edition.cnn.com
//! behind a private DNS server. Each step applies the walkthrough's YAML and
//! runs the same curl, printing what a user would see.
//!
//! Run as root (the "external" services listen on ports 80 and 443 of
//! 127.0.0.2-4, as the real ones do): `cargo run -p integration-tests --bin egress-demo`

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use integration_tests::control_plane::{ConfigDir, ControlPlane};
use integration_tests::curl::{Curl, CurlResponse};
use integration_tests::data_plane::{DataPlane, DataPlaneOptions};
use integration_tests::dns::DnsServer;
use integration_tests::tls::TestCa;
use integration_tests::upstream::Upstream;

const HTTPBIN: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const CNN: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);
const BAIDU: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 4);

fn main() -> Result<()> {
    if !nix_is_root() {
        bail!("the demo's external services listen on ports 80 and 443: run it as root (sudo)");
    }
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
    resources.write("egressgateway-service.yaml", EGRESS_GATEWAY_SERVICE)?;
    let control_plane = ControlPlane::start(resources.path(), Some(&mesh))?;
    let sleep = DataPlane::start(&DataPlaneOptions::sidecar(
        "sleep",
        "default",
        control_plane.xds_addr(),
        dns.addr(),
    ))?;
    let gateway = DataPlane::start(
        &DataPlaneOptions::router(
            "istio-egressgateway",
            "istio-system",
            control_plane.xds_addr(),
            dns.addr(),
        )
        .label("istio", "egressgateway"),
    )?;
    let demo = Demo {
        proxy: sleep.proxy_addr(),
        ca_cert: ca.cert_path().to_path_buf(),
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
    apply(&resources, "httpbin-ext.yaml", HTTPBIN_SERVICE_ENTRY)?;
    let response = demo.curl(Curl::get("http://httpbin.org/headers"))?;
    println!("{}", response.body.trim_end());

    section("ServiceEntry for an external HTTPS service");
    apply(&resources, "baidu.yaml", BAIDU_SERVICE_ENTRY)?;
    demo.https_status("https://www.baidu.com")?;

    section("Route timeout: /delay/5 with a 3s VirtualService timeout");
    demo.timed_status("http://httpbin.org/delay/5")?;
    apply(&resources, "httpbin-timeout.yaml", HTTPBIN_TIMEOUT)?;
    demo.timed_status("http://httpbin.org/delay/5")?;
    resources.remove("httpbin-timeout.yaml")?;
    resources.remove("httpbin-ext.yaml")?;

    section("TLS origination: the app speaks HTTP, the sidecar originates HTTPS");
    let tls_origination = TLS_ORIGINATION.replace("CA_CERT", &ca.cert_path().display().to_string());
    apply(&resources, "edition-cnn-com.yaml", &tls_origination)?;
    let before = cnn_https.tls_hellos().len();
    demo.headers("http://edition.cnn.com/politics")?;
    let hellos = cnn_https.tls_hellos();
    if let Some(hello) = hellos.get(before..).and_then(|new| new.last()) {
        println!(
            "(edition.cnn.com saw TLS with SNI {:?})",
            hello.sni.as_deref().unwrap_or("-")
        );
    }
    resources.remove("edition-cnn-com.yaml")?;

    section("Egress gateway for HTTP traffic: sleep -> istio-egressgateway -> edition.cnn.com");
    apply(&resources, "cnn-gateway.yaml", EGRESS_GATEWAY_HTTP)?;
    demo.headers("http://edition.cnn.com/politics")?;
    std::thread::sleep(Duration::from_millis(200));
    println!("# the egress gateway's access log:");
    if let Some(line) = gateway.access_log().last() {
        println!("{line}");
    }
    resources.remove("cnn-gateway.yaml")?;

    section("Egress gateway for HTTPS traffic (SNI passthrough)");
    apply(&resources, "cnn-gateway-tls.yaml", EGRESS_GATEWAY_HTTPS)?;
    demo.https_status("https://edition.cnn.com/politics")?;
    std::thread::sleep(Duration::from_millis(200));
    println!("# the egress gateway's access log:");
    if let Some(line) = gateway.access_log().last() {
        println!("{line}");
    }
    println!(
        "\nDone. The sidecar's admin is at http://{}/config_dump",
        sleep.admin_addr()
    );
    Ok(())
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

fn section(title: &str) {
    println!("\n=== {title} ===");
}

/// Writes a config file and waits for it to reach the proxies.
fn apply(dir: &ConfigDir, file: &str, yaml: &str) -> Result<()> {
    println!("# config/{file}\n{}", yaml.trim_end());
    dir.write(file, yaml)?;
    settle();
    Ok(())
}

/// Config changes reach the proxies within a few hundred milliseconds.
fn settle() {
    std::thread::sleep(Duration::from_millis(700));
}

struct Demo {
    proxy: SocketAddr,
    ca_cert: std::path::PathBuf,
}

impl Demo {
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

const EGRESS_GATEWAY_SERVICE: &str = "\
# The egress gateway as an installed Istio has it: service ports 80/443,
# container ports 8080/8443, endpoints = the proxies labelled istio=egressgateway.
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: istio-egressgateway
  namespace: istio-system
spec:
  hosts:
  - istio-egressgateway.istio-system.svc.cluster.local
  location: MESH_INTERNAL
  ports:
  - {number: 80, name: http, protocol: HTTP, targetPort: 8080}
  - {number: 443, name: https, protocol: HTTPS, targetPort: 8443}
  resolution: STATIC
  workloadSelector:
    labels:
      istio: egressgateway
";

const HTTPBIN_SERVICE_ENTRY: &str = "\
apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata:
  name: httpbin-ext
spec:
  hosts:
  - httpbin.org
  ports:
  - number: 80
    name: http
    protocol: HTTP
  resolution: DNS
  location: MESH_EXTERNAL
";

const BAIDU_SERVICE_ENTRY: &str = "\
apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata:
  name: baidu
spec:
  hosts:
  - www.baidu.com
  ports:
  - number: 443
    name: https
    protocol: HTTPS
  resolution: DNS
  location: MESH_EXTERNAL
";

const HTTPBIN_TIMEOUT: &str = "\
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata:
  name: httpbin-ext
spec:
  hosts:
    - httpbin.org
  http:
  - timeout: 3s
    route:
      - destination:
          host: httpbin.org
        weight: 100
";

const TLS_ORIGINATION: &str = "\
apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata:
  name: edition-cnn-com
spec:
  hosts:
  - edition.cnn.com
  ports:
  - number: 80
    name: http-port
    protocol: HTTP
  - number: 443
    name: https-port-for-tls-origination
    protocol: HTTPS
  resolution: DNS
---
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata:
  name: edition-cnn-com
spec:
  hosts:
  - edition.cnn.com
  http:
  - match:
    - port: 80
    route:
    - destination:
        host: edition.cnn.com
        subset: tls-origination
        port:
          number: 443
---
apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata:
  name: edition-cnn-com
spec:
  host: edition.cnn.com
  subsets:
  - name: tls-origination
    trafficPolicy:
      loadBalancer:
        simple: ROUND_ROBIN
      portLevelSettings:
      - port:
          number: 443
        tls:
          mode: SIMPLE # initiates HTTPS when accessing edition.cnn.com
          caCertificates: CA_CERT # the local edition.cnn.com uses the demo's CA
";

const EGRESS_GATEWAY_HTTP: &str = "\
apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata:
  name: cnn
spec:
  hosts:
  - edition.cnn.com
  ports:
  - number: 80
    name: http-port
    protocol: HTTP
  - number: 443
    name: https
    protocol: HTTPS
  resolution: DNS
---
apiVersion: networking.istio.io/v1alpha3
kind: Gateway
metadata:
  name: istio-egressgateway
spec:
  selector:
    istio: egressgateway
  servers:
  - port:
      number: 80
      name: http
      protocol: HTTP
    hosts:
    - edition.cnn.com
---
apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata:
  name: egressgateway-for-cnn
spec:
  host: istio-egressgateway.istio-system.svc.cluster.local
  subsets:
  - name: cnn
---
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata:
  name: direct-cnn-through-egress-gateway
spec:
  hosts:
  - edition.cnn.com
  gateways:
  - istio-egressgateway
  - mesh
  http:
  - match:
    - gateways:
      - mesh
      port: 80
    route:
    - destination:
        host: istio-egressgateway.istio-system.svc.cluster.local
        subset: cnn
        port:
          number: 80
      weight: 100
  - match:
    - gateways:
      - istio-egressgateway
      port: 80
    route:
    - destination:
        host: edition.cnn.com
        port:
          number: 80
      weight: 100
";

const EGRESS_GATEWAY_HTTPS: &str = "\
apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata:
  name: cnn
spec:
  hosts:
  - edition.cnn.com
  ports:
  - number: 443
    name: tls
    protocol: TLS
  resolution: DNS
---
apiVersion: networking.istio.io/v1alpha3
kind: Gateway
metadata:
  name: istio-egressgateway
spec:
  selector:
    istio: egressgateway
  servers:
  - port: {number: 443, name: tls, protocol: TLS}
    hosts: [edition.cnn.com]
    tls: {mode: PASSTHROUGH}
---
apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata:
  name: egressgateway-for-cnn
spec:
  host: istio-egressgateway.istio-system.svc.cluster.local
  subsets:
  - name: cnn
---
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata:
  name: direct-cnn-through-egress-gateway
spec:
  hosts: [edition.cnn.com]
  gateways: [mesh, istio-egressgateway]
  tls:
  - match:
    - {gateways: [mesh], port: 443, sniHosts: [edition.cnn.com]}
    route:
    - destination: {host: istio-egressgateway.istio-system.svc.cluster.local, subset: cnn, port: {number: 443}}
  - match:
    - {gateways: [istio-egressgateway], port: 443, sniHosts: [edition.cnn.com]}
    route:
    - destination: {host: edition.cnn.com, port: {number: 443}}
      weight: 100
";
