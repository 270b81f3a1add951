//! `control-plane`: serve Istio config as xDS, validate it, or dump the xDS a
//! proxy would get.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use control_plane::config::watch::ConfigWatcher;
use control_plane::config::{self, ConfigSnapshot};
use control_plane::metrics::{self, Metrics};
use control_plane::translate::{self, Proxy};
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
        #[arg(long = "type", value_enum, default_value_t = DumpType::All)]
        kind: DumpType,
    },
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
        Command::Serve {
            config,
            mesh,
            xds_addr,
            metrics_addr,
        } => serve(config, mesh, xds_addr, metrics_addr),
        Command::Validate { dir, mesh } => return validate(&dir, mesh.as_deref()),
        Command::Dump {
            config,
            mesh,
            node,
            labels,
            kind,
        } => dump(&config, mesh.as_deref(), &node, &labels, kind),
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

fn dump(
    dir: &Path,
    mesh: Option<&Path>,
    node: &str,
    labels: &str,
    kind: DumpType,
) -> anyhow::Result<()> {
    let snapshot =
        config::load::load_validated(dir, mesh).map_err(|errors| anyhow::anyhow!("{errors}"))?;
    let node_id: shared::node::NodeId = node.parse()?;
    let labels = shared::node::parse_labels(labels)?;
    let proxy = Proxy {
        id: node.to_string(),
        node_type: node_id.node_type,
        namespace: node_id
            .namespace()
            .unwrap_or(config::DEFAULT_NAMESPACE)
            .to_string(),
        labels,
        ips: vec![node_id.ip.clone()],
        service_account: "default".to_string(),
    };
    let workloads: Vec<_> = proxy.as_workload().into_iter().collect();
    let resources = translate::translate(&snapshot, &workloads, &proxy).into_typed();
    let json = translate::to_json(&resources, &kind.type_urls())?;
    println!("{}", serde_json::to_string_pretty(&json)?);
    Ok(())
}

fn serve(
    dir: PathBuf,
    mesh: Option<PathBuf>,
    xds_addr: SocketAddr,
    metrics_addr: SocketAddr,
) -> anyhow::Result<()> {
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
        let publisher = MeshStatePublisher::new(initial);
        let context = XdsContext::new(publisher.clone(), metrics.clone());

        let xds_listener = xds::bind(xds_addr).await.with_context(|| {
            format!("bind the xDS address {xds_addr} (is another control plane running?)")
        })?;
        let metrics_listener = metrics::bind(metrics_addr)
            .await
            .with_context(|| format!("bind the metrics address {metrics_addr}"))?;
        tracing::info!(%xds_addr, %metrics_addr, "listening");
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
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("shutting down");
        };
        xds::serve(xds_listener, context, shutdown).await?;
        drop(watcher);
        Ok(())
    })
}
