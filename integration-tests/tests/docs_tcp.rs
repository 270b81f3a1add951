//! TCP egress as istio.io publishes it, with real TCP services in network
//! namespaces: two databases on one port told apart by address (the
//! egress-mongo and egress-tcp blog posts' ServiceEntries), a ServiceEntry
//! for a range of addresses, the egress-mongo post's two-hop route through
//! the egress gateway (VirtualService `tcp:`), and the http-proxy task: a
//! TCP ServiceEntry for an HTTPS proxy that the app reaches with CONNECT.
//!
//! The app runs in a namespace behind istio-init's capture; each database
//! is a [`TcpGreeter`] in a namespace of its own linked to the app's, as is
//! the proxy with the site behind it; the database behind the egress
//! gateway runs on the host, where the gateway is. The snippets name the services by
//! address, so each proxy kind gets its own control plane and namespaces;
//! the steps' results must be the same for our agent and for Envoy, and
//! what Istio gives.
//!
//! Needs root (namespaces, iptables): see `netns::require_root`.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use anyhow::{Context, Result, ensure};
use integration_tests::connect_proxy::ConnectProxy;
use integration_tests::control_plane::{ConfigDir, ControlPlane};
use integration_tests::curl::Curl;
use integration_tests::dns::DnsServer;
use integration_tests::docs::{expand, snippet};
use integration_tests::fixtures::{GatewayPort, egress_gateway_service, mesh_config};
use integration_tests::netns::{self, NetNs};
use integration_tests::parity::{CONVERGE, Kind, Proxy};
use integration_tests::ports::free_port;
use integration_tests::process::eventually;
use integration_tests::tcp_greeter::{TcpGreeter, greeting};
use integration_tests::tls::TestCa;
use integration_tests::upstream::Upstream;

/// The port every database listens on (MongoDB's).
const DB_PORT: u16 = 27017;
/// The gateway port the egress-mongo post picks.
const EGRESS_GATEWAY_MONGODB_PORT: u16 = 7777;
/// squid's port in the http-proxy task.
const PROXY_PORT: u16 = 3128;
const MYSQL_DB_HOST: &str = "mysqldb.example.com";
const GATEWAY_MONGO_CLUSTER: &str =
    "outbound|7777|mongo|istio-egressgateway.istio-system.svc.cluster.local";

/// One proxy kind's world: its control plane and config, the app's
/// namespace with the sidecar, the databases, and the proxy of the
/// http-proxy task with the site behind it.
struct World {
    kind: Kind,
    config: ConfigDir,
    app: NetNs,
    sidecar: Proxy,
    mongo: Db,
    mysql: Db,
    ranged: Db,
    /// The database the egress gateway reaches, on the host.
    behind_gateway: TcpGreeter,
    squid: ConnectProxy,
    wikipedia: Upstream,
    // Dropped last: the processes and servers above use them.
    dns: DnsServer,
    control_plane: ControlPlane,
    _namespaces: Vec<NetNs>,
}

/// A database in a namespace linked to the app's.
struct Db {
    /// Serving while the world lives.
    _greeter: TcpGreeter,
    ip: Ipv4Addr,
    /// The /30 of the link it is on.
    range: String,
}

