//! Listeners: where to accept, which filter chain a connection takes, and
//! what that chain does with it (HTTP routing or a TCP proxy).

use std::net::SocketAddr;
use std::sync::Arc;

use super::cluster::ClientCert;

/// A listener from LDS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub name: Arc<str>,
    pub address: SocketAddr,
    /// False for listeners that only receive connections handed over by
    /// a `use_original_dst` listener (Istio's per-port outbound listeners).
    pub bind_to_port: bool,
    /// Hand connections to the listener of their original destination.
    pub use_original_dst: bool,
    /// Read the TLS ClientHello's SNI before choosing a filter chain.
    pub inspect_tls: bool,
    pub filter_chains: Vec<FilterChain>,
    pub default_chain: Option<FilterChain>,
}

/// A filter chain: which connections it takes and what it does with them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterChain {
    pub name: Arc<str>,
    pub destination_port: Option<u16>,
    /// Terminate TLS (mesh mTLS at a gateway) before the action.
    pub tls: Option<DownstreamTls>,
    /// Exact names or `*.suffix` wildcards; empty matches any SNI (or none).
    pub server_names: Vec<String>,
    pub action: ChainAction,
}

/// TLS termination with the material it was built from. Equality is by
/// material; the server config is derived from it.
#[derive(Debug, Clone)]
pub struct DownstreamTls {
    pub certificate: Option<ClientCert>,
    pub client_roots: Option<Vec<Vec<u8>>>,
    pub require_client_certificate: bool,
    /// SDS secrets this refers to.
    pub secret_names: Vec<Arc<str>>,
    /// `None` until the certificate (from SDS) is there: connections are reset.
    pub server_config: Option<Arc<rustls::ServerConfig>>,
}

impl PartialEq for DownstreamTls {
    fn eq(&self, other: &Self) -> bool {
        self.certificate == other.certificate
            && self.client_roots == other.client_roots
            && self.require_client_certificate == other.require_client_certificate
            && self.secret_names == other.secret_names
    }
}
impl Eq for DownstreamTls {}

