//! How a proxy reaches the control plane: over TLS, trusting the mesh root
//! and proving its identity with a bearer token minted for its namespace
//! and service account (the default), or in plaintext where a test is about
//! plaintext; and what that gives one proxy: its files and our agent's
//! connection flags.

use std::ffi::OsString;
use std::fs;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};

use crate::mesh_ca::{MeshCa, ROOT_CERT, XDS_SERVER_NAME};

/// The token file's name in a proxy's directory.
const TOKEN_FILE: &str = "istio-token";

/// The control plane as proxies connect to it.
#[derive(Clone)]
pub struct ControlChannel {
    addr: SocketAddr,
    tls: Option<Tls>,
}

#[derive(Clone)]
struct Tls {
    ca: Arc<MeshCa>,
    server_name: String,
}

impl ControlChannel {
    /// TLS to `addr`, trusting `ca`'s root and verifying
    /// `istiod.istio-system.svc`.
    pub fn tls(addr: SocketAddr, ca: Arc<MeshCa>) -> Self {
        Self {
            addr,
            tls: Some(Tls {
                ca,
                server_name: XDS_SERVER_NAME.to_string(),
            }),
        }
    }

    /// Plaintext to `addr`: no TLS, no token.
    pub fn plaintext(addr: SocketAddr) -> Self {
        Self { addr, tls: None }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The same control plane reached at `ip` (e.g. the host end of a
    /// namespace's veth), on the same port.
    pub fn via(self, ip: IpAddr) -> Self {
        Self {
            addr: SocketAddr::new(ip, self.addr.port()),
            ..self
        }
    }

    /// Verifies `name` (a DNS name or an IP the control plane's certificate
    /// carries, `--xds-san`) instead of `istiod.istio-system.svc`.
    pub fn server_name(mut self, name: &str) -> Self {
        if let Some(tls) = &mut self.tls {
            tls.server_name = name.to_string();
        }
        self
    }

    /// The mesh CA and the name to verify, over TLS.
    pub fn trust(&self) -> Option<(&Arc<MeshCa>, &str)> {
        self.tls
            .as_ref()
            .map(|tls| (&tls.ca, tls.server_name.as_str()))
    }

    /// What the proxy of `service_account` in `namespace` needs to connect;
    /// over TLS, the root and a fresh token are written to `dir` (readable
    /// by the proxy's uid, which owns `dir` or can read what root writes).
    pub fn for_proxy(
        &self,
        dir: &Path,
        namespace: &str,
        service_account: &str,
    ) -> Result<ProxyConnection> {
        let tls = match &self.tls {
            None => None,
            Some(tls) => {
                let root_cert = dir.join(ROOT_CERT);
                fs::copy(tls.ca.root_cert(), &root_cert).with_context(|| {
                    format!(
                        "copying the mesh root {} (is the control plane running?)",
                        tls.ca.root_cert().display()
                    )
                })?;
                let token = tls.ca.token(namespace, service_account)?;
                let token_file = dir.join(TOKEN_FILE);
                fs::write(&token_file, &token)
                    .with_context(|| format!("writing {}", token_file.display()))?;
                Some(ProxyTls {
                    root_cert,
                    token_file,
                    token,
                    server_name: tls.server_name.clone(),
                })
            }
        };
        Ok(ProxyConnection {
            addr: self.addr,
            tls,
        })
    }
}

/// One proxy's way to the control plane.
#[derive(Debug, Clone)]
pub struct ProxyConnection {
    pub addr: SocketAddr,
    /// `None` for plaintext.
    pub tls: Option<ProxyTls>,
}

/// The files and names of one proxy's TLS connection.
#[derive(Debug, Clone)]
pub struct ProxyTls {
    /// The mesh root, the only trust anchor.
    pub root_cert: PathBuf,
    /// The file holding [`ProxyTls::token`], as a projected token is.
    pub token_file: PathBuf,
    pub token: String,
    /// What the control plane's certificate must name.
    pub server_name: String,
}

impl ProxyConnection {
    /// Our agent's flags (`proxy` and `sds` alike): `--xds-addr`, then
    /// `--ca-root`, `--token` and `--xds-server-name`, or `--plaintext`.
    pub fn agent_args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec!["--xds-addr".into(), self.addr.to_string().into()];
        match &self.tls {
            None => args.push("--plaintext".into()),
            Some(tls) => {
                args.extend([
                    "--ca-root".into(),
                    tls.root_cert.clone().into(),
                    "--token".into(),
                    tls.token_file.clone().into(),
                ]);
                if tls.server_name != XDS_SERVER_NAME {
                    args.extend(["--xds-server-name".into(), tls.server_name.clone().into()]);
                }
            }
        }
        args
    }
}