impl World {
    fn start(kind: Kind, ca: &TestCa) -> Result<Self> {
        let config = ConfigDir::new()?;
        let control_plane =
            ControlPlane::start_for_namespaces(config.path(), Some(&mesh_config("registry-only")))?;
        let app = NetNs::new()?;
        let host = app.host_ip();
        let control = control_plane.channel().via(IpAddr::V4(host));
        let dns = DnsServer::start_on(host, [("en.wikipedia.org", host)])?;
        app.data_plane_init(
            control.addr().port(),
            &["--include-outbound-ip-ranges", "*"],
            CONVERGE,
        )?;
        let sidecar = Proxy::sidecar(kind, &app, control, dns.addr(), ca.cert_path())?;
        let mut namespaces = Vec::new();
        let mut db = |name: &str| -> Result<Db> {
            let netns = NetNs::new()?;
            let (_, ip) = app.link(&netns)?;
            let greeter = TcpGreeter::start(Some(&netns), SocketAddr::from((ip, DB_PORT)), name)?;
            namespaces.push(netns);
            let network = Ipv4Addr::from(u32::from(ip) & !3);
            Ok(Db {
                _greeter: greeter,
                ip,
                range: format!("{network}/30"),
            })
        };
        let mongo = db("mongo")?;
        let mysql = db("mysql")?;
        let ranged = db("ranged")?;
        let behind_gateway = TcpGreeter::start(
            None,
            SocketAddr::from((host, DB_PORT)),
            "behind the gateway",
        )?;
        let proxy_ns = NetNs::new()?;
        let (_, proxy_ip) = app.link(&proxy_ns)?;
        let wikipedia = proxy_ns.run_inside(|| {
            Upstream::https_on(SocketAddr::from((proxy_ip, 443)), ca, &["en.wikipedia.org"])
        })?;
        let squid = ConnectProxy::start(
            Some(&proxy_ns),
            SocketAddr::from((proxy_ip, PROXY_PORT)),
            HashMap::from([("en.wikipedia.org".to_string(), wikipedia.addr())]),
        )?;
        namespaces.push(proxy_ns);
        Ok(Self {
            kind,
            config,
            app,
            sidecar,
            mongo,
            mysql,
            ranged,
            behind_gateway,
            squid,
            wikipedia,
            dns,
            control_plane,
            _namespaces: namespaces,
        })
    }

    /// The values the snippets' shell variables take in this world.
    fn values(&self, mongodb_ip: Ipv4Addr) -> Vec<(&'static str, String)> {
        vec![
            ("MONGODB_IP", mongodb_ip.to_string()),
            ("MONGODB_PORT", DB_PORT.to_string()),
            (
                "EGRESS_GATEWAY_MONGODB_PORT",
                EGRESS_GATEWAY_MONGODB_PORT.to_string(),
            ),
            ("MYSQL_DB_HOST", MYSQL_DB_HOST.to_string()),
            ("MYSQL_DB_IP", self.mysql.ip.to_string()),
            ("MYSQL_DB_PORT", DB_PORT.to_string()),
            ("DB_RANGE", self.ranged.range.clone()),
            ("DB_PORT", DB_PORT.to_string()),
            ("PROXY_IP", self.squid.addr().ip().to_string()),
            ("PROXY_PORT", PROXY_PORT.to_string()),
        ]
    }

