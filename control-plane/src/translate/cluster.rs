//! CDS: one cluster per visible service port (`outbound|<port>||<host>`),
//! one more per DestinationRule subset (`outbound|<port>|<subset>|<host>`),
//! plus `PassthroughCluster` and `BlackHoleCluster`.

use std::borrow::Cow;
use std::collections::HashMap;

use proto::pb::envoy::config::cluster::v3::{
    Cluster,
    cluster::{ClusterDiscoveryType, DiscoveryType, DnsLookupFamily, EdsClusterConfig, LbPolicy},
};
use proto::pb::envoy::config::core::v3::{DataSource, UpstreamHttpProtocolOptions, data_source};
use proto::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use proto::pb::envoy::extensions::transport_sockets::tls::v3::{
    CertificateValidationContext, CommonTlsContext, SubjectAltNameMatcher, TlsCertificate,
    UpstreamTlsContext, certificate_validation_context::SystemRootCerts, common_tls_context,
    subject_alt_name_matcher::SanType,
};
use proto::pb::envoy::r#type::matcher::v3::{StringMatcher, string_matcher::MatchPattern};
use shared::naming::{BLACKHOLE_CLUSTER, ClusterName, PASSTHROUGH_CLUSTER};
use shared::node::NodeType;

use crate::config::model::{ClientTlsSettings, DestinationRule, Resolution, SimpleLb, TlsMode};
use crate::config::{Kind, Resource};

use super::config_metadata::config_metadata;
use super::endpoint::load_assignment;
use super::filters::{self, HTTP_PROTOCOL_OPTIONS, TLS_TRANSPORT_SOCKET, UPSTREAM_TLS_CONTEXT};
use super::registry::{MeshView, Service};
use super::secret::{credential_ca_name, credential_name, istio_mutual_tls_context, sds_over_ads};
use proto::pack_named;

mod connection_pool;
mod load_balancer;
mod outlier;
mod policy;

pub use policy::EffectivePolicy;

/// The ALPN a sidecar offers when it originates Istio mutual TLS (Istio's
/// `ALPNInMeshWithMxc`): the gateway's ISTIO_MUTUAL servers accept
/// `istio-peer-exchange`.
const ISTIO_MUTUAL_UPSTREAM_ALPN: [&str; 2] = ["istio-peer-exchange", "istio"];

/// Whether `rule`'s SIMPLE or MUTUAL `credentialName` is one the proxy does
/// not get: istiod gives a sidecar no TLS for it unless the rule selects the
/// sidecar by `workloadSelector`, since a rule for every proxy would have
/// each sidecar wait for a Secret that is meant for the gateway (the
/// sidecar's traffic then goes out as it comes, as the egress docs route
/// it to the gateway that originates TLS).
fn credential_unreadable(view: &MeshView<'_>, rule: Option<&Resource<DestinationRule>>) -> bool {
    view.proxy.node_type == NodeType::Sidecar
        && rule.is_some_and(|rule| rule.spec.workload_selector.is_none())
}

pub fn build_clusters(view: &MeshView<'_>) -> Vec<Cluster> {
    let mut clusters = vec![passthrough_cluster(), blackhole_cluster()];
    for service in &view.services {
        let rule = view.destination_rule(&service.host, service.namespace);
        let top = rule.and_then(|r| r.spec.traffic_policy.as_ref());
        let port = service.port.number;
        let unreadable = credential_unreadable(view, rule);
        let policy = EffectivePolicy::merge(top, None, port).without_tls_if(unreadable);
        // istiod names the rule on its clusters, the subsets' too.
        let metadata = rule.map(|r| config_metadata(Kind::DestinationRule, &r.meta));
        let mut cluster = service_cluster(view, service, "", &policy);
        cluster.metadata = metadata.clone();
        clusters.push(cluster);
        for subset in rule.map(|r| r.spec.subsets.as_slice()).unwrap_or_default() {
            let policy = EffectivePolicy::merge(top, subset.traffic_policy.as_ref(), port)
                .without_tls_if(unreadable);
            let mut cluster = service_cluster(view, service, &subset.name, &policy);
            cluster.metadata = metadata.clone();
            clusters.push(cluster);
        }
    }
    // By a cached key: comparing in place would move whole clusters.
    clusters.sort_by_cached_key(|c| c.name.clone());
    clusters.dedup_by(|a, b| a.name == b.name);
    clusters
}