/// Why a TLS server configuration could not be built from its material.
#[derive(Debug, thiserror::Error)]
pub enum ServerConfigError {
    #[error("{0}")]
    Protocols(rustls::Error),
    #[error("invalid trusted CA certificate: {0}")]
    TrustedCa(rustls::Error),
    #[error("{0}")]
    ClientVerifier(rustls::server::VerifierBuilderError),
    #[error("private key: {0}")]
    PrivateKey(&'static str),
    #[error("certificate: {0}")]
    Certificate(rustls::Error),
}

impl DownstreamTls {
    /// The server config is built once the certificate (and, when clients
    /// are verified, their roots) is there.
    pub fn new(
        certificate: Option<ClientCert>,
        client_roots: Option<Vec<Vec<u8>>>,
        require_client_certificate: bool,
        secret_names: Vec<Arc<str>>,
    ) -> Result<Self, ServerConfigError> {
        let roots_ready = client_roots.as_ref().is_none_or(|roots| !roots.is_empty());
        let server_config = match &certificate {
            Some(cert) if roots_ready => Some(server_config(
                cert,
                client_roots.as_deref(),
                require_client_certificate,
            )?),
            _ => None,
        };
        Ok(Self {
            certificate,
            client_roots,
            require_client_certificate,
            secret_names,
            server_config,
        })
    }
}

fn server_config(
    cert: &ClientCert,
    roots: Option<&[Vec<u8>]>,
    require: bool,
) -> Result<Arc<rustls::ServerConfig>, ServerConfigError> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(ServerConfigError::Protocols)?;
    let builder = match roots {
        Some(roots) => {
            let mut store = rustls::RootCertStore::empty();
            for der in roots {
                store
                    .add(CertificateDer::from(der.clone()))
                    .map_err(ServerConfigError::TrustedCa)?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(store),
                provider,
            );
            let verifier = if require {
                verifier
            } else {
                verifier.allow_unauthenticated()
            };
            builder.with_client_cert_verifier(
                verifier
                    .build()
                    .map_err(ServerConfigError::ClientVerifier)?,
            )
        }
        None => builder.with_no_client_auth(),
    };
    let chain = cert
        .chain
        .iter()
        .map(|c| CertificateDer::from(c.clone()))
        .collect();
    let key = PrivateKeyDer::try_from(cert.key.clone()).map_err(ServerConfigError::PrivateKey)?;
    let config = builder
        .with_single_cert(chain, key)
        .map_err(ServerConfigError::Certificate)?;
    Ok(Arc::new(config))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainAction {
    /// HTTP connection manager with routes from RDS (or inline).
    Http(HttpManager),
    /// Proxy bytes to a cluster.
    Tcp(TcpProxy),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpManager {
    pub stat_prefix: Arc<str>,
    pub route_config_name: Arc<str>,
    /// Inline routes, when the listener carries them instead of using RDS.
    pub inline_routes: Option<Arc<super::RouteConfig>>,
    pub access_log: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpProxy {
    pub stat_prefix: Arc<str>,
    pub target: super::route::ClusterTarget,
    pub access_log: bool,
    pub idle_timeout: Option<std::time::Duration>,
}

impl Listener {
    /// The chain for a connection to `destination_port` with `sni`, as
    /// Envoy matches: destination port, then server name (exact before
    /// wildcard, longest wildcard first), then the default chain.
    pub fn select_chain(&self, destination_port: u16, sni: Option<&str>) -> Option<&FilterChain> {
        let port_ok = |c: &&FilterChain| c.destination_port.is_none_or(|p| p == destination_port);
        let with_port: Vec<&FilterChain> = {
            let exact_port: Vec<&FilterChain> = self
                .filter_chains
                .iter()
                .filter(|c| c.destination_port == Some(destination_port))
                .collect();
            if exact_port.is_empty() {
                self.filter_chains.iter().filter(port_ok).collect()
            } else {
                exact_port
            }
        };
        let by_name = sni.and_then(|sni| {
            let sni = sni.to_ascii_lowercase();
            with_port
                .iter()
                .filter_map(|c| {
                    c.server_names
                        .iter()
                        .filter_map(|name| server_name_rank(name, &sni))
                        .max()
                        .map(|rank| (rank, *c))
                })
                .max_by_key(|(rank, _)| *rank)
                .map(|(_, c)| c)
        });
        by_name
            .or_else(|| {
                with_port
                    .iter()
                    .find(|c| c.server_names.is_empty())
                    .copied()
            })
            .or(self.default_chain.as_ref())
    }
}

/// How well `pattern` matches `sni`: `None` for no match, higher is better
/// (an exact name beats any wildcard; longer wildcards beat shorter ones).
fn server_name_rank(pattern: &str, sni: &str) -> Option<usize> {
    let pattern = pattern.to_ascii_lowercase();
    if pattern == sni {
        return Some(usize::MAX);
    }
    let suffix = pattern.strip_prefix('*')?;
    (sni.len() > suffix.len() && sni.ends_with(suffix)).then_some(suffix.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::route::ClusterTarget;

    fn tcp_chain(name: &str, port: Option<u16>, names: &[&str]) -> FilterChain {
        FilterChain {
            name: name.into(),
            destination_port: port,
            server_names: names.iter().map(|s| s.to_string()).collect(),
            tls: None,
            action: ChainAction::Tcp(TcpProxy {
                stat_prefix: name.into(),
                target: ClusterTarget::Cluster(name.into()),
                access_log: false,
                idle_timeout: None,
            }),
        }
    }

    fn listener(chains: Vec<FilterChain>, default: Option<FilterChain>) -> Listener {
        Listener {
            name: "l".into(),
            address: "0.0.0.0:443".parse().unwrap(),
            bind_to_port: false,
            use_original_dst: false,
            inspect_tls: true,
            filter_chains: chains,
            default_chain: default,
        }
    }

    #[test]
    fn sni_exact_beats_wildcard_and_default_catches_the_rest() {
        let l = listener(
            vec![
                tcp_chain("wild", None, &["*.cnn.com"]),
                tcp_chain("exact", None, &["edition.cnn.com"]),
            ],
            Some(tcp_chain("default", None, &[])),
        );
        assert_eq!(
            &*l.select_chain(443, Some("edition.cnn.com")).unwrap().name,
            "exact"
        );
        assert_eq!(
            &*l.select_chain(443, Some("www.cnn.com")).unwrap().name,
            "wild"
        );
        assert_eq!(
            &*l.select_chain(443, Some("cnn.com")).unwrap().name,
            "default"
        );
        assert_eq!(&*l.select_chain(443, None).unwrap().name, "default");
    }

    #[test]
    fn destination_port_chain_wins() {
        let l = listener(
            vec![tcp_chain("loop", Some(15001), &[])],
            Some(tcp_chain("default", None, &[])),
        );
        assert_eq!(&*l.select_chain(15001, None).unwrap().name, "loop");
        assert_eq!(&*l.select_chain(80, None).unwrap().name, "default");
    }

    #[test]
    fn no_match_and_no_default_is_none() {
        let l = listener(vec![tcp_chain("exact", None, &["a.com"])], None);
        assert!(l.select_chain(443, Some("b.com")).is_none());
    }
}