    /// Makes the config directory hold exactly `files` (snippets of
    /// `fixtures/docs`, expanded with `values`), plus `extra`.
    fn apply(
        &self,
        files: &[&str],
        extra: &[(&str, String)],
        values: &[(&'static str, String)],
    ) -> Result<()> {
        for entry in std::fs::read_dir(self.config.path())? {
            let name = entry?.file_name();
            self.config.remove(&name.to_string_lossy())?;
        }
        for path in files {
            let name = path.replace('/', "--");
            self.config.write(&name, &expand(&snippet(path)?, values))?;
        }
        for (name, yaml) in extra {
            self.config.write(name, yaml)?;
        }
        Ok(())
    }

    /// Waits until the sidecar's config has a resource named `name`
    /// holding `text`.
    fn wait_for(&self, name: &str, text: &str) -> Result<()> {
        eventually(CONVERGE, || {
            let resources = self.sidecar.config()?;
            let json = resources
                .resource(name)
                .with_context(|| format!("no resource named {name}"))?
                .to_string();
            ensure!(json.contains(text), "{name} lacks {text}");
            Ok(())
        })
        .with_context(|| {
            format!(
                "the {} sidecar never showed {name} with {text}\n{}",
                self.kind.name(),
                self.sidecar.logs()
            )
        })
    }

    /// What the app hears when it connects to `ip`: the service's greeting,
    /// or `no greeting` (reset, closed or refused).
    fn hear(&self, ip: Ipv4Addr) -> String {
        greeting(&self.app, SocketAddr::from((ip, DB_PORT)))
            .unwrap_or_else(|_| "no greeting".to_string())
    }

    /// The app's `curl -x <proxy> https://en.wikipedia.org/wiki/Main_Page`,
    /// as the http-proxy task's `HTTPS_PROXY=...` curl: the status or
    /// curl's exit code, and the CONNECT target the proxy logged.
    fn curl_through_proxy(&self, ca_cert: &Path) -> Result<String> {
        let seen = self.squid.targets().len();
        let response = Curl::get("https://en.wikipedia.org/wiki/Main_Page")
            .proxy(self.squid.addr())
            .cacert(ca_cert)
            .in_netns(&self.app)
            .run()?;
        let result = if response.exit_code == 0 {
            format!("HTTP {}", response.status)
        } else {
            format!("curl exit {}", response.exit_code)
        };
        let targets = self.squid.targets();
        let connect = targets.get(seen).map_or("-", String::as_str);
        let sni = self
            .wikipedia
            .tls_hellos()
            .last()
            .and_then(|hello| hello.sni.clone())
            .unwrap_or_else(|| "-".to_string());
        Ok(format!(
            "{result}, proxy saw CONNECT {connect}, site saw SNI {sni}"
        ))
    }
}

/// The databases' steps: nothing declared, two ServiceEntries for one
/// port told apart by address, then a ServiceEntry for a range.
fn databases(world: &World, _ca: &TestCa) -> Result<Vec<String>> {
    let mongo_here = world.values(world.mongo.ip);
    let mut lines = Vec::new();

    world.apply(&[], &[], &mongo_here)?;
    world.wait_for("virtualOutbound", "BlackHoleCluster")?;
    lines.push(format!(
        "REGISTRY_ONLY, nothing declared: mongo {}",
        world.hear(world.mongo.ip)
    ));

    let two_databases = [
        "blog-egress-mongo/control_tcp_egress_traffic_without_a_gateway.yaml",
        "blog-egress-tcp/mesh_external_service_entry_for_an_external_mysql_instance.yaml",
    ];
    world.apply(&two_databases, &[], &mongo_here)?;
    world.wait_for(&format!("{}_{DB_PORT}", world.mongo.ip), "my-mongo.tcp.svc")?;
    world.wait_for(&format!("{}_{DB_PORT}", world.mysql.ip), MYSQL_DB_HOST)?;
    lines.push(format!(
        "two databases on one port: mongo's address -> {}, mysql's address -> {}, an undeclared address -> {}",
        world.hear(world.mongo.ip),
        world.hear(world.mysql.ip),
        world.hear(world.ranged.ip)
    ));

    let with_range = [
        two_databases[0],
        two_databases[1],
        "harness/cidr-service-entry.yaml",
    ];
    world.apply(&with_range, &[], &mongo_here)?;
    world.wait_for(&format!("0.0.0.0_{DB_PORT}"), "databases.example.com")?;
    lines.push(format!(
        "a ServiceEntry for a range: an address in it -> {}, mongo's address -> {}",
        world.hear(world.ranged.ip),
        world.hear(world.mongo.ip)
    ));
    Ok(lines)
}

/// The egress-mongo post's route through the egress gateway: the sidecar
/// sends mongo's address to the gateway's TCP server (port 7777), which
/// forwards it to the database by the VirtualService's second `tcp` route.
fn through_the_gateway(world: &World, ca: &TestCa) -> Result<Vec<String>> {
    let host = world.app.host_ip();
    let gateway_port = free_port()?;
    let gateway_service =
        egress_gateway_service(&[
            GatewayPort::new(EGRESS_GATEWAY_MONGODB_PORT, "TCP").target(gateway_port)
        ])?;
    world.apply(
        &[
            "blog-egress-mongo/control_tcp_egress_traffic_without_a_gateway.yaml",
            "blog-egress-mongo/direct_tcp_egress_traffic_through_an_egress_gateway.yaml",
        ],
        &[("egressgateway-service.yaml", gateway_service)],
        &world.values(host),
    )?;
    world.wait_for(&format!("{host}_{DB_PORT}"), GATEWAY_MONGO_CLUSTER)?;
    let gateway = Proxy::gateway(
        world.kind,
        host,
        world.control_plane.channel().via(IpAddr::V4(host)),
        world.dns.addr(),
        ca.cert_path(),
    )?;
    eventually(CONVERGE, || {
        let resources = world.sidecar.config()?;
        let endpoints = resources
            .endpoints
            .get(GATEWAY_MONGO_CLUSTER)
            .cloned()
            .unwrap_or_default();
        ensure!(
            endpoints == [format!("{host}:{gateway_port}")],
            "{GATEWAY_MONGO_CLUSTER} has endpoints {endpoints:?}"
        );
        Ok(())
    })
    .with_context(|| format!("the gateway never became the endpoint\n{}", gateway.logs()))?;
    let heard = world.hear(host);
    let peer = world
        .behind_gateway
        .peers()
        .last()
        .map_or("nobody", |peer| {
            if peer.ip() == IpAddr::V4(host) {
                "the gateway"
            } else {
                "not the gateway"
            }
        });
    Ok(vec![format!(
        "through the egress gateway (tcp, two hops): mongo's address -> {heard}, connected by {peer}"
    )])
}

/// The http-proxy task: the app's CONNECT to the proxy, blocked under
/// REGISTRY_ONLY, then let through by the TCP ServiceEntry for it.
fn http_proxy(world: &World, ca: &TestCa) -> Result<Vec<String>> {
    let values = world.values(world.mongo.ip);
    let mut lines = Vec::new();
    world.apply(&[], &[], &values)?;
    world.wait_for("virtualOutbound", "BlackHoleCluster")?;
    lines.push(format!(
        "http-proxy, REGISTRY_ONLY without its ServiceEntry: {}",
        world.curl_through_proxy(ca.cert_path())?
    ));

    world.apply(
        &["http-proxy/configure_traffic_to_external_https_proxy_1.yaml"],
        &[],
        &values,
    )?;
    world.wait_for(
        &format!("{}_{PROXY_PORT}", world.squid.addr().ip()),
        "my-company-proxy.com",
    )?;
    lines.push(format!(
        "http-proxy, TCP ServiceEntry for the proxy: {}",
        world.curl_through_proxy(ca.cert_path())?
    ));
    Ok(lines)
}

/// One test at a time: each builds namespaces and proxies of both kinds,
/// and the machine's cores are few.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Runs `steps` in a world of each proxy kind; both must give `expected`.
fn run_both(
    test: &str,
    steps: fn(&World, &TestCa) -> Result<Vec<String>>,
    expected: &[&str],
) -> Result<()> {
    if !netns::require_root(test) {
        return Ok(());
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    let ca = TestCa::new()?;
    let mut results = Vec::new();
    for kind in [Kind::Agent, Kind::Envoy] {
        let world = World::start(kind, &ca)?;
        let lines = steps(&world, &ca)?;
        for line in &lines {
            println!("{:<5} {line}", kind.name());
        }
        results.push((kind, lines));
    }
    for (kind, lines) in &results {
        assert_eq!(
            lines,
            expected,
            "{} is not as Istio gives (left: got, right: expected)",
            kind.name()
        );
    }
    Ok(())
}

#[test]
fn tcp_databases_told_apart_by_address_and_range() -> Result<()> {
    run_both(
        "tcp_databases_told_apart_by_address_and_range",
        databases,
        &[
            "REGISTRY_ONLY, nothing declared: mongo no greeting",
            "two databases on one port: mongo's address -> mongo, mysql's address -> mysql, an undeclared address -> no greeting",
            "a ServiceEntry for a range: an address in it -> ranged, mongo's address -> mongo",
        ],
    )
}

#[test]
fn http_proxy_task_connect_through_a_tcp_service_entry() -> Result<()> {
    run_both(
        "http_proxy_task_connect_through_a_tcp_service_entry",
        http_proxy,
        &[
            "http-proxy, REGISTRY_ONLY without its ServiceEntry: curl exit 56, proxy saw CONNECT -, site saw SNI -",
            "http-proxy, TCP ServiceEntry for the proxy: HTTP 200, proxy saw CONNECT en.wikipedia.org:443, site saw SNI en.wikipedia.org",
        ],
    )
}

#[test]
fn tcp_route_through_the_egress_gateway() -> Result<()> {
    run_both(
        "tcp_route_through_the_egress_gateway",
        through_the_gateway,
        &[
            "through the egress gateway (tcp, two hops): mongo's address -> behind the gateway, connected by the gateway",
        ],
    )
}
