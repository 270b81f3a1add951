//! From ALLOW_ANY to REGISTRY_ONLY without breaking anything, the way the
//! egress inventory lets a user do it, on our agent and on real Envoy 1.40
//! (which reports over the access log service): one scenario, two proxies.
//!
//! 1. A root `Sidecar` (istio-system, no selector) asks for REGISTRY_ONLY
//!    with `istio.io/dry-run: "true"`: the app's HTTP, HTTPS and raw TCP
//!    to three external hosts all go out, each marked `would_block`.
//! 2. `control-plane egress list --unregistered` shows the three with
//!    their protocols (HTTP, TLS, TCP); the agent counts them in
//!    `istio_requests_total` / `istio_tcp_connections_opened_total`.
//! 3. `control-plane egress suggest` writes three ServiceEntries that
//!    `validate` accepts; once they are served and the annotation is gone,
//!    the same traffic still succeeds, a fourth host (HTTP) gets the
//!    blocked 502 with its name in the body, the log and the counts, and a
//!    fifth (HTTPS) is reset, its log line naming the SNI.
//!
//! The app is curl (and a TCP client) in a network namespace behind
//! `data-plane init`'s capture; the external servers and DNS listen on the
//! host end of its veth. The mesh already registers an HTTP service on
//! port 80 and a TLS one on 443, as any mesh has some, so unregistered
//! traffic on those ports is seen by Host and SNI. Needs root: see
//! `netns::require_root`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use integration_tests::control_plane::{self, ConfigDir, ControlPlane};
use integration_tests::curl::{Curl, CurlResponse};
use integration_tests::dns::DnsServer;
use integration_tests::egress;
use integration_tests::fixtures::{CNN_TLS_SERVICE_ENTRY, HTTPBIN_SERVICE_ENTRY};
use integration_tests::netns::{NetNs, require_root};
use integration_tests::parity::{Kind, Proxy};
use integration_tests::process::eventually;
use integration_tests::tcp_greeter::{self, TcpGreeter};
use integration_tests::tls::TestCa;
use integration_tests::upstream::Upstream;
use tempfile::TempDir;

/// How long a proxy gets to take in a config change, and the control
/// plane to record what it was told.
const CONVERGE: Duration = Duration::from_secs(20);
/// The app's namespace.
const NAMESPACE: &str = "default";
/// The external HTTP host, seen under the dry run.
const HTTP_HOST: &str = "api.weather.example";
/// The external HTTPS host, seen under the dry run.
const TLS_HOST: &str = "login.identity.example";
/// The raw TCP service's port (a database, reached by address).
const TCP_PORT: u16 = 5432;
/// What the TCP service says first.
const TCP_GREETING: &str = "postgres";
/// A host first asked for under REGISTRY_ONLY, over HTTP.
const NEW_HTTP_HOST: &str = "api.newvendor.example";
/// A host first asked for under REGISTRY_ONLY, over HTTPS.
const NEW_TLS_HOST: &str = "secure.newvendor.example";
const NAMES: [&str; 4] = [HTTP_HOST, TLS_HOST, NEW_HTTP_HOST, NEW_TLS_HOST];
/// What the mesh registered before: Istio's httpbin.org (HTTP, port 80)
/// and edition.cnn.com (TLS, port 443) ServiceEntries. Their listeners
/// are where unregistered HTTP and TLS on those ports fall through, seen
/// as HTTP (by Host) and TLS (by SNI), as in Istio; with no service on a
/// port, its traffic is plain TCP to the original destination.
const REGISTERED: [(&str, &str); 2] = [
    ("httpbin.yaml", HTTPBIN_SERVICE_ENTRY),
    ("cnn.yaml", CNN_TLS_SERVICE_ENTRY),
];

#[test]
fn agent_dry_run_inventory_then_registry_only() -> Result<()> {
    if !require_root("agent_dry_run_inventory_then_registry_only") {
        return Ok(());
    }
    dry_run_inventory_then_registry_only(Kind::Agent)
}

