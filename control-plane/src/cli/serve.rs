//! `control-plane serve`: its options, and the servers it runs until
//! interrupted (the secure port, the opt-in plaintext one, metrics) over
//! the config it watches, with the egress inventory it keeps.

use std::net::SocketAddr;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use control_plane::auth::ServiceAccount;
use control_plane::ca::ServerName;
use control_plane::config::watch::ConfigWatcher;
use control_plane::egress::{self, LiveInventory};
use control_plane::metrics::{self, Metrics};
use control_plane::xds::{
    self, DEFAULT_GATEWAY_SERVICE_ACCOUNT, Limits, SecureServer, TrustedGateways, XdsContext,
    limits, state::MeshStatePublisher,
};

use super::trust::{authenticator, certificate_authority};
use crate::{parse_lifetime, summary};

#[derive(Args)]
pub struct ServeOptions {
    /// Directory of Istio resources (*.yaml, *.yml; multi-document).
    #[arg(long)]
    pub config: PathBuf,
    /// MeshConfig file (outboundTrafficPolicy, trustDomain...); default ALLOW_ANY.
    #[arg(long)]
    pub mesh: Option<PathBuf>,
    /// Address of the secure xDS server: TLS with a certificate of the mesh
    /// CA, a bearer token on every call; ADS, CSDS and Istio's CA API.
    #[arg(long, default_value = "127.0.0.1:15012")]
    pub secure_xds_addr: SocketAddr,
    /// Also serve xDS without TLS or tokens on ADDR (bare flag:
    /// 127.0.0.1:15010): config only, never certificates, and its proxies
    /// never become service endpoints.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:15010")]
    pub plaintext_xds_addr: Option<SocketAddr>,
    /// Address of the Prometheus metrics endpoint (GET /metrics).
    #[arg(long, default_value = "127.0.0.1:15014")]
    pub metrics_addr: SocketAddr,
    /// The mesh CA directory: ca-cert.pem and ca-key.pem (PKCS#8), generated
    /// there when it has neither; root-cert.pem (the root proxies trust,
    /// their --ca-root) and token-key.pem (signs `token create` tokens) are
    /// written there.
    #[arg(long, value_name = "DIR")]
    pub ca_dir: PathBuf,
    /// Lifetime of workload certificates (e.g. 24h, 1h, 90s); a shorter
    /// lifetime asked for in a CSR is honoured.
    #[arg(long, default_value = "24h", value_parser = parse_lifetime)]
    pub workload_cert_ttl: Duration,
    /// Another DNS name or IP address for the serving certificate, besides
    /// istiod.istio-system.svc (repeatable), e.g. the address proxies dial.
    #[arg(long = "xds-san", value_name = "NAME|IP")]
    pub xds_sans: Vec<ServerName>,
    /// Also accept Kubernetes service-account tokens signed by a key of
    /// this JWKS file (`kubectl get --raw /openid/v1/jwks`), read again
    /// when it changes.
    #[arg(long, value_name = "FILE", requires = "jwt_issuer")]
    pub jwks: Option<PathBuf>,
    /// The issuer (`iss`) of those tokens (not the control plane's own), e.g.
    /// https://kubernetes.default.svc.cluster.local.
    #[arg(long, value_name = "URL", requires = "jwks")]
    pub jwt_issuer: Option<String>,
    /// NAMESPACE/SERVICE_ACCOUNT whose router proxies are endpoints of the
    /// services that select their labels (repeatable; given, it replaces
    /// the default).
    #[arg(long = "gateway-service-account", value_name = "NS/SA", default_value = DEFAULT_GATEWAY_SERVICE_ACCOUNT)]
    pub gateway_service_accounts: Vec<ServiceAccount>,
    /// Keep the egress inventory (what proxies report over the
    /// AccessLogService) in DIR/egress-inventory.json, read at start and
    /// written within a second of a change; without it, it lives in memory.
    /// DIR is created owner-only; an existing one must be owned by this
    /// user and writable by no one else.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// The most destination records the egress inventory keeps; past it a
    /// workload's new destinations are counted in its one `other` record.
    #[arg(long, value_name = "N", default_value_t = egress::DEFAULT_MAX_RECORDS)]
    pub egress_inventory_max: usize,
    /// The most destination records one source namespace's workloads have
    /// in the egress inventory (within --egress-inventory-max), so that no
    /// namespace fills it for the others.
    #[arg(long, value_name = "N", default_value_t = egress::DEFAULT_MAX_RECORDS_PER_NAMESPACE)]
    pub egress_inventory_max_per_namespace: usize,
    /// The most bytes of xDS resources one proxy is sent, all types
    /// together; a larger config is refused (logged, counted in
    /// pilot_xds_config_size_exceeded_total), never sent in part. Each type
    /// must also fit one 64 MiB gRPC message.
    #[arg(long, value_name = "BYTES", default_value_t = limits::DEFAULT_MAX_CONFIG_BYTES_PER_PROXY)]
    pub max_config_bytes_per_proxy: usize,
    /// How long a response may wait for a proxy to take it (e.g. 30s); a
    /// proxy that does not read has its connection closed.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_send_timeout)]
    pub xds_send_timeout: Duration,
}

