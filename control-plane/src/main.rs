//! `control-plane`: serve Istio config as xDS to authenticated proxies,
//! validate or analyze it, dump the xDS a proxy would get, mint a proxy's token, or
//! show the egress inventory.

/// The commands' larger parts: `serve`, the trust material it and
/// `token create` set up, `egress`, `analyze`, and the istioctl
/// counterparts reading a running control plane's CSDS.
mod cli {
    pub mod analyze;
    pub mod csds_client;
    pub mod egress;
    pub mod proxy_config;
    pub mod proxy_status;
    pub mod serve;
    pub mod status;
    pub mod table;
    pub mod trust;
}

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use control_plane::config::{self, ConfigSnapshot};
use control_plane::translate::{self, Proxy, TypedResources};
use shared::telemetry::LogFormat;
use shared::type_url;

use cli::analyze::{AnalyzeOptions, analyze};
use cli::egress::{EgressCommand, egress};
use cli::proxy_config::{ProxyConfigOptions, proxy_config};
use cli::proxy_status::{ProxyStatusOptions, proxy_status};
use cli::serve::{ServeOptions, serve};
use cli::status::{StatusOptions, print_status, status_table};
use cli::trust::create_token;

#[derive(Parser)]
#[command(
    name = "control-plane",
    version,
    about = "Istio config in, Envoy v3 xDS out over ADS, to proxies that prove who they are"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// How log lines are written on stderr: `text` (coloured only on a
    /// terminal) or `json` (one object per line: time, level, target,
    /// message, fields).
    #[arg(long, global = true, env = "LOG_FORMAT", default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the config in DIR over ADS on the secure port (TLS, a bearer
    /// token on every call) with Istio's CA API, reloading it when files
    /// change.
    Serve(Box<ServeOptions>),
    /// Check the config in DIR: one line per error (its resource is left
    /// out), per warning and per document of a kind not handled, then a
    /// summary; exit 1 if there is an error.
    Validate {
        dir: PathBuf,
        #[arg(long)]
        mesh: Option<PathBuf>,
        /// Fail on warnings too (references to subsets or gateways that no
        /// resource defines), as `istioctl analyze` does.
        #[arg(long)]
        strict: bool,
    },
    /// Analyze the config in DIR as `istioctl analyze --use-kube=false`
    /// does: the validation findings and Istio's cross-resource checks,
    /// with Istio's message codes (IST0101, ...) where Istio has one; exit
    /// 79 when a message reaches --failure-threshold.
    Analyze(AnalyzeOptions),
    /// Print, as JSON, the xDS a proxy with this identity would get.
    Dump {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        mesh: Option<PathBuf>,
        /// Node id, e.g. sidecar~10.0.0.1~sleep-1.default~default.svc.cluster.local
        #[arg(long)]
        node: String,
        /// Workload labels, k=v,k2=v2 (e.g. istio=egressgateway for a gateway).
        #[arg(long, default_value = "")]
        labels: String,
        /// The proxy's service account (its certificate identity).
        #[arg(long, default_value = "default")]
        service_account: String,
        #[arg(long = "type", value_enum, default_value_t = DumpType::All)]
        kind: DumpType,
    },
    /// Proxy tokens, signed with the key in the CA directory.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// The egress inventory `serve --state-dir` keeps: what workloads
    /// reached outside, and ServiceEntries for what no resource declares.
    Egress {
        #[command(subcommand)]
        command: EgressCommand,
    },
    /// Each proxy connected to a running control plane and, per xDS type,
    /// whether it is SYNCED, NOT SENT or STALE, as `istioctl proxy-status`
    /// (read from CSDS).
    ProxyStatus(ProxyStatusOptions),
    /// The conditions Istio would write on the Gateway API objects in DIR
    /// (Accepted, ResolvedRefs, Programmed), as a table or, with `-o yaml`,
    /// as the status stanzas Kubernetes would store; exit 1 if one does
    /// not hold.
    Status(StatusOptions),
    /// What a connected proxy was sent and acknowledged, as `istioctl
    /// proxy-config` shows it (read from CSDS).
    ProxyConfig(ProxyConfigOptions),
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Print a token (a JWT, audience istio-ca) proving NAMESPACE/SERVICE_ACCOUNT,
    /// for a proxy's --token file. Creates token-key.pem in DIR if needed.
    Create {
        /// The CA directory `serve --ca-dir` uses (its token-key.pem signs).
        #[arg(long, value_name = "DIR")]
        ca_dir: PathBuf,
        #[arg(long)]
        namespace: String,
        #[arg(long)]
        service_account: String,
        /// How long the token is valid (e.g. 24h, 30m, 90s).
        #[arg(long, default_value = "24h", value_parser = parse_lifetime)]
        ttl: Duration,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum DumpType {
    Clusters,
    Listeners,
    Routes,
    Endpoints,
    /// The `kubernetes://` secrets the proxy may read, private keys redacted.
    Secrets,
    All,
}

impl DumpType {
    fn type_urls(self) -> Vec<&'static str> {
        match self {
            DumpType::Clusters => vec![type_url::CLUSTER],
            DumpType::Listeners => vec![type_url::LISTENER],
            DumpType::Routes => vec![type_url::ROUTE],
            DumpType::Endpoints => vec![type_url::ENDPOINT],
            DumpType::Secrets => vec![type_url::SECRET],
            DumpType::All => vec![
                type_url::CLUSTER,
                type_url::ENDPOINT,
                type_url::LISTENER,
                type_url::ROUTE,
                type_url::SECRET,
            ],
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    shared::telemetry::init_logging(cli.log_format, "info");
    let result = match cli.command {
        Command::Serve(options) => serve(*options),
        Command::Validate { dir, mesh, strict } => return validate(&dir, mesh.as_deref(), strict),
        Command::Analyze(options) => match analyze(&options) {
            Ok(code) => return code,
            Err(error) => Err(error),
        },
        Command::Dump {
            config,
            mesh,
            node,
            labels,
            service_account,
            kind,
        } => dump(DumpOptions {
            dir: &config,
            mesh: mesh.as_deref(),
            node: &node,
            labels: &labels,
            service_account: &service_account,
            kind,
        }),
        Command::Token {
            command:
                TokenCommand::Create {
                    ca_dir,
                    namespace,
                    service_account,
                    ttl,
                },
        } => create_token(&ca_dir, &namespace, &service_account, ttl),
        Command::Egress { command } => egress(command),
        Command::ProxyStatus(options) => proxy_status(options).map_err(Into::into),
        Command::Status(options) => match print_status(&options) {
            Ok(code) => return code,
            Err(error) => Err(error),
        },
        Command::ProxyConfig(options) => proxy_config(options).map_err(Into::into),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn validate(dir: &Path, mesh: Option<&Path>, strict: bool) -> ExitCode {
    let checked = config::load_checked(dir, mesh);
    for error in &checked.errors {
        println!("error: {error}");
    }
    for warning in &checked.warnings {
        println!("warning: {warning}");
    }
    for document in &checked.not_handled {
        println!("{document}");
    }
    for object in &checked.not_used {
        println!("{object}");
    }
    if !checked.gateway_api_status.is_empty() {
        println!("Gateway API status:");
        print!("{}", status_table(&checked.gateway_api_status));
    }
    let failed = !checked.errors.is_empty() || (strict && !checked.warnings.is_empty());
    let verdict = match (checked.errors.len(), checked.warnings.len()) {
        (0, 0) => "valid".to_string(),
        (0, warnings) => format!("valid with {warnings} warning(s)"),
        (errors, warnings) => {
            format!("{errors} error(s) (their resources are left out), {warnings} warning(s)")
        }
    };
    println!(
        "{}: {verdict}; served: {}",
        dir.display(),
        summary(&checked.snapshot)
    );
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn summary(s: &ConfigSnapshot) -> String {
    format!(
        "{} ServiceEntry, {} VirtualService, {} DestinationRule, {} Gateway, {} Sidecar, {} WorkloadEntry, {} WorkloadGroup, {} Service, {} Endpoints, {} EndpointSlice; outboundTrafficPolicy {:?}",
        s.service_entries.len(),
        s.virtual_services.len(),
        s.destination_rules.len(),
        s.gateways.len(),
        s.sidecars.len(),
        s.workload_entries.len(),
        s.workload_groups.len(),
        s.services.len(),
        s.endpoints.len(),
        s.endpoint_slices.len(),
        s.mesh.outbound_traffic_policy.mode,
    )
}

/// The shortest lifetime a certificate or token may be given.
const MIN_LIFETIME: Duration = Duration::from_secs(1);

/// Why `--workload-cert-ttl` or `--ttl` was refused.
#[derive(Debug, thiserror::Error)]
enum LifetimeError {
    #[error(transparent)]
    Invalid(#[from] config::duration::DurationError),
    #[error("{0} is too short: the shortest lifetime is {MIN_LIFETIME:?}")]
    TooShort(String),
}

fn parse_lifetime(text: &str) -> Result<Duration, LifetimeError> {
    let ttl = text.parse::<config::duration::Duration>()?.0;
    if ttl < MIN_LIFETIME {
        return Err(LifetimeError::TooShort(text.to_string()));
    }
    Ok(ttl)
}

struct DumpOptions<'a> {
    dir: &'a Path,
    mesh: Option<&'a Path>,
    node: &'a str,
    labels: &'a str,
    service_account: &'a str,
    kind: DumpType,
}

fn dump(options: DumpOptions<'_>) -> anyhow::Result<()> {
    // What `serve` would serve: each resource with an error is left out.
    let checked = config::load_checked(options.dir, options.mesh);
    for error in &checked.errors {
        eprintln!("error: {error}");
    }
    for warning in &checked.warnings {
        eprintln!("warning: {warning}");
    }
    let snapshot = checked.snapshot;
    let node_id: shared::node::NodeId = options.node.parse()?;
    let labels = shared::node::parse_labels(options.labels)?;
    let proxy = Proxy {
        id: options.node.to_string(),
        node_type: node_id.node_type,
        namespace: node_id
            .namespace()
            .unwrap_or(config::DEFAULT_NAMESPACE)
            .to_string(),
        labels,
        ips: vec![node_id.ip.clone()],
        service_account: options.service_account.to_string(),
        dns_capture: false,
    };
    let workloads: Vec<_> = proxy.as_workload().into_iter().collect();
    let resources: TypedResources =
        translate::translate(&snapshot, &workloads, &proxy).into_typed();
    let json = translate::to_json(&resources, &options.kind.type_urls())?;
    println!("{}", serde_json::to_string_pretty(&json)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use control_plane::auth::ServiceAccount;

    use super::*;

    #[test]
    fn a_lifetime_is_at_least_a_second() {
        assert_eq!(parse_lifetime("90s").ok(), Some(Duration::from_secs(90)));
        assert_eq!(parse_lifetime("1s").ok(), Some(MIN_LIFETIME));
        let too_short = parse_lifetime("500ms").expect_err("under a second");
        assert!(matches!(too_short, LifetimeError::TooShort(_)));
        assert_eq!(
            too_short.to_string(),
            "500ms is too short: the shortest lifetime is 1s"
        );
        let invalid = parse_lifetime("soon").expect_err("not a duration");
        assert!(matches!(invalid, LifetimeError::Invalid(_)));
    }

    #[test]
    fn validate_passes_warnings_unless_strict_and_fails_on_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let route = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: vs}\nspec:\n  hosts: [a.example.com]\n  http:\n  - route:\n    - destination: {host: a.example.com, subset: v1}\n";
        std::fs::write(dir.path().join("vs.yaml"), route).expect("write");
        let code = |strict| format!("{:?}", validate(dir.path(), None, strict));
        let success = format!("{:?}", ExitCode::SUCCESS);
        let failure = format!("{:?}", ExitCode::FAILURE);
        assert_eq!(code(false), success, "an undefined subset is a warning");
        assert_eq!(code(true), failure, "--strict fails on warnings");
        std::fs::write(
            dir.path().join("vs.yaml"),
            route.replace("hosts:", "hostz:"),
        )
        .expect("write");
        assert_eq!(code(false), failure, "an error fails");
        let parsed = Cli::try_parse_from(["control-plane", "validate", "d", "--strict"]);
        assert!(matches!(
            parsed.map(|cli| cli.command),
            Ok(Command::Validate { strict: true, .. })
        ));
    }

    #[test]
    fn the_plaintext_port_is_off_unless_asked_and_bare_means_loopback_15010() {
        let serve = |extra: &[&str]| {
            let mut args = vec!["control-plane", "serve", "--config", "c", "--ca-dir", "ca"];
            args.extend_from_slice(extra);
            match Cli::try_parse_from(args).map(|cli| cli.command) {
                Ok(Command::Serve(options)) => Ok(*options),
                Ok(_) => panic!("not serve"),
                Err(error) => Err(error.kind()),
            }
        };
        let defaults = serve(&[]).expect("parses");
        assert_eq!(defaults.secure_xds_addr, "127.0.0.1:15012".parse().unwrap());
        assert_eq!(defaults.max_config_bytes_per_proxy, 256 * 1024 * 1024);
        assert_eq!(defaults.xds_send_timeout, Duration::from_secs(30));
        assert!(serve(&["--xds-send-timeout", "10ms"]).is_err());
        assert_eq!(defaults.plaintext_xds_addr, None);
        assert_eq!(
            defaults.gateway_service_accounts,
            ["istio-system/istio-egressgateway-service-account"
                .parse::<ServiceAccount>()
                .unwrap()]
        );
        let bare = serve(&["--plaintext-xds-addr"]).expect("parses");
        assert_eq!(
            bare.plaintext_xds_addr,
            Some("127.0.0.1:15010".parse().unwrap())
        );
        let given = serve(&["--plaintext-xds-addr", "0.0.0.0:16010"]).expect("parses");
        assert_eq!(
            given.plaintext_xds_addr,
            Some("0.0.0.0:16010".parse().unwrap())
        );
        assert_eq!(
            serve(&["--jwks", "jwks.json"]).err(),
            Some(clap::error::ErrorKind::MissingRequiredArgument),
            "--jwks needs --jwt-issuer"
        );
        assert!(serve(&["--xds-san", "not a name"]).is_err());
        assert!(serve(&["--gateway-service-account", "no-slash"]).is_err());
        let no_ca_dir = Cli::try_parse_from(["control-plane", "serve", "--config", "c"]);
        assert!(no_ca_dir.is_err(), "--ca-dir is required");
    }
}
