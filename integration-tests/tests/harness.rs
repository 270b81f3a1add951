//! Smoke test of the harness pieces that need no control plane: the test
//! DNS server, the HTTP and HTTPS upstreams seen through real curl, the
//! process guard, and a real Envoy starting with an unreachable ADS server.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use integration_tests::binaries;
use integration_tests::control_channel::ControlChannel;
use integration_tests::curl::Curl;
use integration_tests::dns::{DnsQuery, DnsServer};
use integration_tests::envoy::{Envoy, XDS_CLUSTER};
use integration_tests::ports;
use integration_tests::process::{self, Process, assert_eventually, wait_for_port};
use integration_tests::proxy_options::ProxyOptions;
use integration_tests::tls::TestCa;
use integration_tests::upstream::Upstream;
use serde_json::{Value, json};

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// Asks `server` one question over UDP.
fn ask(server: SocketAddr, name: &str, record_type: RecordType) -> Result<Message> {
    let mut query = Message::query();
    query.add_query(Query::query(Name::from_ascii(name)?, record_type));
    query.metadata.recursion_desired = true;
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
    socket.set_read_timeout(Some(Duration::from_secs(5)))?;
    socket.send_to(&query.to_vec()?, server)?;
    let mut buf = [0u8; 4096];
    let len = socket.recv(&mut buf).context("no DNS answer")?;
    let answer = Message::from_vec(&buf[..len])?;
    ensure!(
        answer.metadata.id == query.metadata.id,
        "answer id mismatch"
    );
    Ok(answer)
}

/// Asks `server` one question over TCP.
fn ask_tcp(server: SocketAddr, name: &str) -> Result<Message> {
    use std::io::{Read, Write};
    let mut query = Message::query();
    query.add_query(Query::query(Name::from_ascii(name)?, RecordType::A));
    let bytes = query.to_vec()?;
    let mut stream = TcpStream::connect(server)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(&u16::try_from(bytes.len())?.to_be_bytes())?;
    stream.write_all(&bytes)?;
    let mut len = [0u8; 2];
    stream.read_exact(&mut len)?;
    let mut answer = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut answer)?;
    Ok(Message::from_vec(&answer)?)
}