fn passthrough_cluster() -> Cluster {
    Cluster {
        name: PASSTHROUGH_CLUSTER.to_string(),
        cluster_discovery_type: Some(ClusterDiscoveryType::Type(
            DiscoveryType::OriginalDst as i32,
        )),
        lb_policy: LbPolicy::ClusterProvided as i32,
        connect_timeout: Some(connection_pool::connect_timeout(None)),
        circuit_breakers: Some(connection_pool::circuit_breakers(None)),
        ..Default::default()
    }
}

fn blackhole_cluster() -> Cluster {
    Cluster {
        name: BLACKHOLE_CLUSTER.to_string(),
        cluster_discovery_type: Some(ClusterDiscoveryType::Type(DiscoveryType::Static as i32)),
        connect_timeout: Some(connection_pool::connect_timeout(None)),
        ..Default::default()
    }
}

fn service_cluster(
    view: &MeshView<'_>,
    service: &Service<'_>,
    subset: &str,
    policy: &EffectivePolicy,
) -> Cluster {
    let port = service.port_number();
    let name = ClusterName::outbound(port, subset, &service.host).to_string();
    let simple_lb = policy.load_balancer.as_ref().and_then(|lb| lb.simple);
    let mut cluster = Cluster {
        name: name.clone(),
        ..Default::default()
    };

    let original_dst =
        simple_lb == Some(SimpleLb::Passthrough) || service.resolution() == Resolution::None;
    if original_dst {
        cluster.cluster_discovery_type = Some(ClusterDiscoveryType::Type(
            DiscoveryType::OriginalDst as i32,
        ));
    } else if matches!(
        service.resolution(),
        Resolution::Dns | Resolution::DnsRoundRobin
    ) {
        let kind = if service.resolution() == Resolution::Dns {
            DiscoveryType::StrictDns
        } else {
            DiscoveryType::LogicalDns
        };
        cluster.cluster_discovery_type = Some(ClusterDiscoveryType::Type(kind as i32));
        cluster.dns_lookup_family = DnsLookupFamily::V4Only as i32;
        let subset_labels = subset_labels(view, service, subset);
        let endpoints = view.endpoints(service, &subset_labels);
        cluster.load_assignment = Some(load_assignment(&name, &endpoints));
    } else {
        cluster.cluster_discovery_type =
            Some(ClusterDiscoveryType::Type(DiscoveryType::Eds as i32));
        cluster.eds_cluster_config = Some(EdsClusterConfig {
            eds_config: Some(filters::ads_config_source()),
            service_name: name.clone(),
        });
    }

    let pool = policy.connection_pool.as_ref();
    connection_pool::apply(&mut cluster, pool);
    outlier::apply(&mut cluster, policy.outlier_detection.as_ref());
    load_balancer::apply(&mut cluster, policy.load_balancer.as_ref());
    let http2 = service.protocol().is_http2();
    let auto_sni = policy.tls.as_ref().and_then(auto_sni);
    if let Some(options) = connection_pool::http_protocol_options(http2, pool, auto_sni) {
        cluster.typed_extension_protocol_options = HashMap::from([(
            HTTP_PROTOCOL_OPTIONS.to_string(),
            pack_named(HTTP_PROTOCOL_OPTIONS, &options),
        )]);
    }
    if let Some(tls) = policy.tls.as_ref().and_then(|tls| {
        upstream_tls(
            &entry_names(view, tls, service),
            &service.host,
            port,
            subset,
        )
    }) {
        cluster.transport_socket = Some(filters::transport_socket(
            TLS_TRANSPORT_SOCKET,
            UPSTREAM_TLS_CONTEXT,
            &tls,
        ));
    }
    cluster
}