/// `--xds-send-timeout`: a duration of at least a second.
fn parse_send_timeout(text: &str) -> Result<Duration, String> {
    let timeout = text
        .parse::<control_plane::config::duration::Duration>()
        .map_err(|error| error.to_string())?
        .0;
    if timeout < Duration::from_secs(1) {
        return Err(format!(
            "{text} is too short: the send timeout is at least 1s"
        ));
    }
    Ok(timeout)
}

/// Resolves once, when the returned sender fires or is dropped.
async fn stopped(mut rx: tokio::sync::watch::Receiver<()>) {
    let _ = rx.changed().await;
}

pub fn serve(options: ServeOptions) -> anyhow::Result<()> {
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
        metrics.served(&initial);
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
        let inventory = Arc::new(open_inventory(&options, metrics.clone())?);
        let secure = SecureServer {
            ca: Arc::new(ca),
            certificate,
            authenticator: Arc::new(authenticator(&options)?),
            inventory: inventory.clone(),
        };
        let publisher = MeshStatePublisher::new(initial);
        let gateways = TrustedGateways::new(options.gateway_service_accounts.iter().cloned());
        let limits = Limits {
            max_config_bytes_per_proxy: options.max_config_bytes_per_proxy,
            send_timeout: options.xds_send_timeout,
        };
        let context = XdsContext::new(publisher.clone(), metrics.clone(), gateways, limits);

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
        tokio::spawn(metrics::serve(
            metrics_listener,
            metrics.clone(),
            context.accept_failures.clone(),
        ));
        if let Some(dir) = options.state_dir.clone() {
            tokio::spawn(inventory.clone().keep_written(dir));
        }
        let snapshot_metrics = metrics.clone();
        let snapshot_context = context.clone();
        tokio::spawn(async move {
            while snapshots.changed().await.is_ok() {
                let snapshot = snapshots.borrow_and_update().clone();
                snapshot_metrics.served(&snapshot);
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
        if let Some(dir) = &options.state_dir {
            inventory
                .write_if_changed(dir)
                .context("save the egress inventory")?;
        }
        Ok(())
    })
}

/// The egress inventory, from the state directory when there is one
/// (created, owner only, when missing).
fn open_inventory(options: &ServeOptions, metrics: Arc<Metrics>) -> anyhow::Result<LiveInventory> {
    if let Some(dir) = &options.state_dir {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("create the state directory {}", dir.display()))?;
        check_state_dir(dir, nix::unistd::geteuid().as_raw())?;
    }
    let limits = egress::Limits {
        records: options.egress_inventory_max,
        per_namespace: options.egress_inventory_max_per_namespace,
        ..egress::Limits::default()
    };
    let inventory = LiveInventory::open(limits, options.state_dir.as_deref(), metrics)?;
    tracing::info!(
        records = inventory.contents().records.len(),
        state_dir = %options
            .state_dir
            .as_ref()
            .map_or_else(|| "none (in memory)".to_string(), |dir| dir.display().to_string()),
        "egress inventory"
    );
    Ok(inventory)
}

/// Refuses a state directory another user could write into (replacing the
/// inventory): one not owned by `uid`, or writable by its group or others.
fn check_state_dir(dir: &Path, uid: u32) -> anyhow::Result<()> {
    let metadata = std::fs::metadata(dir)
        .with_context(|| format!("read the state directory {}", dir.display()))?;
    if metadata.uid() != uid {
        bail!(
            "the state directory {} is owned by uid {}, not by this process's uid {uid}: `chown {uid} {}` or choose another --state-dir",
            dir.display(),
            metadata.uid(),
            dir.display()
        );
    }
    if metadata.mode() & 0o022 != 0 {
        bail!(
            "the state directory {} is writable by its group or others (mode {:o}): `chmod go-w {}`",
            dir.display(),
            metadata.mode() & 0o777,
            dir.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn uid() -> u32 {
        nix::unistd::geteuid().as_raw()
    }

    #[test]
    fn an_owner_only_state_dir_is_accepted() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        check_state_dir(dir.path(), uid()).expect("accepted");
    }

    #[test]
    fn a_state_dir_others_can_write_is_refused_with_what_to_chmod() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))
            .expect("chmod");
        let error = check_state_dir(dir.path(), uid()).expect_err("0777 refused");
        assert!(error.to_string().contains("chmod go-w"), "{error}");
    }

    #[test]
    fn a_state_dir_of_another_user_is_refused_with_what_to_chown() {
        let dir = tempfile::tempdir().expect("tempdir");
        let error = check_state_dir(dir.path(), uid() + 1).expect_err("not ours");
        assert!(error.to_string().contains("chown"), "{error}");
    }
}
