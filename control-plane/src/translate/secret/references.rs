//! The secrets a proxy's config references over ADS: the SDS names in the TLS contexts of its clusters and listeners, the only `kubernetes://` secrets it is served.

use std::collections::BTreeSet;

use prost::Message;
use proto::pb::envoy::config::cluster::v3::Cluster;
use proto::pb::envoy::config::core::v3::{TransportSocket, config_source, transport_socket};
use proto::pb::envoy::config::listener::v3::Listener;
use proto::pb::envoy::extensions::transport_sockets::tls::v3::{
    CommonTlsContext, DownstreamTlsContext, SdsSecretConfig, UpstreamTlsContext,
    common_tls_context::ValidationContextType,
};

use crate::translate::filters::{DOWNSTREAM_TLS_CONTEXT, UPSTREAM_TLS_CONTEXT};

/// The names of the secrets `clusters` and `listeners` fetch over ADS
/// (`credentialName` of a Gateway server or a DestinationRule that applies
/// to the proxy); `default` and `ROOTCA`, from the agent, are not among them.
pub fn referenced_over_ads(clusters: &[Cluster], listeners: &[Listener]) -> BTreeSet<String> {
    let cluster_sockets = clusters.iter().flat_map(|cluster| {
        let matches = cluster
            .transport_socket_matches
            .iter()
            .filter_map(|m| m.transport_socket.as_ref());
        cluster.transport_socket.iter().chain(matches)
    });
    let listener_sockets = listeners.iter().flat_map(|listener| {
        listener
            .filter_chains
            .iter()
            .chain(&listener.default_filter_chain)
            .filter_map(|chain| chain.transport_socket.as_ref())
    });
    cluster_sockets
        .chain(listener_sockets)
        .filter_map(common_tls_context)
        .flat_map(|context| sds_configs(&context))
        .filter(is_over_ads)
        .map(|sds| sds.name)
        .collect()
}

/// The common TLS context of a TLS transport socket, either side.
fn common_tls_context(socket: &TransportSocket) -> Option<CommonTlsContext> {
    let Some(transport_socket::ConfigType::TypedConfig(any)) = &socket.config_type else {
        return None;
    };
    let type_name = any.type_url.rsplit('/').next().unwrap_or_default();
    match type_name {
        UPSTREAM_TLS_CONTEXT => {
            UpstreamTlsContext::decode(&any.value[..])
                .ok()?
                .common_tls_context
        }
        DOWNSTREAM_TLS_CONTEXT => {
            DownstreamTlsContext::decode(&any.value[..])
                .ok()?
                .common_tls_context
        }
        _ => None,
    }
}

/// Every SDS reference of a TLS context: its certificates and its
/// validation context.
fn sds_configs(context: &CommonTlsContext) -> Vec<SdsSecretConfig> {
    let mut configs = context.tls_certificate_sds_secret_configs.clone();
    match &context.validation_context_type {
        Some(ValidationContextType::ValidationContextSdsSecretConfig(sds)) => {
            configs.push(sds.clone());
        }
        Some(ValidationContextType::CombinedValidationContext(combined)) => {
            configs.extend(combined.validation_context_sds_secret_config.clone());
        }
        _ => {}
    }
    configs
}

fn is_over_ads(sds: &SdsSecretConfig) -> bool {
    matches!(
        sds.sds_config
            .as_ref()
            .and_then(|source| source.config_source_specifier.as_ref()),
        Some(config_source::ConfigSourceSpecifier::Ads(_))
    )
}