/// istiod's SNI and name checks for SIMPLE and MUTUAL origination without
/// an `sni`: the request's host is sent as SNI (`auto_sni`) and, unless the
/// rule names `subjectAltNames` or skips verification, the certificate
/// must hold it (`auto_san_validation`). ISTIO_MUTUAL keeps its own SNI.
///
/// The name is checked only when the server is verified against a CA the
/// cluster names (`caCertificates`, or a `credentialName`'s CA): istiod
/// gives the system roots as an SDS secret of pilot-agent, here they are
/// `system_root_certs`, against which Envoy 1.40 fails every handshake that
/// has a name to check.
fn auto_sni(tls: &ClientTlsSettings) -> Option<UpstreamHttpProtocolOptions> {
    let originated = matches!(tls.mode, TlsMode::Simple | TlsMode::Mutual);
    if !originated || tls.sni.as_deref().is_some_and(|sni| !sni.is_empty()) {
        return None;
    }
    let named_ca = tls.ca_certificates.is_some() || tls.credential_name.is_some();
    Some(UpstreamHttpProtocolOptions {
        auto_sni: true,
        auto_san_validation: tls.subject_alt_names.is_empty()
            && tls.insecure_skip_verify != Some(true)
            && named_ca,
        ..Default::default()
    })
}

/// The client TLS settings with the service's identities when the rule
/// names no `subjectAltNames`, as istiod verifies a service of its
/// ServiceEntry registry: for ISTIO_MUTUAL, SIMPLE and MUTUAL alike, the
/// SPIFFE ids of its endpoints' service accounts and the entry's
/// `subjectAltNames` (none: the chain alone, or `auto_san_validation`).
fn entry_names<'t>(
    view: &MeshView<'_>,
    tls: &'t ClientTlsSettings,
    service: &Service<'_>,
) -> Cow<'t, ClientTlsSettings> {
    if !tls.subject_alt_names.is_empty() || tls.mode == TlsMode::Disable {
        return Cow::Borrowed(tls);
    }
    let names = view.service_accounts(service);
    if names.is_empty() {
        return Cow::Borrowed(tls);
    }
    Cow::Owned(ClientTlsSettings {
        subject_alt_names: names,
        ..tls.clone()
    })
}

/// The labels of `subset` in the DestinationRule that applies to `service`.
pub fn subset_labels(
    view: &MeshView<'_>,
    service: &Service<'_>,
    subset: &str,
) -> crate::config::model::Labels {
    if subset.is_empty() {
        return Default::default();
    }
    view.destination_rule(&service.host, service.namespace)
        .and_then(|rule| rule.spec.subsets.iter().find(|s| s.name == subset))
        .map(|s| s.labels.clone())
        .unwrap_or_default()
}

fn file(path: &str) -> DataSource {
    DataSource {
        specifier: Some(data_source::Specifier::Filename(path.to_string())),
        ..Default::default()
    }
}

