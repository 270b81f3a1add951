//! `control-plane`: serve Istio config as xDS, validate it, or dump the xDS a
//! proxy would get.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use control_plane::ca::{self, CertificateAuthority, Identity, RootSource};
use control_plane::config::watch::ConfigWatcher;
use control_plane::config::{self, ConfigSnapshot};
use control_plane::metrics::{self, Metrics};
use control_plane::translate::{self, Proxy, TypedResources, secret};
use control_plane::xds::{self, XdsContext, state::MeshStatePublisher};
use shared::type_url;

#[derive(Parser)]
#[command(
    name = "control-plane",
    version,
    about = "Istio config in, Envoy v3 xDS out over ADS"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the config in DIR over ADS, reloading it when files change.
    Serve {
        /// Directory of Istio resources (*.yaml, *.yml; multi-document).
        #[arg(long)]
        config: PathBuf,
        /// MeshConfig file (outboundTrafficPolicy...); default ALLOW_ANY.
        #[arg(long)]
        mesh: Option<PathBuf>,
        /// Address of the plaintext xDS gRPC server.
        #[arg(long, default_value = "127.0.0.1:15010")]
        xds_addr: SocketAddr,
        /// Address of the Prometheus metrics endpoint (GET /metrics).
        #[arg(long, default_value = "127.0.0.1:15014")]
        metrics_addr: SocketAddr,
        /// The mesh root CA: ca-cert.pem and ca-key.pem (PKCS#8) in DIR; when
        /// DIR has neither, a new root is generated and written there. Without
        /// it, a root is generated for this run only.
        #[arg(long, value_name = "DIR")]
        ca_dir: Option<PathBuf>,
        /// Lifetime of workload certificates (e.g. 24h, 1h, 90s); each is
        /// re-issued and re-sent when 80% of it has passed.
        #[arg(long, default_value = "24h", value_parser = parse_cert_ttl)]
        workload_cert_ttl: Duration,
    },
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
        /// `all` is every type but secrets; `secrets` shows them with the
        /// private key redacted.
        #[arg(long = "type", value_enum, default_value_t = DumpType::All)]
        kind: DumpType,
        /// For `--type secrets`: issue from the root in DIR (ca-cert.pem,
        /// ca-key.pem) instead of a throwaway one.
        #[arg(long, value_name = "DIR")]
        ca_dir: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum DumpType {
    Clusters,
    Listeners,
    Routes,
    Endpoints,
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
            ],
        }
    }
}

fn main() -> ExitCode {
    shared::telemetry::init_tracing("info");
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve {
            config,
            mesh,
            xds_addr,
            metrics_addr,
            ca_dir,
            workload_cert_ttl,
        } => serve(ServeOptions {
            dir: config,
            mesh,
            xds_addr,
            metrics_addr,
            ca_dir,
            workload_cert_ttl,
        }),
        Command::Validate { dir, mesh } => return validate(&dir, mesh.as_deref()),
        Command::Dump {
            config,
            mesh,
            node,
            labels,
            service_account,
            kind,
            ca_dir,
        } => dump(DumpOptions {
            dir: &config,
            mesh: mesh.as_deref(),
            node: &node,
            labels: &labels,
            service_account: &service_account,
            kind,
            ca_dir: ca_dir.as_deref(),
        }),
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
        "{} ServiceEntry, {} VirtualService, {} DestinationRule, {} Gateway, {} Sidecar, {} WorkloadEntry; outboundTrafficPolicy {:?}",
        s.service_entries.len(),
        s.virtual_services.len(),
        s.destination_rules.len(),
        s.gateways.len(),
        s.sidecars.len(),
        s.workload_entries.len(),
        s.mesh.outbound_traffic_policy.mode,
    )
}

/// The shortest workload certificate lifetime `serve` accepts.
const MIN_CERT_TTL: Duration = Duration::from_secs(1);