fn a_records(message: &Message) -> Vec<Ipv4Addr> {
    message
        .answers
        .iter()
        .filter_map(|record| match &record.data {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect()
}

#[test]
fn peer_binaries_are_installed() -> Result<()> {
    let mut envoy = Command::new(binaries::envoy()?);
    envoy.arg("--version");
    let version = process::run("envoy-version", envoy, Duration::from_secs(30))?;
    version.ensure_success()?;
    assert!(version.stdout.contains("/1.40."), "{}", version.stdout);

    let mut grpcurl = Command::new(binaries::grpcurl()?);
    grpcurl.arg("-version");
    process::run("grpcurl-version", grpcurl, Duration::from_secs(30))?.ensure_success()?;

    let mut curl = Command::new(binaries::curl()?);
    curl.arg("--version");
    process::run("curl-version", curl, Duration::from_secs(30))?.ensure_success()?;
    Ok(())
}

#[test]
fn dns_server_answers_only_its_names() -> Result<()> {
    let dns = DnsServer::start([
        ("httpbin.org", Ipv4Addr::LOCALHOST),
        ("edition.cnn.com", Ipv4Addr::new(127, 0, 0, 2)),
        ("edition.cnn.com", Ipv4Addr::new(127, 0, 0, 3)),
    ])?;

    let a = ask(dns.addr(), "HTTPBIN.org.", RecordType::A)?;
    assert_eq!(a.metadata.response_code, ResponseCode::NoError);
    assert_eq!(a_records(&a), [Ipv4Addr::LOCALHOST]);

    let both = ask(dns.addr(), "edition.cnn.com", RecordType::A)?;
    assert_eq!(
        a_records(&both),
        [Ipv4Addr::new(127, 0, 0, 2), Ipv4Addr::new(127, 0, 0, 3)]
    );

    let aaaa = ask(dns.addr(), "httpbin.org", RecordType::AAAA)?;
    assert_eq!(aaaa.metadata.response_code, ResponseCode::NoError);
    assert!(aaaa.answers.is_empty());

    let unknown = ask(dns.addr(), "example.com", RecordType::A)?;
    assert_eq!(unknown.metadata.response_code, ResponseCode::NXDomain);

    let tcp = ask_tcp(dns.addr(), "httpbin.org")?;
    assert_eq!(a_records(&tcp), [Ipv4Addr::LOCALHOST]);

    assert_eq!(
        dns.queries(),
        [
            ("httpbin.org", RecordType::A),
            ("edition.cnn.com", RecordType::A),
            ("httpbin.org", RecordType::AAAA),
            ("example.com", RecordType::A),
            ("httpbin.org", RecordType::A),
        ]
        .map(|(name, record_type)| DnsQuery {
            name: name.to_string(),
            record_type
        })
    );
    Ok(())
}

#[test]
fn http_upstream_echoes_headers_to_curl() -> Result<()> {
    let upstream = Upstream::http()?;
    let response = Curl::get(upstream.url("httpbin.org", "/headers"))
        .resolve("httpbin.org", upstream.port(), LOCALHOST)
        .header("x-envoy-decorator-operation", "httpbin.org:80/*")
        .run()?;
    response.ensure_status(200)?;
    let headers = &response.json()?["headers"];
    assert_eq!(
        headers["Host"],
        format!("httpbin.org:{}", upstream.port()).as_str()
    );
    assert_eq!(headers["X-Envoy-Decorator-Operation"], "httpbin.org:80/*");
    assert_eq!(response.header("content-type"), Some("application/json"));

    let teapot = Curl::get(upstream.url("127.0.0.1", "/status/418")).run()?;
    assert_eq!((teapot.exit_code, teapot.status), (0, 418));

    let politics = Curl::get(upstream.url("127.0.0.1", "/politics")).run()?;
    politics.ensure_status(200)?;
    assert!(politics.body.contains("politics"));

    let delayed = Curl::get(upstream.url("127.0.0.1", "/delay/2"))
        .max_time(Duration::from_millis(500))
        .run()?;
    assert_eq!(delayed.exit_code, 28, "curl times out: {delayed:?}");

    let seen = upstream.requests();
    let paths: Vec<&str> = seen.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, ["/headers", "/status/418", "/politics", "/delay/2"]);
    assert_eq!(seen[0].method, "GET");
    assert_eq!(
        seen[0].header("X-Envoy-Decorator-Operation"),
        Some("httpbin.org:80/*")
    );
    assert_eq!(seen[0].peer.ip(), LOCALHOST);
    assert_eq!(seen[0].sni, None);
    Ok(())
}

#[test]
fn https_upstream_serves_curl_that_trusts_the_test_ca() -> Result<()> {
    let ca = TestCa::new()?;
    let upstream = Upstream::https(&ca, &["edition.cnn.com"])?;
    let url = upstream.url("edition.cnn.com", "/politics");

    let trusted = Curl::get(&url)
        .resolve("edition.cnn.com", upstream.port(), LOCALHOST)
        .cacert(ca.cert_path())
        .run()?;
    trusted.ensure_status(200)?;
    assert!(trusted.body.contains("politics"));

    let untrusted = Curl::get(&url)
        .resolve("edition.cnn.com", upstream.port(), LOCALHOST)
        .run()?;
    assert_eq!(untrusted.exit_code, 60, "unknown CA: {untrusted:?}");

    let hellos = upstream.tls_hellos();
    assert_eq!(hellos.len(), 2);
    assert!(
        hellos
            .iter()
            .all(|hello| hello.sni.as_deref() == Some("edition.cnn.com"))
    );
    let requests = upstream.requests();
    assert_eq!(
        requests.len(),
        1,
        "only the trusted handshake carried a request"
    );
    assert_eq!(requests[0].sni.as_deref(), Some("edition.cnn.com"));
    assert_eq!(hellos[0].peer, requests[0].peer);
    Ok(())
}

#[test]
fn curl_refuses_the_system_resolver() {
    let err = Curl::get("http://httpbin.org/headers").run().unwrap_err();
    assert!(err.to_string().contains("system resolver"), "{err}");
}

#[test]
fn dropped_upstream_closes_its_port() -> Result<()> {
    let upstream = Upstream::http()?;
    let addr = upstream.addr();
    wait_for_port(addr, Duration::from_secs(5))?;
    drop(upstream);
    assert!(TcpStream::connect(addr).is_err());
    Ok(())
}

#[test]
fn process_guard_kills_on_drop() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut command = Command::new("sh");
    command.args(["-c", "echo started; echo oops >&2; exec sleep 600"]);
    let process = Process::spawn("sleeper", command, dir.path())?;
    let proc_dir = Path::new("/proc").join(process.id().to_string());
    assert_eventually(Duration::from_secs(5), || {
        let logs = process.logs();
        ensure!(logs.contains("started") && logs.contains("oops"), "{logs}");
        Ok(())
    });
    assert!(proc_dir.exists());
    drop(process);
    assert!(!proc_dir.exists(), "the child was killed and reaped");
    Ok(())
}

