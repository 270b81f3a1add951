//! SDS as istiod writes it: references to `default` and `ROOTCA` from the proxy's agent through `sds-grpc`, and the `kubernetes://` secrets of `credentialName` served over ADS to the proxies whose config references them.

use proto::pb::envoy::config::core::v3::{
    AggregatedConfigSource, ApiVersion, ConfigSource, DataSource, config_source, data_source,
};
use proto::pb::envoy::extensions::transport_sockets::tls::v3::{
    CertificateValidationContext, CommonTlsContext, SdsSecretConfig, Secret, TlsCertificate,
    common_tls_context, secret,
};

use prost::Message;
use proto::pb::envoy::config::cluster::v3::Cluster;
use proto::pb::envoy::config::listener::v3::Listener;
use shared::naming::{SDS_CLUSTER, SDS_ROOT_CA, SDS_WORKLOAD_CERTIFICATE};

use crate::config::model::secret::CA_SUFFIX;
use crate::config::{ConfigSnapshot, model};

/// The prefix of the SDS names of Kubernetes secrets (Istio's
/// `KubernetesSecretTypeURI`).
pub const KUBERNETES_SECRET_PREFIX: &str = "kubernetes://";

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

/// The SDS name of the certificate and key of `credentialName: <name>`.
pub fn credential_name(credential: &str) -> String {
    format!("{KUBERNETES_SECRET_PREFIX}{credential}")
}

/// The SDS name of the CA that verifies peers for `credentialName: <name>`.
pub fn credential_ca_name(credential: &str) -> String {
    format!("{KUBERNETES_SECRET_PREFIX}{credential}{CA_SUFFIX}")
}

/// A reference to secret `name` over ADS, as istiod writes one for
/// `credentialName`.
pub fn sds_over_ads(name: String) -> SdsSecretConfig {
    SdsSecretConfig {
        name,
        sds_config: Some(ConfigSource {
            config_source_specifier: Some(config_source::ConfigSourceSpecifier::Ads(
                AggregatedConfigSource::default(),
            )),
            resource_api_version: ApiVersion::V3 as i32,
            ..Default::default()
        }),
    }
}

/// The `kubernetes://` secrets a proxy in `namespace` is served: those of
/// its own namespace that its `clusters` and `listeners` reference (a
/// Gateway server's or a DestinationRule's `credentialName` that applies to
/// it). istiod authorizes the reader too; this is that check here.
pub fn build_served_secrets(
    snapshot: &ConfigSnapshot,
    namespace: &str,
    clusters: &[Cluster],
    listeners: &[Listener],
) -> Vec<Secret> {
    let referenced = references::referenced_over_ads(clusters, listeners);
    let mut secrets = build_credential_secrets(snapshot, namespace);
    secrets.retain(|secret| referenced.contains(&secret.name));
    secrets
}

/// The `kubernetes://` secrets of the Secrets of `namespace`, as istiod
/// makes them. A Secret with a
/// certificate and key gives `kubernetes://<name>`; its CA gives
/// `kubernetes://<name>-cacert`, unless a Secret named `<name>-cacert`
/// exists, whose CA it is then.
pub fn build_credential_secrets(snapshot: &ConfigSnapshot, namespace: &str) -> Vec<Secret> {
    let in_namespace: Vec<&crate::config::Resource<model::Secret>> = snapshot
        .secrets
        .iter()
        .filter(|s| s.meta.namespace == namespace && s.spec.may_hold_credential())
        .collect();
    let named = |name: &str| in_namespace.iter().any(|s| s.meta.name == name);
    let mut secrets = Vec::new();
    for resource in &in_namespace {
        let name = resource.meta.name.as_str();
        let spec = &resource.spec;
        if name.ends_with(CA_SUFFIX) {
            if let Ok((_, ca)) = spec.ca_certificate() {
                secrets.push(ca_secret(credential_name(name), ca));
            }
            continue;
        }
        if let Ok(pair) = spec.key_pair() {
            secrets.push(Secret {
                name: credential_name(name),
                r#type: Some(secret::Type::TlsCertificate(TlsCertificate {
                    certificate_chain: Some(inline(pair.certificate)),
                    private_key: Some(inline(pair.private_key)),
                    ..Default::default()
                })),
            });
        }
        if let Ok((_, ca)) = spec.ca_certificate()
            && !named(&format!("{name}{CA_SUFFIX}"))
        {
            secrets.push(ca_secret(credential_ca_name(name), ca));
        }
    }
    secrets.sort_by(|a, b| a.name.cmp(&b.name));
    secrets
}

/// What a config dump shows of an encoded secret: the private key as
/// Envoy's config dump shows it, `[redacted]`.
pub fn redact_private_key(encoded: &[u8]) -> Vec<u8> {
    let Ok(mut secret) = Secret::decode(encoded) else {
        return Vec::new();
    };
    if let Some(secret::Type::TlsCertificate(cert)) = &mut secret.r#type
        && cert.private_key.is_some()
    {
        cert.private_key = Some(DataSource {
            specifier: Some(data_source::Specifier::InlineString(REDACTED.to_string())),
            ..Default::default()
        });
    }
    secret.encode_to_vec()
}

/// How Envoy's config dump shows a private key.
const REDACTED: &str = "[redacted]";

fn ca_secret(name: String, ca: &[u8]) -> Secret {
    Secret {
        name,
        r#type: Some(secret::Type::ValidationContext(
            CertificateValidationContext {
                trusted_ca: Some(inline(ca)),
                ..Default::default()
            },
        )),
    }
}

fn inline(bytes: &[u8]) -> DataSource {
    DataSource {
        specifier: Some(data_source::Specifier::InlineBytes(bytes.to_vec())),
        ..Default::default()
    }
}

mod references;

#[cfg(test)]
mod tests;
