//! `control-plane`: serve Istio config as xDS to authenticated proxies,
//! validate it, dump the xDS a proxy would get, or mint a proxy's token.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use control_plane::auth::{Authenticator, KubernetesTokens, ServiceAccount, TokenSigningKey};
use control_plane::ca::{self, CertificateAuthority, RootSource, ServerName};
use control_plane::config::watch::ConfigWatcher;
use control_plane::config::{self, ConfigSnapshot};
use control_plane::metrics::{self, Metrics};
use control_plane::translate::{self, Proxy, TypedResources};
use control_plane::xds::{
    self, DEFAULT_GATEWAY_SERVICE_ACCOUNT, SecureServer, TrustedGateways, XdsContext,
    state::MeshStatePublisher,
};
use shared::type_url;

#[derive(Parser)]
#[command(
    name = "control-plane",
    version,
    about = "Istio config in, Envoy v3 xDS out over ADS, to proxies that prove who they are"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the config in DIR over ADS on the secure port (TLS, a bearer
    /// token on every call) with Istio's CA API, reloading it when files
    /// change.
    Serve(ServeOptions),
    /// Check the config in DIR: exit 0 with a summary, or 1 with one line per error.
    Validate {
        dir: PathBuf,
        #[arg(long)]
        mesh: Option<PathBuf>,
    },
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

#[derive(Args)]
struct ServeOptions {
    /// Directory of Istio resources (*.yaml, *.yml; multi-document).
    #[arg(long)]
    config: PathBuf,
    /// MeshConfig file (outboundTrafficPolicy, trustDomain...); default ALLOW_ANY.
    #[arg(long)]
    mesh: Option<PathBuf>,
    /// Address of the secure xDS server: TLS with a certificate of the mesh
    /// CA, a bearer token on every call; ADS, CSDS and Istio's CA API.
    #[arg(long, default_value = "127.0.0.1:15012")]
    secure_xds_addr: SocketAddr,
    /// Also serve xDS without TLS or tokens on ADDR (bare flag:
    /// 127.0.0.1:15010): config only, never certificates, and its proxies
    /// never become service endpoints.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:15010")]
    plaintext_xds_addr: Option<SocketAddr>,
    /// Address of the Prometheus metrics endpoint (GET /metrics).
    #[arg(long, default_value = "127.0.0.1:15014")]
    metrics_addr: SocketAddr,
    /// The mesh CA directory: ca-cert.pem and ca-key.pem (PKCS#8), generated
    /// there when it has neither; root-cert.pem (the root proxies trust,
    /// their --ca-root) and token-key.pem (signs `token create` tokens) are
    /// written there.
    #[arg(long, value_name = "DIR")]
    ca_dir: PathBuf,
    /// Lifetime of workload certificates (e.g. 24h, 1h, 90s); a shorter
    /// lifetime asked for in a CSR is honoured.
    #[arg(long, default_value = "24h", value_parser = parse_lifetime)]
    workload_cert_ttl: Duration,
    /// Another DNS name or IP address for the serving certificate, besides
    /// istiod.istio-system.svc (repeatable), e.g. the address proxies dial.
    #[arg(long = "xds-san", value_name = "NAME|IP")]
    xds_sans: Vec<ServerName>,
    /// Also accept Kubernetes service-account tokens signed by a key of
    /// this JWKS file (`kubectl get --raw /openid/v1/jwks`).
    #[arg(long, value_name = "FILE", requires = "jwt_issuer")]
    jwks: Option<PathBuf>,
    /// The issuer (`iss`) of those tokens, e.g.
    /// https://kubernetes.default.svc.cluster.local.
    #[arg(long, value_name = "URL", requires = "jwks")]
    jwt_issuer: Option<String>,
    /// NAMESPACE/SERVICE_ACCOUNT whose router proxies are endpoints of the
    /// services that select their labels (repeatable; given, it replaces
    /// the default).
    #[arg(long = "gateway-service-account", value_name = "NS/SA", default_value = DEFAULT_GATEWAY_SERVICE_ACCOUNT)]
    gateway_service_accounts: Vec<ServiceAccount>,
}

#[derive(Clone, Copy, ValueEnum)]
enum DumpType {
    Clusters,
    Listeners,
    Routes,
    Endpoints,
    All,
}

impl DumpType {
    fn type_urls(self) -> Vec<&'static str> {
        match self {
            DumpType::Clusters => vec![type_url::CLUSTER],
            DumpType::Listeners => vec![type_url::LISTENER],
            DumpType::Routes => vec![type_url::ROUTE],
            DumpType::Endpoints => vec![type_url::ENDPOINT],
            DumpType::All => vec![
                type_url::CLUSTER,
                type_url::ENDPOINT,
                type_url::LISTENER,
                type_url::ROUTE,
            ],
        }
    }
}