#[test]
fn envoy_starts_without_a_control_plane() -> Result<()> {
    let dns = DnsServer::start([("httpbin.org", Ipv4Addr::LOCALHOST)])?;
    // Nothing listens there, so nothing to trust or prove: plaintext.
    let unreachable_xds = ControlChannel::plaintext(ports::free_addr()?);
    let options = ProxyOptions::sleep(unreachable_xds, dns.addr());
    let mut envoy = Envoy::start_bootstrap(&options, |bootstrap| {
        bootstrap
            .initial_fetch_timeout(Duration::from_secs(1))
            .json()
    })?;

    let info = envoy.server_info()?;
    assert!(
        info["version"]
            .as_str()
            .unwrap_or_default()
            .contains("/1.40."),
        "{info}"
    );
    assert!(info["state"].is_string(), "{info}");

    envoy.wait_ready(Duration::from_secs(30))?;
    assert_eq!(envoy.server_info()?["state"], "LIVE");

    let dump = envoy.config_dump()?;
    let bootstrap = dump["configs"]
        .as_array()
        .and_then(|configs| {
            configs.iter().find(|config| {
                config["@type"] == "type.googleapis.com/envoy.admin.v3.BootstrapConfigDump"
            })
        })
        .context("no bootstrap in the config dump")?;
    let node = &bootstrap["bootstrap"]["node"];
    assert_eq!(
        node["id"],
        "sidecar~127.0.0.1~sleep.default~default.svc.cluster.local"
    );
    assert_eq!(node["metadata"]["NAMESPACE"], "default");
    assert_eq!(node["metadata"]["LABELS"]["app"], "sleep");

    let attempts = format!("cluster.{XDS_CLUSTER}.upstream_cx_connect_fail");
    assert_eventually(Duration::from_secs(10), || {
        let failures = envoy.stat(&attempts)?.context("no such stat")?;
        ensure!(failures > 0, "Envoy has not tried the ADS server yet");
        Ok(())
    });
    assert_eq!(envoy.stat("no.such.stat")?, None);
    Ok(())
}

