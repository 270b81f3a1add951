//! `data-plane sds`: pilot-agent's SDS server for a local Envoy. Envoy's
//! `sds-grpc` cluster points at a Unix socket where this serves `default`
//! (the proxy's certificate chain and key) and `ROOTCA` (the mesh root)
//! from the identity the agent gets from the control plane, over
//! `StreamSecrets` (state of the world), `DeltaSecrets` and `FetchSecrets`,
//! pushing a new version at every rotation. The key never leaves this
//! machine. The same socket relays Envoy's access log streams to the
//! control plane (`relay.rs`).

mod delta;
mod relay;
mod secrets;
mod service;
mod socket;
mod sotw;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use proto::pb::envoy::service::accesslog::v3::access_log_service_server::AccessLogServiceServer;
use proto::pb::envoy::service::secret::v3::secret_discovery_service_server::SecretDiscoveryServiceServer;
use tokio::net::UnixListener;
use tokio::sync::watch;

use crate::identity::WorkloadCertificate;
pub use relay::AccessLogRelay;
use service::SdsService;

/// Why SDS cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum SdsError {
    #[error("cannot serve SDS on {path}: {reason}")]
    Socket { path: PathBuf, reason: String },
    #[error("the SDS server on {path} failed: {source}")]
    Serve {
        path: PathBuf,
        source: tonic::transport::Error,
    },
}

/// A bound SDS socket, not serving yet.
pub struct SdsListener {
    path: PathBuf,
    listener: UnixListener,
}

impl SdsListener {
    /// Binds the socket at `path` (mode 0600, from its creation), replacing
    /// a stale one. Call on a tokio runtime.
    pub fn bind(path: &Path) -> Result<Self, SdsError> {
        Ok(Self {
            path: path.to_path_buf(),
            listener: socket::bind(path)?,
        })
    }

    /// Serves the certificate `certificates` holds, and each new one, to
    /// connections from this user or root, and relays their access log
    /// streams through `relay`, until the server fails.
    pub async fn serve(
        self,
        certificates: watch::Receiver<Arc<WorkloadCertificate>>,
        relay: AccessLogRelay,
    ) -> Result<(), SdsError> {
        tracing::info!(socket = %self.path.display(), "serving SDS and relaying access logs");
        tonic::transport::Server::builder()
            .add_service(SecretDiscoveryServiceServer::new(SdsService {
                certificates,
            }))
            .add_service(AccessLogServiceServer::new(relay))
            .serve_with_incoming(socket::trusted_connections(self.listener))
            .await
            .map_err(|source| SdsError::Serve {
                path: self.path,
                source,
            })
    }
}

#[cfg(test)]
mod tests;
