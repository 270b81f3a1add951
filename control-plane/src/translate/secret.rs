//! SDS references as istiod writes them: `default` and `ROOTCA` from the proxy's agent through `sds-grpc`.

use proto::pb::envoy::extensions::transport_sockets::tls::v3::{
    CommonTlsContext, SdsSecretConfig, common_tls_context,
};

use shared::naming::{SDS_CLUSTER, SDS_ROOT_CA, SDS_WORKLOAD_CERTIFICATE};

/// A reference to secret `name`, fetched from the proxy's agent through
/// [`SDS_CLUSTER`], as istiod writes it: gRPC, v3, the node on the first
/// message only, and no initial fetch timeout (the agent always has its
/// workload certificate, so Envoy waits for it).
fn sds_from_agent(name: &str) -> SdsSecretConfig {
    proto::sds::secret_through_cluster(name, SDS_CLUSTER)
}

/// The TLS context of Istio mutual TLS, either side: the proxy's own
/// certificate (`default`) and the mesh root (`ROOTCA`) from the agent's SDS.
pub fn istio_mutual_tls_context(alpn: &[&str]) -> CommonTlsContext {
    CommonTlsContext {
        tls_certificate_sds_secret_configs: vec![sds_from_agent(SDS_WORKLOAD_CERTIFICATE)],
        validation_context_type: Some(
            common_tls_context::ValidationContextType::ValidationContextSdsSecretConfig(
                sds_from_agent(SDS_ROOT_CA),
            ),
        ),
        alpn_protocols: alpn.iter().map(|p| p.to_string()).collect(),
        ..Default::default()
    }
}
