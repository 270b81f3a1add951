//! Where the control plane is, and how a proxy proves who it is to it;
//! each flag also read from pilot-agent's environment variable.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use data_plane::xds::{ControlPlane, TlsSettings};
use shared::identity::{CONTROL_PLANE_SERVER_NAME, DEFAULT_TRUST_DOMAIN};
use shared::ports;

/// Where the control plane is and how this proxy proves who it is.
#[derive(Args)]
pub struct ControlPlaneArgs {
    /// The control plane's xDS address, host:port or a URL [default: the
    /// ProxyConfig's discoveryAddress, else 127.0.0.1:15012, its TLS port;
    /// 127.0.0.1:15010 with `proxy --plaintext`].
    #[arg(long)]
    pub xds_addr: Option<String>,
    /// Where certificates are asked for (Istio's CA API), host:port or a
    /// URL [default: the xDS address], with the same TLS and token.
    #[arg(long, env = "CA_ADDR")]
    pub ca_addr: Option<String>,
    /// The root certificate(s), PEM, that sign the control plane's
    /// certificate (`root-cert.pem` in its --ca-dir): the only roots
    /// trusted. Required, except with `proxy --plaintext`.
    #[arg(long, env = "XDS_ROOT_CA")]
    pub ca_root: Option<PathBuf>,
    /// This proxy's token: a JWT from `control-plane token create`, or a
    /// Kubernetes service-account token. Read again for every connection,
    /// so a rotated token is picked up. Required, except with `proxy
    /// --plaintext`.
    #[arg(long)]
    pub token: Option<PathBuf>,
    /// The name the control plane's certificate must be valid for.
    #[arg(long, env = "ISTIOD_SAN", default_value = CONTROL_PLANE_SERVER_NAME)]
    pub xds_server_name: String,
    /// The mesh's trust domain: this proxy's SPIFFE id is
    /// spiffe://<trust domain>/ns/<namespace>/sa/<service account>.
    #[arg(long, env = "TRUST_DOMAIN", default_value = DEFAULT_TRUST_DOMAIN)]
    pub trust_domain: String,
}

impl ControlPlaneArgs {
    /// The xDS connection these flags describe: TLS with a token, or
    /// plaintext; `discovery` is the ProxyConfig's address, which
    /// `--xds-addr` overrides.
    pub fn connection(
        &self,
        plaintext: bool,
        discovery: Option<&str>,
    ) -> anyhow::Result<ControlPlane> {
        let default_port = if plaintext {
            ports::XDS_PLAINTEXT
        } else {
            ports::XDS_TLS
        };
        let address = self
            .xds_addr
            .as_deref()
            .or(discovery)
            .map(str::to_string)
            .unwrap_or_else(|| SocketAddr::from((Ipv4Addr::LOCALHOST, default_port)).to_string());
        self.connect(&address, plaintext)
    }

    /// The connection for certificates: `--ca-addr`, else `xds` itself.
    pub fn ca_connection(&self, xds: &ControlPlane) -> anyhow::Result<ControlPlane> {
        match &self.ca_addr {
            Some(address) => self.connect(address, false),
            None => Ok(xds.clone()),
        }
    }

    fn connect(&self, address: &str, plaintext: bool) -> anyhow::Result<ControlPlane> {
        if plaintext {
            return Ok(ControlPlane::plaintext(address)?);
        }
        let ca_root = self.ca_root.clone().context(
            "--ca-root (XDS_ROOT_CA) is required: the root certificate of the control plane \
             (root-cert.pem in its --ca-dir); `proxy --plaintext` for its plaintext port",
        )?;
        let token = self.token.clone().context(
            "--token is required: a file with this proxy's token \
             (control-plane token create, or a Kubernetes service-account token)",
        )?;
        let settings = TlsSettings {
            ca_root,
            server_name: self.xds_server_name.clone(),
            token,
        };
        Ok(ControlPlane::tls(address, &settings)?)
    }
}
