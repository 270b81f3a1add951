//! CSDS (`envoy.service.status.v3.ClientStatusDiscoveryService`): for every
//! connected proxy, each resource it was sent with its status (ACKED,
//! NACKED with the error, or still REQUESTED) and, unless excluded, its
//! content. A secret's private key is redacted, as in Envoy's config dump:
//! its certificates (public) are shown, its key never.
//!
//! On the secure port only operators' tokens may read it: of namespace
//! `istio-system`, as istiod has it, but not of a trusted gateway's service
//! account (which lives there too, and whose pods run no operator); on the
//! plaintext port, which is opt-in and on loopback unless told otherwise,
//! anyone who can connect.

use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use proto::pb::envoy::admin::v3::{ClientResourceStatus, UpdateFailureState};
use proto::pb::envoy::service::status::v3::client_status_discovery_service_server::ClientStatusDiscoveryService;
use proto::pb::envoy::service::status::v3::{
    ClientConfig, ClientStatusRequest, ClientStatusResponse, ConfigStatus,
    client_config::GenericXdsConfig,
};
use tonic::{Request, Response, Status, Streaming};

use crate::auth::AuthError;

use super::XdsContext;
use super::authn::{Caller, refuse};
use super::connection::Connection;
use super::subscription::{Nack, ResourceStatus};

/// The namespace whose tokens may read CSDS on the secure port.
const OPERATOR_NAMESPACE: &str = "istio-system";

pub struct Csds {
    context: Arc<XdsContext>,
}

impl Csds {
    pub fn new(context: Arc<XdsContext>) -> Self {
        Self { context }
    }

    /// Refuses a secure-port caller outside `istio-system`, or with a
    /// trusted gateway's service account.
    fn authorize<T>(&self, request: &Request<T>) -> Result<(), Status> {
        let Some(caller) = request.extensions().get::<Caller>() else {
            return Ok(());
        };
        let account = &caller.account;
        let refusal = if account.namespace != OPERATOR_NAMESPACE {
            AuthError::CsdsNotAllowed {
                caller: account.to_string(),
            }
        } else if self.context.trusted_gateways.trusts(account) {
            AuthError::CsdsNotForGateways {
                caller: account.to_string(),
            }
        } else {
            return Ok(());
        };
        Err(refuse(&self.context.metrics, caller.peer, &refusal))
    }

    fn status(&self, request: &ClientStatusRequest) -> ClientStatusResponse {
        let state = self.context.publisher.current();
        let config = self
            .context
            .connections
            .list()
            .iter()
            .filter(|c| {
                request
                    .node
                    .as_ref()
                    .is_none_or(|n| n.id.is_empty() || n.id == c.node.id)
            })
            .map(|c| client_config(&self.context, &state, c, request.exclude_resource_contents))
            .collect();
        ClientStatusResponse { config }
    }
}

/// The status of every resource sent to one proxy.
pub fn client_config(
    context: &XdsContext,
    state: &super::state::MeshState,
    connection: &Connection,
    exclude_contents: bool,
) -> ClientConfig {
    let snapshot = context.cache.get(state, &connection.proxy);
    let subscriptions = connection.subscriptions.lock();
    let mut generic_xds_configs = Vec::new();
    for (type_url, sub) in subscriptions.iter() {
        for (name, sent_version) in sub.sent().iter() {
            let (client_status, config_status, error_state) = match sub.status(name, sent_version) {
                ResourceStatus::Acked => (ClientResourceStatus::Acked, ConfigStatus::Synced, None),
                ResourceStatus::Nacked(nack) => (
                    ClientResourceStatus::Nacked,
                    ConfigStatus::Error,
                    Some(failure(nack)),
                ),
                ResourceStatus::Requested => {
                    (ClientResourceStatus::Requested, ConfigStatus::Stale, None)
                }
            };
            let xds_config = if exclude_contents {
                None
            } else {
                snapshot
                    .resources(type_url)
                    .and_then(|by_name| by_name.get(&**name))
                    .map(|r| redacted(type_url, &r.any))
            };
            generic_xds_configs.push(GenericXdsConfig {
                type_url: type_url.to_string(),
                name: name.to_string(),
                version_info: sub.acked_version(name).unwrap_or_default().to_string(),
                xds_config,
                config_status: config_status as i32,
                client_status: client_status as i32,
                error_state,
                ..Default::default()
            });
        }
        if sub.sent().is_empty()
            && let Some(nack) = sub.nack()
        {
            generic_xds_configs.push(GenericXdsConfig {
                type_url: type_url.to_string(),
                config_status: ConfigStatus::Error as i32,
                client_status: ClientResourceStatus::Nacked as i32,
                error_state: Some(failure(nack)),
                ..Default::default()
            });
        }
    }
    ClientConfig {
        node: Some(connection.node.clone()),
        generic_xds_configs,
        ..Default::default()
    }
}