/// A STRICT_DNS cluster for `host:port`, optionally originating TLS with
/// `ca` as the only trusted root.
fn dns_cluster(name: &str, host: &str, port: u16, ca: Option<&TestCa>) -> Value {
    let mut cluster = json!({
        "name": name,
        "type": "STRICT_DNS",
        "dns_lookup_family": "V4_ONLY",
        "connect_timeout": "2s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{ "lb_endpoints": [{ "endpoint": { "address": {
                "socket_address": { "address": host, "port_value": port },
            } } }] }],
        },
    });
    if let Some(ca) = ca {
        cluster["transport_socket"] = json!({
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                "sni": host,
                "common_tls_context": { "validation_context": {
                    "trusted_ca": { "filename": ca.cert_path() },
                    "match_typed_subject_alt_names": [{
                        "san_type": "DNS",
                        "matcher": { "exact": host },
                    }],
                } },
            },
        });
    }
    cluster
}

/// An HTTP listener on `port` routing each host to the cluster of that name.
fn http_listener(port: u16, hosts: &[&str]) -> Value {
    let virtual_hosts: Vec<Value> = hosts
        .iter()
        .map(|host| {
            json!({
                "name": host,
                "domains": [host],
                "routes": [{ "match": { "prefix": "/" }, "route": { "cluster": host } }],
            })
        })
        .collect();
    json!({
        "name": "test_http",
        "address": { "socket_address": { "address": "127.0.0.1", "port_value": port } },
        "filter_chains": [{ "filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                "stat_prefix": "test_http",
                "route_config": { "name": "test_routes", "virtual_hosts": virtual_hosts },
                "http_filters": [{
                    "name": "envoy.filters.http.router",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router",
                    },
                }],
            },
        }] }],
    })
}

#[test]
fn envoy_resolves_through_the_test_dns_and_trusts_the_test_ca() -> Result<()> {
    let ca = TestCa::new()?;
    let http = Upstream::http()?;
    let https = Upstream::https(&ca, &["edition.cnn.com"])?;
    let dns = DnsServer::start([
        ("httpbin.org", Ipv4Addr::LOCALHOST),
        ("edition.cnn.com", Ipv4Addr::LOCALHOST),
    ])?;
    let options = ProxyOptions::sleep(ControlChannel::plaintext(ports::free_addr()?), dns.addr());
    let listener_port = ports::free_port()?;
    let mut envoy = Envoy::start_bootstrap(&options, |bootstrap| {
        let mut bootstrap = bootstrap
            .initial_fetch_timeout(Duration::from_secs(1))
            .json();
        let static_resources = &mut bootstrap["static_resources"];
        if let Some(clusters) = static_resources["clusters"].as_array_mut() {
            clusters.push(dns_cluster("httpbin.org", "httpbin.org", http.port(), None));
            clusters.push(dns_cluster(
                "edition.cnn.com",
                "edition.cnn.com",
                https.port(),
                Some(&ca),
            ));
        }
        static_resources["listeners"] = json!([http_listener(
            listener_port,
            &["httpbin.org", "edition.cnn.com"]
        )]);
        bootstrap
    })?;
    envoy.wait_ready(Duration::from_secs(30))?;
    let listener = format!("http://127.0.0.1:{listener_port}");

    let plain = assert_eventually(Duration::from_secs(20), || {
        let response = Curl::get(format!("{listener}/headers"))
            .header("Host", "httpbin.org")
            .run()?;
        response.ensure_status(200)?;
        Ok(response)
    });
    assert_eq!(plain.json()?["headers"]["Host"], "httpbin.org");
    assert_eq!(http.requests().len(), 1);

    let originated = assert_eventually(Duration::from_secs(20), || {
        let response = Curl::get(format!("{listener}/politics"))
            .header("Host", "edition.cnn.com")
            .run()?;
        response.ensure_status(200)?;
        Ok(response)
    });
    assert!(originated.body.contains("politics"));
    let requests = https.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].sni.as_deref(), Some("edition.cnn.com"));

    let asked: Vec<String> = dns.queries().into_iter().map(|query| query.name).collect();
    assert!(asked.contains(&"httpbin.org".to_string()), "{asked:?}");
    assert!(asked.contains(&"edition.cnn.com".to_string()), "{asked:?}");
    Ok(())
}