fn main() -> ExitCode {
    shared::telemetry::init_tracing("info");
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(options) => serve(options),
        Command::Validate { dir, mesh } => return validate(&dir, mesh.as_deref()),
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
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn validate(dir: &Path, mesh: Option<&Path>) -> ExitCode {
    match config::load::load_validated(dir, mesh) {
        Ok(snapshot) => {
            println!("{}: valid: {}", dir.display(), summary(&snapshot));
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for error in &errors.0 {
                println!("{error}");
            }
            ExitCode::FAILURE
        }
    }
}

fn summary(s: &ConfigSnapshot) -> String {
    format!(
        "{} ServiceEntry, {} VirtualService, {} DestinationRule, {} Gateway, {} Sidecar, {} WorkloadEntry, {} WorkloadGroup; outboundTrafficPolicy {:?}",
        s.service_entries.len(),
        s.virtual_services.len(),
        s.destination_rules.len(),
        s.gateways.len(),
        s.sidecars.len(),
        s.workload_entries.len(),
        s.workload_groups.len(),
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
    let snapshot = config::load::load_validated(options.dir, options.mesh)
        .map_err(|errors| anyhow::anyhow!("{errors}"))?;
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
    };
    let workloads: Vec<_> = proxy.as_workload().into_iter().collect();
    let resources: TypedResources =
        translate::translate(&snapshot, &workloads, &proxy).into_typed();
    let json = translate::to_json(&resources, &options.kind.type_urls())?;
    println!("{}", serde_json::to_string_pretty(&json)?);
    Ok(())
}

/// `token create`: the token on stdout, nothing else.
fn create_token(
    ca_dir: &Path,
    namespace: &str,
    service_account: &str,
    ttl: Duration,
) -> anyhow::Result<()> {
    let account = ServiceAccount::new(namespace, service_account)?;
    let key = token_signing_key(ca_dir)?;
    println!("{}", key.mint(&account, SystemTime::now(), ttl)?);
    Ok(())
}

/// The token key in `ca_dir`, created on first need.
fn token_signing_key(ca_dir: &Path) -> anyhow::Result<TokenSigningKey> {
    let pem = ca::load_or_create_token_key(ca_dir)?;
    TokenSigningKey::from_pem(&pem)
        .with_context(|| format!("read {}", ca_dir.join(ca::TOKEN_KEY_FILE).display()))
}

/// The mesh CA in `ca_dir`, loaded or created (and `root-cert.pem` written).
fn certificate_authority(
    ca_dir: &Path,
    trust_domain: &str,
    ttl: Duration,
) -> anyhow::Result<CertificateAuthority> {
    let ca = CertificateAuthority::load_or_create(ca_dir, trust_domain, ttl)?;
    let action = match ca.source() {
        RootSource::Created(_) => "generated a root CA and saved it",
        RootSource::Loaded(_) => "loaded the root CA",
    };
    tracing::info!(
        dir = %ca_dir.display(),
        root = %ca_dir.join(ca::ROOT_CERT_FILE).display(),
        workload_cert_ttl = %humantime::format_duration(ttl),
        "{action}"
    );
    Ok(ca)
}

/// Who may call the secure port: the control plane's own tokens and, with
/// `--jwks`, a cluster's.
fn authenticator(options: &ServeOptions) -> anyhow::Result<Authenticator> {
    let own = token_signing_key(&options.ca_dir)?;
    let kubernetes = match (&options.jwks, &options.jwt_issuer) {
        (Some(jwks), Some(issuer)) => Some(KubernetesTokens::load(jwks, issuer)?),
        _ => None,
    };
    Ok(Authenticator::new(&own, kubernetes))
}

/// Resolves once, when the returned sender fires or is dropped.
async fn stopped(mut rx: tokio::sync::watch::Receiver<()>) {
    let _ = rx.changed().await;
}

fn serve(options: ServeOptions) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    runtime.block_on(async move {
        let metrics = Arc::new(Metrics::default());
        let dir = &options.config;
        let (watcher, mut snapshots) = ConfigWatcher::start(
            dir.clone(),
            options.mesh.clone(),
            metrics.config_errors.clone(),
        )
        .with_context(|| format!("load the config in {}", dir.display()))?;
        let initial = snapshots.borrow_and_update().clone();
        metrics.config_version.set(initial.version as i64);
        tracing::info!(dir = %dir.display(), "serving config: {}", summary(&initial));
        let ca = certificate_authority(
            &options.ca_dir,
            &initial.mesh.trust_domain,
            options.workload_cert_ttl,
        )
        .context("start the mesh certificate authority")?;
        let certificate = ca
            .issue_server_certificate(&options.xds_sans)
            .context("issue the control plane's serving certificate")?;
        let secure = SecureServer {
            ca: Arc::new(ca),
            certificate,
            authenticator: Arc::new(authenticator(&options)?),
        };
        let publisher = MeshStatePublisher::new(initial);
        let gateways = TrustedGateways::new(options.gateway_service_accounts.iter().cloned());
        let context = XdsContext::new(publisher.clone(), metrics.clone(), gateways);

        let secure_addr = options.secure_xds_addr;
        let secure_listener = xds::bind(secure_addr).await.with_context(|| {
            format!("bind the secure xDS address {secure_addr} (is another control plane running?)")
        })?;
        let plaintext_listener = match options.plaintext_xds_addr {
            Some(addr) => Some(xds::bind(addr).await.with_context(|| {
                format!("bind the plaintext xDS address {addr} (is another control plane running?)")
            })?),
            None => None,
        };
        let metrics_addr = options.metrics_addr;
        let metrics_listener = metrics::bind(metrics_addr)
            .await
            .with_context(|| format!("bind the metrics address {metrics_addr}"))?;
        let gateways: Vec<String> = options
            .gateway_service_accounts
            .iter()
            .map(ToString::to_string)
            .collect();
        tracing::info!(
            %secure_addr,
            plaintext_addr = %options
                .plaintext_xds_addr
                .map_or_else(|| "off".to_string(), |addr| addr.to_string()),
            %metrics_addr,
            server_names = ?options.xds_sans,
            gateway_service_accounts = %gateways.join(","),
            "listening"
        );
        tokio::spawn(metrics::serve(metrics_listener, metrics.clone()));
        let snapshot_metrics = metrics.clone();
        let snapshot_context = context.clone();
        tokio::spawn(async move {
            while snapshots.changed().await.is_ok() {
                let snapshot = snapshots.borrow_and_update().clone();
                snapshot_metrics.config_version.set(snapshot.version as i64);
                tracing::info!(
                    version = snapshot.version,
                    "config changed: {}",
                    summary(&snapshot)
                );
                publisher.set_snapshot(snapshot);
                let generation = snapshot_context.publisher.current().generation;
                snapshot_context.cache.evict_older_than(generation);
            }
        });
        let (stop, stop_rx) = tokio::sync::watch::channel(());
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("shutting down");
            let _ = stop.send(());
        });
        let plaintext = async {
            match plaintext_listener {
                Some(listener) => {
                    xds::serve_plaintext(listener, context.clone(), stopped(stop_rx.clone())).await
                }
                None => Ok(()),
            }
        };
        tokio::try_join!(
            xds::serve_secure(
                secure_listener,
                context.clone(),
                secure,
                stopped(stop_rx.clone())
            ),
            plaintext,
        )?;
        drop(watcher);
        Ok(())
    })
}

#[cfg(test)]
mod tests {
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
    fn the_plaintext_port_is_off_unless_asked_and_bare_means_loopback_15010() {
        let serve = |extra: &[&str]| {
            let mut args = vec!["control-plane", "serve", "--config", "c", "--ca-dir", "ca"];
            args.extend_from_slice(extra);
            match Cli::try_parse_from(args).map(|cli| cli.command) {
                Ok(Command::Serve(options)) => Ok(options),
                Ok(_) => panic!("not serve"),
                Err(error) => Err(error.kind()),
            }
        };
        let defaults = serve(&[]).expect("parses");
        assert_eq!(defaults.secure_xds_addr, "127.0.0.1:15012".parse().unwrap());
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
