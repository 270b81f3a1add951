//! The agent's admin interface answers as a real Envoy 1.40's does, for the
//! endpoints operators script against: the same statuses, content types
//! and body shapes (not values), each proxy an egress gateway of the same
//! control plane, one after the other (they would bind the same port).
//! `/quitquitquit` (POST) ends both.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use integration_tests::admin::Admin;
use integration_tests::control_plane::{ConfigDir, ControlPlane};
use integration_tests::curl::CurlResponse;
use integration_tests::data_plane::DataPlane;
use integration_tests::dns::DnsServer;
use integration_tests::envoy::Envoy;
use integration_tests::fixtures::{GatewayPort, egress_gateway_service, example_mesh, mesh_config};
use integration_tests::ports;
use integration_tests::proxy_options::ProxyOptions;
use serde_json::Value;

/// How long a proxy gets to go live, and to exit after `/quitquitquit`.
const READY: Duration = Duration::from_secs(30);

/// What one proxy answered, request by request.
#[derive(Debug)]
struct Answers(Vec<(&'static str, CurlResponse)>);

/// The requests compared: method and path.
const REQUESTS: [(&str, &str); 13] = [
    ("GET", "/stats"),
    ("GET", "/stats?format=json"),
    ("GET", "/stats/prometheus"),
    ("GET", "/listeners"),
    ("GET", "/listeners?format=json"),
    ("GET", "/help"),
    ("GET", "/ready"),
    ("GET", "/logging"),
    ("POST", "/logging"),
    ("POST", "/logging?level=bogus"),
    ("GET", "/quitquitquit"),
    ("GET", "/no/such/path"),
    ("POST", "/quitquitquit"),
];

fn ask(admin: Admin) -> Result<Answers> {
    let mut answers = Vec::new();
    for (method, path) in REQUESTS {
        let response = admin.request(method, path)?;
        ensure!(response.exit_code == 0, "{method} {path}: {response:?}");
        answers.push((path, response));
    }
    Ok(Answers(answers))
}

/// The shape of a response, as far as both proxies must agree on it.
fn shape(method_path: (&str, &str), response: &CurlResponse) -> Result<String> {
    let (method, path) = method_path;
    let content_type = response.header("content-type").unwrap_or("");
    let body = &response.body;
    let kind = match (method, path) {
        ("GET", "/stats") => {
            let odd: Vec<&str> = body
                .lines()
                .filter(|line| {
                    line.split_once(": ")
                        .is_none_or(|(name, value)| name.contains(' ') || value.is_empty())
                })
                .collect();
            ensure!(
                !body.is_empty() && odd.is_empty(),
                "not `name: value`: {odd:?}"
            );
            "name: value lines".to_string()
        }
        ("GET", "/stats?format=json") => {
            let json: Value = serde_json::from_str(body)?;
            let stats = json["stats"].as_array().context("no stats array")?;
            let odd: Vec<&Value> = stats
                .iter()
                .filter(|stat| stat.get("histograms").is_none())
                .filter(|stat| {
                    !stat["name"].is_string()
                        || !(stat["value"].is_number() || stat["value"].is_string())
                })
                .collect();
            ensure!(!stats.is_empty() && odd.is_empty(), "{odd:?}");
            "stats name/value".to_string()
        }
        ("GET", "/stats/prometheus") => {
            ensure!(
                body.lines().any(|l| l.starts_with("# TYPE envoy_")),
                "{body}"
            );
            "prometheus".to_string()
        }
        ("GET", "/listeners") => {
            ensure!(!body.is_empty(), "no listeners");
            for line in body.lines() {
                let (_, address) = line.split_once("::").context(line.to_string())?;
                address
                    .parse::<std::net::SocketAddr>()
                    .context(line.to_string())?;
            }
            "name::address lines".to_string()
        }
        ("GET", "/listeners?format=json") => {
            let json: Value = serde_json::from_str(body)?;
            let first = &json["listener_statuses"][0];
            ensure!(first["name"].is_string(), "{json}");
            ensure!(
                first["local_address"]["socket_address"]["port_value"].is_number(),
                "{json}"
            );
            "listener_statuses".to_string()
        }
        ("GET", "/help") => {
            ensure!(body.starts_with("admin commands are:\n"), "{body}");
            "help".to_string()
        }
        ("GET", "/no/such/path") => {
            ensure!(
                body.starts_with("invalid path. admin commands are:\n"),
                "{body}"
            );
            "invalid path + help".to_string()
        }
        ("POST", "/logging") => {
            ensure!(body.starts_with("active loggers:\n  "), "{body}");
            "active loggers".to_string()
        }
        ("POST", "/logging?level=bogus") => {
            ensure!(
                body.starts_with("error: unknown logger level\n\nusage: /logging?"),
                "{body}"
            );
            "unknown level + usage".to_string()
        }
        // The rest answer alike, word for word.
        _ => format!("{body:?}"),
    };
    Ok(format!(
        "{method} {path}: {} {content_type} {kind}",
        response.status
    ))
}

fn shapes(answers: &Answers) -> Result<Vec<String>> {
    REQUESTS
        .iter()
        .zip(&answers.0)
        .map(|(request, (_, response))| {
            shape(*request, response).with_context(|| format!("{request:?}"))
        })
        .collect()
}

/// The paths `/help` lists.
fn help_paths(answers: &Answers) -> Vec<String> {
    let help = &answers
        .0
        .iter()
        .find(|(path, _)| *path == "/help")
        .unwrap()
        .1;
    help.body
        .lines()
        .filter_map(|line| line.strip_prefix("  /"))
        .filter_map(|line| line.split([':', ' ']).next())
        .map(|path| format!("/{path}"))
        .collect()
}

#[test]
fn the_agents_admin_answers_as_envoys() -> Result<()> {
    let listen_port = ports::free_port()?;
    let config = ConfigDir::new()?;
    let yaml = std::fs::read_to_string(example_mesh().join("cnn-via-egress-gateway.yaml"))
        .context("reading examples/mesh/cnn-via-egress-gateway.yaml")?;
    config.write("cnn-via-egress-gateway.yaml", &yaml)?;
    config.write(
        "egressgateway-service.yaml",
        &egress_gateway_service(&[GatewayPort::new(80, "HTTP").target(listen_port)])?,
    )?;
    let control_plane = ControlPlane::start(config.path(), Some(&mesh_config("registry-only")))?;
    let dns = DnsServer::start_on(
        Ipv4Addr::LOCALHOST,
        [("edition.cnn.com", Ipv4Addr::LOCALHOST)],
    )?;
    let options = ProxyOptions::egress_gateway(control_plane.channel(), dns.addr());

    let started = Instant::now();
    let mut envoy = Envoy::start(&options)?;
    envoy.wait_ready(READY)?;
    let envoy_answers = ask(Admin::new("envoy", envoy.admin_addr()))?;
    envoy.wait_exit(READY)?;
    eprintln!("Envoy asked and gone after {:?}", started.elapsed());

    let started = Instant::now();
    let mut agent = DataPlane::start(&options)?;
    let agent_answers = ask(Admin::new("data-plane", agent.admin_addr()))?;
    let status = agent.wait_exit(READY)?;
    eprintln!("agent asked and gone after {:?}", started.elapsed());
    assert!(status.success(), "the agent exits cleanly: {status}");

    assert_eq!(
        shapes(&agent_answers)?,
        shapes(&envoy_answers)?,
        "agent: {agent_answers:#?}"
    );
    let envoys = help_paths(&envoy_answers);
    let agents = help_paths(&agent_answers);
    let missing: Vec<&String> = agents
        .iter()
        .filter(|path| *path != "/healthz/ready" && !envoys.contains(path))
        .collect();
    assert!(missing.is_empty(), "not Envoy's paths: {missing:?}");
    Ok(())
}