/// The UpstreamTlsContext of cluster `outbound|<port>|<subset>|<host>` for a
/// DestinationRule's `tls`, or `None` for `DISABLE`. Without
/// `caCertificates` the system roots verify the server, as Istio does with
/// VERIFY_CERTIFICATE_AT_CLIENT. The SNI is the rule's `sni`, else as
/// Istio: `outbound_.<port>_.<subset>_.<host>` for ISTIO_MUTUAL, none for
/// SIMPLE and MUTUAL (the cluster's `auto_sni` sends the request's host).
pub fn upstream_tls(
    tls: &ClientTlsSettings,
    host: &str,
    port: u16,
    subset: &str,
) -> Option<UpstreamTlsContext> {
    let default_sni = match tls.mode {
        TlsMode::IstioMutual => format!("outbound_.{port}_.{subset}_.{host}"),
        _ => String::new(),
    };
    let sni = tls.sni.clone().unwrap_or(default_sni);
    let san_matchers = tls
        .subject_alt_names
        .iter()
        .map(|san| SubjectAltNameMatcher {
            // A SPIFFE identity (`spiffe://...`) is a URI SAN.
            san_type: if san.contains("://") {
                SanType::Uri
            } else {
                SanType::Dns
            } as i32,
            matcher: Some(StringMatcher {
                match_pattern: Some(MatchPattern::Exact(san.clone())),
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect();
    let common = match tls.mode {
        TlsMode::Disable => return None,
        TlsMode::Simple | TlsMode::Mutual if tls.credential_name.is_some() => {
            credential_tls_context(tls, san_matchers)
        }
        TlsMode::Simple | TlsMode::Mutual => {
            let validation = if tls.insecure_skip_verify == Some(true) {
                None
            } else {
                Some(
                    common_tls_context::ValidationContextType::ValidationContext(
                        CertificateValidationContext {
                            trusted_ca: tls.ca_certificates.as_deref().map(file),
                            system_root_certs: tls
                                .ca_certificates
                                .is_none()
                                .then_some(SystemRootCerts {}),
                            match_typed_subject_alt_names: san_matchers,
                            ..Default::default()
                        },
                    ),
                )
            };
            let certificates = match (tls.mode, &tls.client_certificate, &tls.private_key) {
                (TlsMode::Mutual, Some(cert), Some(key)) => vec![TlsCertificate {
                    certificate_chain: Some(file(cert)),
                    private_key: Some(file(key)),
                    ..Default::default()
                }],
                _ => Vec::new(),
            };
            CommonTlsContext {
                tls_certificates: certificates,
                validation_context_type: validation,
                ..Default::default()
            }
        }
        TlsMode::IstioMutual => istio_mutual_upstream(san_matchers),
    };
    Some(UpstreamTlsContext {
        common_tls_context: Some(common),
        sni,
        ..Default::default()
    })
}

/// Istio mutual TLS from a sidecar: the workload certificate, the mesh
/// root and, as istiod adds them, the rule's `subjectAltNames` verified
/// beside the root (a combined validation context).
fn istio_mutual_upstream(san_matchers: Vec<SubjectAltNameMatcher>) -> CommonTlsContext {
    let mut common = istio_mutual_tls_context(&ISTIO_MUTUAL_UPSTREAM_ALPN);
    if san_matchers.is_empty() {
        return common;
    }
    if let Some(common_tls_context::ValidationContextType::ValidationContextSdsSecretConfig(root)) =
        common.validation_context_type.take()
    {
        common.validation_context_type = Some(
            common_tls_context::ValidationContextType::CombinedValidationContext(
                common_tls_context::CombinedCertificateValidationContext {
                    default_validation_context: Some(CertificateValidationContext {
                        match_typed_subject_alt_names: san_matchers,
                        ..Default::default()
                    }),
                    validation_context_sds_secret_config: Some(root),
                    ..Default::default()
                },
            ),
        );
    }
    common
}

/// The client TLS of a DestinationRule with `credentialName`, as istiod
/// writes it: for MUTUAL, the client certificate `kubernetes://<name>`; the
/// CA `kubernetes://<name>-cacert` and the subject alt names verify the
/// server, unless `insecureSkipVerify`. Both come over ADS.
fn credential_tls_context(
    tls: &ClientTlsSettings,
    san_matchers: Vec<SubjectAltNameMatcher>,
) -> CommonTlsContext {
    let credential = tls.credential_name.as_deref().unwrap_or_default();
    let certificates = (tls.mode == TlsMode::Mutual)
        .then(|| sds_over_ads(credential_name(credential)))
        .into_iter()
        .collect();
    let validation = (tls.insecure_skip_verify != Some(true)).then(|| {
        common_tls_context::ValidationContextType::CombinedValidationContext(
            common_tls_context::CombinedCertificateValidationContext {
                default_validation_context: Some(CertificateValidationContext {
                    match_typed_subject_alt_names: san_matchers,
                    ..Default::default()
                }),
                validation_context_sds_secret_config: Some(sds_over_ads(credential_ca_name(
                    credential,
                ))),
                ..Default::default()
            },
        )
    });
    CommonTlsContext {
        tls_certificate_sds_secret_configs: certificates,
        validation_context_type: validation,
        ..Default::default()
    }
}

/// Endpoints for an EDS cluster, by cluster name.
pub fn eds_assignment(view: &MeshView<'_>, cluster: &Cluster) -> Option<ClusterLoadAssignment> {
    let eds = matches!(
        cluster.cluster_discovery_type,
        Some(ClusterDiscoveryType::Type(t)) if t == DiscoveryType::Eds as i32
    );
    if !eds {
        return None;
    }
    let name = ClusterName::parse(&cluster.name)?;
    let service = view.service(name.host, u32::from(name.port))?;
    let labels = subset_labels(view, service, name.subset);
    Some(load_assignment(
        &cluster.name,
        &view.endpoints(service, &labels),
    ))
}

#[cfg(test)]
mod policy_tests;
#[cfg(test)]
mod tests;