#[test]
fn envoy_dry_run_inventory_then_registry_only() -> Result<()> {
    if !require_root("envoy_dry_run_inventory_then_registry_only") {
        return Ok(());
    }
    dry_run_inventory_then_registry_only(Kind::Envoy)
}

/// One proxy's mesh: fields drop in order, the proxy first, the namespace
/// last.
struct Mesh {
    proxy: Proxy,
    control_plane: ControlPlane,
    config: ConfigDir,
    _mesh: ConfigDir,
    state: TempDir,
    http: Upstream,
    https: Upstream,
    tcp: TcpGreeter,
    _dns: DnsServer,
    ca: TestCa,
    netns: NetNs,
}

impl Mesh {
    /// The mesh under the dry run, the sidecar of `kind` behind the
    /// capture in the app's namespace.
    fn start(kind: Kind) -> Result<Self> {
        let ca = TestCa::new()?;
        let netns = NetNs::new()?;
        let host = netns.host_ip();
        let http = Upstream::http_on(SocketAddr::from((host, 80)))?;
        let https = Upstream::https_on(SocketAddr::from((host, 443)), &ca, &NAMES)?;
        let tcp = TcpGreeter::start(None, SocketAddr::from((host, TCP_PORT)), TCP_GREETING)?;
        let dns = DnsServer::start_on(host, NAMES.map(|name| (name, host)))?;
        let config = ConfigDir::new()?;
        for (file, yaml) in REGISTERED {
            config.write(file, yaml)?;
        }
        config.write("sidecar.yaml", &egress::root_registry_only_sidecar(true))?;
        let mesh = ConfigDir::new()?;
        let mesh_file = egress::write_mesh_config(&mesh, "ALLOW_ANY")?;
        let state = tempfile::tempdir()?;
        let control_plane = ControlPlane::options(config.path())
            .mesh(Some(&mesh_file))
            .xds_ip(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
            .state_dir(state.path())
            .start()?;
        let control = control_plane.channel().via(IpAddr::V4(host));
        netns.data_plane_init(
            control.addr().port(),
            &["--include-outbound-ip-ranges", "*"],
            CONVERGE,
        )?;
        let proxy = Proxy::sidecar(kind, &netns, control, dns.addr(), ca.cert_path())?;
        Ok(Self {
            proxy,
            control_plane,
            config,
            _mesh: mesh,
            state,
            http,
            https,
            tcp,
            _dns: dns,
            ca,
            netns,
        })
    }

    /// The app's curl of `https?://<host>/`, captured.
    fn curl(&self, scheme: &str, host: &str) -> Result<CurlResponse> {
        let port = if scheme == "https" { 443 } else { 80 };
        Curl::get(format!("{scheme}://{host}/"))
            .resolve(host, port, IpAddr::V4(self.netns.host_ip()))
            .cacert(self.ca.cert_path())
            .in_netns(&self.netns)
            .max_time(Duration::from_secs(5))
            .run()
    }

    /// The raw TCP service's address.
    fn tcp_addr(&self) -> SocketAddr {
        self.tcp.addr()
    }

    /// HTTP, HTTPS and raw TCP to the three known hosts, each succeeding
    /// (retried until the proxy has its config).
    fn known_traffic_succeeds(&self) -> Result<()> {
        eventually(CONVERGE, || {
            self.curl("http", HTTP_HOST)?.ensure_status(200)?;
            self.curl("https", TLS_HOST)?.ensure_status(200)?;
            let greeting = tcp_greeter::greeting(&self.netns, self.tcp_addr())?;
            ensure!(
                greeting == TCP_GREETING,
                "the TCP service said {greeting:?}"
            );
            Ok(())
        })
        .with_context(|| format!("known traffic through the sidecar\n{}", self.proxy.logs()))
    }

    /// `egress list --namespace default --unregistered` once it has a
    /// row for each `(destination, protocol, decision)` of `expected`,
    /// counted at least once.
    fn inventory_shows(&self, expected: &[(&str, &str, &str)]) -> Result<String> {
        eventually(CONVERGE, || {
            let output = egress::list(self.state.path(), Some(NAMESPACE), true)?;
            output.ensure_success()?;
            let rows = egress::parse_table(&output.stdout);
            for (destination, protocol, decision) in expected {
                ensure!(
                    rows.iter().any(|row| {
                        row.get("DESTINATION")
                            .is_some_and(|cell| cell == destination)
                            && row.get("PROTOCOL").is_some_and(|cell| cell == protocol)
                            && row.get("DECISION").is_some_and(|cell| cell == decision)
                            && row
                                .get("COUNT")
                                .and_then(|cell| cell.parse::<u64>().ok())
                                .is_some_and(|count| count >= 1)
                    }),
                    "no row for {destination} with {protocol}, {decision} and a count in\n{}",
                    output.stdout
                );
            }
            Ok(output.stdout)
        })
        .with_context(|| format!("the inventory\n{}", self.control_plane.logs()))
    }

    /// The access log line naming `destination` and holding `expected`
    /// (Istio's line on the agent, Envoy's default line on Envoy); the mark
    /// is the inventory's and the metrics' to show.
    fn log_line_naming(&self, destination: &str, expected: &str) -> Result<String> {
        eventually(CONVERGE, || {
            self.proxy
                .access_log()
                .into_iter()
                .find(|line| line.contains(destination) && line.contains(expected))
                .with_context(|| {
                    format!(
                        "no access log line names {destination} ({expected}) in\n{}",
                        self.proxy.access_log().join("\n")
                    )
                })
        })
    }

    /// Fails unless the agent counts `metric` for `destination` (any of
    /// `names` as its `destination_service`) with the egress mark `mark`
    /// and `labels`; Envoy has no Istio stats filter: nothing to check.
    fn counted(
        &self,
        metric: &str,
        names: &[&str],
        mark: &str,
        labels: &[(&str, &str)],
    ) -> Result<()> {
        let Proxy::Agent(agent) = &self.proxy else {
            return Ok(());
        };
        eventually(CONVERGE, || {
            let text = agent.prometheus()?;
            let count: f64 = names
                .iter()
                .filter_map(|name| {
                    let mut wanted = vec![
                        ("destination_service", *name),
                        ("egress_policy", mark),
                        ("reporter", "source"),
                        ("source_workload_namespace", NAMESPACE),
                    ];
                    wanted.extend_from_slice(labels);
                    integration_tests::prometheus::sum(&text, metric, &wanted)
                })
                .sum();
            ensure!(
                count >= 1.0,
                "no {metric} for {names:?} with egress_policy={mark} {labels:?} in\n{}",
                series_of(&text, metric)
            );
            Ok(())
        })
    }
}

fn dry_run_inventory_then_registry_only(kind: Kind) -> Result<()> {
    let mesh = Mesh::start(kind)?;
    let host = mesh.netns.host_ip().to_string();
    let tcp_target = mesh.tcp_addr().to_string();

    // 1. Under the dry run, unregistered traffic goes out.
    mesh.known_traffic_succeeds()?;

    // 2. The inventory names all three, with their protocols, would_block.
    let table = mesh.inventory_shows(&[
        (HTTP_HOST, "HTTP", "would_block"),
        (TLS_HOST, "TLS", "would_block"),
        (&host, "TCP", "would_block"),
    ])?;
    println!("{} inventory under the dry run:\n{table}", kind.name());
    mesh.counted(
        "istio_requests_total",
        &[HTTP_HOST],
        "would_block",
        &[("request_protocol", "http"), ("response_code", "200")],
    )?;
    mesh.counted(
        "istio_tcp_connections_opened_total",
        &[TLS_HOST],
        "would_block",
        &[("request_protocol", "tcp")],
    )?;
    mesh.counted(
        "istio_tcp_connections_opened_total",
        &[&host, &tcp_target],
        "would_block",
        &[("request_protocol", "tcp")],
    )?;

    // 3. Suggested ServiceEntries, validated, served; the dry run ends.
    let suggested = egress::suggest(mesh.state.path(), Some(NAMESPACE))?;
    suggested.ensure_success()?;
    println!("{} suggests:\n{}", kind.name(), suggested.stdout);
    let entries = egress::count_kind(&suggested.stdout, "ServiceEntry")?;
    ensure!(
        entries == 3,
        "expected three ServiceEntries, got {entries}:\n{}",
        suggested.stdout
    );
    // Validated with the mesh's config as it will be served.
    let check = ConfigDir::new()?;
    for (file, yaml) in REGISTERED {
        check.write(file, yaml)?;
    }
    check.write("sidecar.yaml", &egress::root_registry_only_sidecar(false))?;
    check.write("suggested.yaml", &suggested.stdout)?;
    control_plane::validate(check.path(), None)?
        .ensure_success()
        .context("control-plane validate on the suggested ServiceEntries")?;
    mesh.config.write("suggested.yaml", &suggested.stdout)?;
    mesh.config
        .write("sidecar.yaml", &egress::root_registry_only_sidecar(false))?;

    // A new HTTP host is blocked, named in the body, the log and the counts.
    let blocked_body = format!("no ServiceEntry allows {NEW_HTTP_HOST} (REGISTRY_ONLY)\n");
    let blocked = eventually(CONVERGE, || {
        let response = mesh.curl("http", NEW_HTTP_HOST)?;
        ensure!(
            response.status == 502 && response.body == blocked_body,
            "expected 502 {blocked_body:?}, got {} {:?} (curl exit {})",
            response.status,
            response.body,
            response.exit_code
        );
        Ok(response)
    })
    .with_context(|| format!("REGISTRY_ONLY never came\n{}", mesh.proxy.logs()))?;
    ensure!(
        blocked
            .header("content-type")
            .is_some_and(|value| value.starts_with("text/plain")),
        "the blocked reply is text/plain: {:?}",
        blocked.headers
    );
    // Asked for again, now that it is blocked: the server sees nothing.
    let seen = mesh.http.requests().len();
    mesh.curl("http", NEW_HTTP_HOST)?.ensure_status(502)?;
    ensure!(
        mesh.http.requests().len() == seen,
        "a blocked request must not reach the server: {:?}",
        mesh.http.requests().last()
    );
    let line = mesh.log_line_naming(NEW_HTTP_HOST, "\" 502 ")?;
    println!("{} blocked HTTP: {line}", kind.name());
    // The same traffic as before still succeeds.
    mesh.known_traffic_succeeds()?;
    mesh.counted(
        "istio_requests_total",
        &[NEW_HTTP_HOST],
        "blocked",
        &[("response_code", "502")],
    )?;

    // A new HTTPS host is reset; its log line names the SNI.
    let reset = mesh.curl("https", NEW_TLS_HOST)?;
    ensure!(
        reset.exit_code != 0 && reset.status == 0,
        "blocked TLS is reset, as Envoy's BlackHoleCluster does: {reset:?}"
    );
    // Envoy's stdout format has no SNI field: its SNI reaches the
    // inventory over the access log service instead (checked below).
    if kind == Kind::Agent {
        let line = mesh.log_line_naming(NEW_TLS_HOST, " BlackHoleCluster ")?;
        println!("agent blocked TLS (curl exit {}): {line}", reset.exit_code);
    }
    ensure!(
        !mesh
            .https
            .tls_hellos()
            .iter()
            .any(|hello| hello.sni.as_deref() == Some(NEW_TLS_HOST)),
        "a blocked TLS connection must not reach the server"
    );
    let table = mesh.inventory_shows(&[
        (NEW_HTTP_HOST, "HTTP", "blocked"),
        (NEW_TLS_HOST, "TLS", "blocked"),
    ])?;
    println!("{} inventory under REGISTRY_ONLY:\n{table}", kind.name());
    Ok(())
}

/// The lines of `text` that are series of `metric`, for a failure.
fn series_of(text: &str, metric: &str) -> String {
    text.lines()
        .filter(|line| line.starts_with(metric))
        .collect::<Vec<_>>()
        .join("\n")
}