/// `any` as CSDS may show it: a secret without its private key.
fn redacted(type_url: &str, any: &proto::wkt::Any) -> proto::wkt::Any {
    if type_url != shared::type_url::SECRET {
        return any.clone();
    }
    proto::wkt::Any {
        type_url: any.type_url.clone(),
        value: crate::translate::secret::redact_private_key(&any.value),
    }
}

/// A rejection as CSDS reports it.
fn failure(nack: &Nack) -> UpdateFailureState {
    UpdateFailureState {
        details: nack.error.clone(),
        version_info: nack.version.clone(),
        ..Default::default()
    }
}

type StatusStream = Pin<Box<dyn Stream<Item = Result<ClientStatusResponse, Status>> + Send>>;

#[tonic::async_trait]
impl ClientStatusDiscoveryService for Csds {
    type StreamClientStatusStream = StatusStream;

    async fn stream_client_status(
        &self,
        request: Request<Streaming<ClientStatusRequest>>,
    ) -> Result<Response<Self::StreamClientStatusStream>, Status> {
        self.authorize(&request)?;
        let csds = Csds {
            context: self.context.clone(),
        };
        let responses = request
            .into_inner()
            .map(move |req| req.map(|req| csds.status(&req)));
        Ok(Response::new(Box::pin(responses)))
    }

    async fn fetch_client_status(
        &self,
        request: Request<ClientStatusRequest>,
    ) -> Result<Response<ClientStatusResponse>, Status> {
        self.authorize(&request)?;
        Ok(Response::new(self.status(request.get_ref())))
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;
    use proto::pb::envoy::config::core::v3::{DataSource, data_source};
    use proto::pb::envoy::extensions::transport_sockets::tls::v3::{
        Secret, TlsCertificate, secret,
    };

    use super::*;

    fn inline(text: &str) -> Option<DataSource> {
        Some(DataSource {
            specifier: Some(data_source::Specifier::InlineString(text.to_string())),
            ..Default::default()
        })
    }

    #[test]
    fn a_secret_is_shown_with_its_certificate_and_without_its_private_key() {
        let secret = Secret {
            name: "kubernetes://cnn-credential".to_string(),
            r#type: Some(secret::Type::TlsCertificate(TlsCertificate {
                certificate_chain: inline("CERTIFICATE"),
                private_key: inline("PRIVATE KEY"),
                ..Default::default()
            })),
        };
        let any = proto::pack(shared::type_url::SECRET, &secret);
        let shown = Secret::decode(redacted(shared::type_url::SECRET, &any).value.as_slice())
            .expect("a secret");
        let Some(secret::Type::TlsCertificate(cert)) = shown.r#type else {
            panic!("a TLS certificate");
        };
        assert_eq!(cert.certificate_chain, inline("CERTIFICATE"));
        assert_eq!(cert.private_key, inline("[redacted]"));
        let cluster = proto::wkt::Any {
            type_url: shared::type_url::CLUSTER.to_string(),
            value: vec![1, 2, 3],
        };
        assert_eq!(redacted(shared::type_url::CLUSTER, &cluster), cluster);
    }
}
