//! The trust root of one test's mesh: the control plane's `--ca-dir` (its
//! root certificate, which it writes as Istio's `root-cert.pem`, and the key
//! it signs tokens with) and the tokens it mints for proxies and operators
//! (`control-plane token create`). Removed on drop.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use tempfile::TempDir;

use crate::binaries;
use crate::process;

/// The root certificate's file in the CA directory, as Istio names it.
pub const ROOT_CERT: &str = "root-cert.pem";
/// The name the control plane's serving certificate carries, which proxies
/// verify by default.
pub const XDS_SERVER_NAME: &str = "istiod.istio-system.svc";
/// The namespace whose tokens may read every proxy's status (CSDS).
pub const OPERATOR_NAMESPACE: &str = "istio-system";
/// The operators' service account, as `istioctl` would use.
pub const OPERATOR_SERVICE_ACCOUNT: &str = "istioctl";
/// How long `token create` may run.
const MINT_TIMEOUT: Duration = Duration::from_secs(30);

/// A control plane's CA directory.
pub struct MeshCa {
    dir: TempDir,
    /// One `token create` at a time: the first one may create the signing
    /// key.
    minting: Mutex<()>,
}

impl MeshCa {
    /// An empty directory: the control plane generates its root there when
    /// it starts.
    pub fn new() -> Result<Self> {
        Ok(Self {
            dir: tempfile::tempdir().context("creating the CA directory")?,
            minting: Mutex::new(()),
        })
    }

    /// `--ca-dir`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The root certificate proxies and operators trust (written by the
    /// control plane at start).
    pub fn root_cert(&self) -> PathBuf {
        self.dir.path().join(ROOT_CERT)
    }

    /// A token for service account `service_account` of `namespace`, valid
    /// for `control-plane token create`'s default lifetime.
    pub fn token(&self, namespace: &str, service_account: &str) -> Result<String> {
        self.mint(namespace, service_account, None)
    }

    /// A token that expires `ttl` after it is minted.
    pub fn token_expiring(
        &self,
        namespace: &str,
        service_account: &str,
        ttl: Duration,
    ) -> Result<String> {
        self.mint(namespace, service_account, Some(ttl))
    }

    /// An operator's token (`istio-system/istioctl`), for CSDS.
    pub fn operator_token(&self) -> Result<String> {
        self.token(OPERATOR_NAMESPACE, OPERATOR_SERVICE_ACCOUNT)
    }

    fn mint(
        &self,
        namespace: &str,
        service_account: &str,
        ttl: Option<Duration>,
    ) -> Result<String> {
        let _minting = self.minting.lock().unwrap_or_else(PoisonError::into_inner);
        let mut command = Command::new(binaries::control_plane()?);
        command
            .args(["token", "create", "--ca-dir"])
            .arg(self.dir())
            .args([
                "--namespace",
                namespace,
                "--service-account",
                service_account,
            ]);
        if let Some(ttl) = ttl {
            command
                .arg("--ttl")
                .arg(format!("{}s", ttl.as_secs().max(1)));
        }
        let output = process::run("control-plane-token", command, MINT_TIMEOUT)?;
        output
            .ensure_success()
            .with_context(|| format!("minting a token for {namespace}/{service_account}"))?;
        let token = output.stdout.trim().to_string();
        ensure!(
            token.split('.').count() == 3,
            "`token create` printed no JWT: {:?}",
            output.stdout
        );
        Ok(token)
    }
}