/// Why `--workload-cert-ttl` was refused.
#[derive(Debug, thiserror::Error)]
enum CertTtlError {
    #[error(transparent)]
    Invalid(#[from] config::duration::DurationError),
    #[error("{0} is too short: a workload certificate must live at least {MIN_CERT_TTL:?}")]
    TooShort(String),
}

fn parse_cert_ttl(text: &str) -> Result<Duration, CertTtlError> {
    let ttl = text.parse::<config::duration::Duration>()?.0;
    if ttl < MIN_CERT_TTL {
        return Err(CertTtlError::TooShort(text.to_string()));
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
    ca_dir: Option<&'a Path>,
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
    let mut resources: TypedResources =
        translate::translate(&snapshot, &workloads, &proxy).into_typed();
    if matches!(options.kind, DumpType::Secrets) {
        let identity = Identity {
            trust_domain: snapshot.mesh.trust_domain.clone(),
            namespace: proxy.namespace.clone(),
            service_account: proxy.service_account.clone(),
        };
        resources.insert(
            type_url::SECRET,
            redacted_secrets(&identity, options.ca_dir)?,
        );
    }
    let json = translate::to_json(&resources, &options.kind.type_urls())?;
    println!("{}", serde_json::to_string_pretty(&json)?);
    Ok(())
}

/// The secrets `identity` would be sent, private key redacted, issued by
/// the root in `ca_dir` or by a throwaway one.
fn redacted_secrets(
    identity: &Identity,
    ca_dir: Option<&Path>,
) -> anyhow::Result<std::collections::BTreeMap<String, proto::wkt::Any>> {
    let ttl = ca::DEFAULT_WORKLOAD_CERT_TTL;
    let ca = match ca_dir {
        Some(dir) => CertificateAuthority::load(dir, ttl)?,
        None => CertificateAuthority::generate(&identity.trust_domain, ttl)?,
    };
    let certificate = ca.issue(identity)?;
    let secrets = [
        secret::redact(secret::workload_secret(
            &certificate.chain_pem,
            certificate.private_key_pem(),
        )),
        secret::root_secret(ca.root_pem()),
    ];
    Ok(secret::by_name(&secrets))
}

/// The mesh CA for `serve`, from `--ca-dir` or generated.
fn certificate_authority(
    ca_dir: Option<&Path>,
    trust_domain: &str,
    ttl: Duration,
) -> anyhow::Result<CertificateAuthority> {
    let ca = match ca_dir {
        Some(dir) => CertificateAuthority::load_or_create(dir, trust_domain, ttl)?,
        None => CertificateAuthority::generate(trust_domain, ttl)?,
    };
    let ttl = humantime::format_duration(ttl);
    match ca.source() {
        RootSource::Generated => tracing::info!(
            workload_cert_ttl = %ttl,
            "generated a root CA for this run; pass --ca-dir to keep one across restarts"
        ),
        RootSource::Created(dir) => tracing::info!(
            dir = %dir.display(),
            workload_cert_ttl = %ttl,
            "generated a root CA and saved it"
        ),
        RootSource::Loaded(dir) => tracing::info!(
            dir = %dir.display(),
            workload_cert_ttl = %ttl,
            "loaded the root CA"
        ),
    }
    Ok(ca)
}

struct ServeOptions {
    dir: PathBuf,
    mesh: Option<PathBuf>,
    xds_addr: SocketAddr,
    metrics_addr: SocketAddr,
    ca_dir: Option<PathBuf>,
    workload_cert_ttl: Duration,
}

fn serve(options: ServeOptions) -> anyhow::Result<()> {
    let ServeOptions {
        dir,
        mesh,
        xds_addr,
        metrics_addr,
        ca_dir,
        workload_cert_ttl,
    } = options;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    runtime.block_on(async move {
        let metrics = Arc::new(Metrics::default());
        let (watcher, mut snapshots) =
            ConfigWatcher::start(dir.clone(), mesh.clone(), metrics.config_errors.clone())
                .with_context(|| format!("load the config in {}", dir.display()))?;
        let initial = snapshots.borrow_and_update().clone();
        metrics.config_version.set(initial.version as i64);
        tracing::info!(dir = %dir.display(), "serving config: {}", summary(&initial));
        let ca = certificate_authority(
            ca_dir.as_deref(),
            &initial.mesh.trust_domain,
            workload_cert_ttl,
        )
        .context("start the mesh certificate authority")?;
        let publisher = MeshStatePublisher::new(initial);
        let context = XdsContext::new(publisher.clone(), metrics.clone(), Arc::new(ca));

        let xds_listener = xds::bind(xds_addr).await.with_context(|| {
            format!("bind the xDS address {xds_addr} (is another control plane running?)")
        })?;
        let metrics_listener = metrics::bind(metrics_addr)
            .await
            .with_context(|| format!("bind the metrics address {metrics_addr}"))?;
        tracing::info!(%xds_addr, %metrics_addr, "listening");
        tokio::spawn(metrics::serve(metrics_listener, metrics.clone()));
        tokio::spawn(xds::secrets::rotate_certificates(context.clone()));
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
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("shutting down");
        };
        xds::serve(xds_listener, context, shutdown).await?;
        drop(watcher);
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_workload_certificate_lives_at_least_a_second() {
        assert_eq!(parse_cert_ttl("90s").ok(), Some(Duration::from_secs(90)));
        assert_eq!(parse_cert_ttl("1s").ok(), Some(MIN_CERT_TTL));
        let too_short = parse_cert_ttl("500ms").expect_err("under a second");
        assert!(matches!(too_short, CertTtlError::TooShort(_)));
        assert_eq!(
            too_short.to_string(),
            "500ms is too short: a workload certificate must live at least 1s"
        );
        let invalid = parse_cert_ttl("soon").expect_err("not a duration");
        assert!(matches!(invalid, CertTtlError::Invalid(_)));
    }
}
