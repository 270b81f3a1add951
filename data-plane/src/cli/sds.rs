//! `data-plane sds`: pilot-agent's SDS server for a local Envoy, which also
//! relays its access log streams to the control plane.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use data_plane::identity::{CertificateAuthority, SpiffeId};
use data_plane::sds::{AccessLogRelay, SdsListener};

use super::control_plane::ControlPlaneArgs;
use super::signal::terminated;

#[derive(Args)]
pub struct SdsArgs {
    /// The Unix socket to serve on (mode 0600), which Envoy's `sds-grpc`
    /// and `envoy_accesslog_service` clusters point at.
    #[arg(long)]
    pub socket: PathBuf,
    #[command(flatten)]
    pub control_plane: ControlPlaneArgs,
    /// The proxy's namespace, in its SPIFFE id; it must be the token's.
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub namespace: String,
    /// The proxy's service account, in its SPIFFE id; it must be the token's.
    #[arg(long, env = "SERVICE_ACCOUNT", default_value = "default")]
    pub service_account: String,
}

pub fn sds(args: &SdsArgs) -> anyhow::Result<()> {
    let control_plane = args.control_plane.connection(false, None)?;
    let authority = CertificateAuthority::new(
        args.control_plane.ca_connection(&control_plane)?,
        SpiffeId {
            trust_domain: args.control_plane.trust_domain.clone(),
            namespace: args.namespace.clone(),
            service_account: args.service_account.clone(),
        },
    );
    let relay = AccessLogRelay::new(control_plane, Arc::default());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("start the runtime")?;
    runtime.block_on(async {
        let listener = SdsListener::bind(&args.socket)?;
        let serve = async {
            let certificates = authority.start().await;
            listener.serve(certificates, relay).await
        };
        let result = tokio::select! {
            result = serve => result.map_err(Into::into),
            _ = tokio::signal::ctrl_c() => Ok(()),
            _ = terminated() => Ok(()),
        };
        if let Err(error) = std::fs::remove_file(&args.socket) {
            tracing::warn!(socket = %args.socket.display(), %error, "cannot remove the SDS socket");
        }
        result
    })
}
