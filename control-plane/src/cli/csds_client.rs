//! How the istioctl-like commands reach a running control plane's CSDS:
//! the secure port with the mesh root and an operator's token, or the
//! opt-in plaintext port.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use proto::pb::envoy::config::core::v3::Node;
use proto::pb::envoy::service::status::v3::client_status_discovery_service_client::ClientStatusDiscoveryServiceClient;
use proto::pb::envoy::service::status::v3::{ClientStatusRequest, ClientStatusResponse};
use shared::identity::CONTROL_PLANE_SERVER_NAME;
use tonic::Request;
use tonic::metadata::MetadataValue;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

/// How long connecting and the call may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Where the control plane is and how to prove who we are.
#[derive(Args, Clone)]
pub struct CsdsOptions {
    /// The control plane's xDS address: its secure port, or with
    /// `--plaintext` its plaintext one.
    #[arg(long, default_value = "127.0.0.1:15012")]
    pub xds_address: String,
    /// Call the plaintext port (`serve --plaintext-xds-addr`): no TLS, no token.
    #[arg(long)]
    pub plaintext: bool,
    /// The mesh root to verify the secure port with (`serve --ca-dir`'s root-cert.pem).
    #[arg(long, value_name = "FILE", required_unless_present = "plaintext")]
    pub ca_root: Option<PathBuf>,
    /// A token of an istio-system service account (`token create --namespace istio-system`).
    #[arg(long, value_name = "FILE", required_unless_present = "plaintext")]
    pub token: Option<PathBuf>,
}

/// Why CSDS could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CsdsError {
    #[error("read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("bad control plane address {address:?}: {source}")]
    Address {
        address: String,
        source: tonic::transport::Error,
    },
    #[error("cannot reach the control plane at {address}: {source}")]
    Unreachable {
        address: String,
        source: tonic::transport::Error,
    },
    #[error("the control plane at {address} refused CSDS: {message}")]
    Refused { address: String, message: String },
    #[error("the token is not valid in a header")]
    Token,
}

impl CsdsOptions {
    /// Every connected proxy's status, or only `node_id`'s; contents
    /// left out unless `with_contents`.
    pub async fn fetch(
        &self,
        node_id: Option<&str>,
        with_contents: bool,
    ) -> Result<ClientStatusResponse, CsdsError> {
        let scheme = if self.plaintext { "http" } else { "https" };
        let address = &self.xds_address;
        let bad_address = |source| CsdsError::Address {
            address: address.clone(),
            source,
        };
        let mut endpoint = Endpoint::from_shared(format!("{scheme}://{address}"))
            .map_err(bad_address)?
            .connect_timeout(TIMEOUT)
            .timeout(TIMEOUT);
        let mut token = None;
        if !self.plaintext {
            let root = read(self.ca_root.as_ref())?;
            let tls = ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(root))
                .domain_name(CONTROL_PLANE_SERVER_NAME);
            endpoint = endpoint.tls_config(tls).map_err(bad_address)?;
            let text =
                String::from_utf8(read(self.token.as_ref())?).map_err(|_| CsdsError::Token)?;
            let value = MetadataValue::try_from(format!("Bearer {}", text.trim()))
                .map_err(|_| CsdsError::Token)?;
            token = Some(value);
        }
        let channel = endpoint
            .connect()
            .await
            .map_err(|source| CsdsError::Unreachable {
                address: address.clone(),
                source,
            })?;
        let mut request = Request::new(ClientStatusRequest {
            node: node_id.map(|id| Node {
                id: id.to_string(),
                ..Default::default()
            }),
            exclude_resource_contents: !with_contents,
            ..Default::default()
        });
        if let Some(token) = token {
            request.metadata_mut().insert("authorization", token);
        }
        ClientStatusDiscoveryServiceClient::new(channel)
            .fetch_client_status(request)
            .await
            .map(tonic::Response::into_inner)
            .map_err(|status| CsdsError::Refused {
                address: address.clone(),
                message: status.message().to_string(),
            })
    }
}

fn read(path: Option<&PathBuf>) -> Result<Vec<u8>, CsdsError> {
    let path = path.expect("clap requires it without --plaintext");
    std::fs::read(path).map_err(|source| CsdsError::Read {
        path: path.clone(),
        source,
    })
}
