//! The one way to the control plane: where it is, how its certificate is
//! verified (TLS with the mesh root as the only trust anchor and the name it
//! must be valid for), and the bearer token that authenticates this proxy,
//! read from its file again for every connection, since projected tokens
//! rotate. Without TLS (`--plaintext`) no token is sent.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use super::Error;
use super::{connect_hint, error_chain};

/// For the TCP connection, and again for the TLS handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// HTTP/2 pings notice a control plane that vanished without closing.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// How to reach and authenticate to a control plane serving TLS.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// The PEM file of the root(s) that sign the control plane's certificate.
    pub ca_root: PathBuf,
    /// The name the control plane's certificate must be valid for.
    pub server_name: String,
    /// The file holding this proxy's token (a JWT).
    pub token: PathBuf,
}

/// Why the bearer token could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("cannot read the token file {path}: {source} (check --token)")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the token file {path} is empty (check --token)")]
    Empty { path: PathBuf },
    #[error("the token file {path} holds characters a gRPC header cannot carry (is it a JWT?)")]
    NotAHeader { path: PathBuf },
}

/// Where the control plane is and how this proxy proves who it is.
#[derive(Debug, Clone)]
pub struct ControlPlane {
    address: String,
    endpoint: Endpoint,
    /// `None` on a plaintext connection: no token is sent.
    token: Option<PathBuf>,
}

impl ControlPlane {
    /// A plaintext connection to `address` (`host:port` or
    /// `http://host:port`): no TLS and no token, so no certificates either.
    pub fn plaintext(address: &str) -> Result<Self, Error> {
        let uri = match address.split_once("://") {
            None => format!("http://{address}"),
            Some(("http", _)) => address.to_string(),
            Some(_) => {
                return Err(invalid(
                    address,
                    "a plaintext connection needs http:// or no scheme",
                ));
            }
        };
        Ok(Self {
            address: address.to_string(),
            endpoint: endpoint(address, uri)?,
            token: None,
        })
    }

    /// A TLS connection to `address` (`host:port` or `https://host:port`)
    /// that trusts only the roots of `settings.ca_root` (read now) and sends
    /// the token of `settings.token` (read for every connection).
    pub fn tls(address: &str, settings: &TlsSettings) -> Result<Self, Error> {
        let uri = match address.split_once("://") {
            None => format!("https://{address}"),
            Some(("https", _)) => address.to_string(),
            Some(_) => {
                return Err(invalid(
                    address,
                    "a TLS connection needs https:// or no scheme (--plaintext for a plaintext port)",
                ));
            }
        };
        let roots = read_roots(&settings.ca_root)?;
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(roots))
            .domain_name(settings.server_name.clone())
            .timeout(CONNECT_TIMEOUT);
        let endpoint = endpoint(address, uri)?
            .tls_config(tls)
            .map_err(|e| invalid(address, &error_chain(&e)))?;
        Ok(Self {
            address: address.to_string(),
            endpoint,
            token: Some(settings.token.clone()),
        })
    }

    /// The address as given, for logs.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Whether this proxy authenticates (TLS and a token), and so can get
    /// certificates.
    pub fn is_authenticated(&self) -> bool {
        self.token.is_some()
    }

    /// Connects, with the token as it is on disk now.
    pub async fn connect(&self) -> Result<AuthorizedChannel, Error> {
        let token = match &self.token {
            Some(path) => Some(read_token(path).await?),
            None => None,
        };
        let channel = self.endpoint.connect().await.map_err(|e| Error::Connect {
            address: self.address.clone(),
            reason: error_chain(&e),
            hint: connect_hint(&e),
        })?;
        Ok(InterceptedService::new(channel, BearerToken(token)))
    }
}

/// A channel whose every call carries the proxy's token.
pub type AuthorizedChannel = InterceptedService<Channel, BearerToken>;

/// Adds `authorization: Bearer <token>` to every call; nothing on a
/// plaintext connection.
#[derive(Clone)]
pub struct BearerToken(Option<MetadataValue<Ascii>>);

impl Interceptor for BearerToken {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(token) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", token.clone());
        }
        Ok(request)
    }
}

fn invalid(address: &str, reason: &str) -> Error {
    Error::InvalidAddress {
        address: address.to_string(),
        reason: reason.to_string(),
    }
}

fn endpoint(address: &str, uri: String) -> Result<Endpoint, Error> {
    Ok(Endpoint::from_shared(uri)
        .map_err(|e| invalid(address, &error_chain(&e)))?
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT)
        .keep_alive_while_idle(true))
}

/// The PEM of `path`, which must hold at least one certificate.
fn read_roots(path: &Path) -> Result<Vec<u8>, Error> {
    let root_error = |reason: String| Error::CaRoot {
        path: path.to_path_buf(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| root_error(e.to_string()))?;
    let certificates = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| root_error(format!("invalid PEM: {e}")))?;
    if certificates.is_empty() {
        return Err(root_error("no PEM certificate found".to_string()));
    }
    Ok(pem)
}

/// The `authorization` header value for the token in `path`.
async fn read_token(path: &Path) -> Result<MetadataValue<Ascii>, TokenError> {
    let text = tokio::fs::read_to_string(path)
        .await
        .map_err(|source| TokenError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    bearer(text.trim()).ok_or_else(|| {
        if text.trim().is_empty() {
            TokenError::Empty {
                path: path.to_path_buf(),
            }
        } else {
            TokenError::NotAHeader {
                path: path.to_path_buf(),
            }
        }
    })
}

/// `Bearer <token>`, if the token is non-empty and fits in a header;
/// marked sensitive, so HTTP/2 never adds it to the HPACK table, where a
/// later header could be compressed against it.
fn bearer(token: &str) -> Option<MetadataValue<Ascii>> {
    if token.is_empty() || token.contains(char::is_whitespace) {
        return None;
    }
    let mut value: MetadataValue<Ascii> = format!("Bearer {token}").parse().ok()?;
    value.set_sensitive(true);
    Some(value)
}

#[cfg(test)]
mod tests;
