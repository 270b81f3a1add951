//! Subject alt name matchers: DNS names and URIs (SPIFFE ids) with an exact
//! matcher become the names a peer certificate must carry; anything else is
//! rejected rather than verified less than it asks.

use proto::pb::envoy::extensions::transport_sockets::tls::v3::{
    CertificateValidationContext, SubjectAltNameMatcher, common_tls_context,
    subject_alt_name_matcher::SanType,
};
use proto::pb::envoy::r#type::matcher::v3::{StringMatcher, string_matcher};

use super::assert_rejected;
use super::tls::{CLUSTER, dns_san, mesh_secrets, upstream, upstream_tls, validation_context};
use crate::model::cluster::{SubjectAltName, Trust};
use crate::model::cluster_from_proto;
use crate::model::proto_fixtures::{mesh_context, sds};
use crate::model::secret::SecretSources;

#[test]
fn simple_tls_verifies_the_system_roots_and_the_configured_dns_sans() {
    let c = upstream(validation_context(CertificateValidationContext {
        system_root_certs: Some(Default::default()),
        match_typed_subject_alt_names: vec![dns_san("edition.cnn.com")],
        ..Default::default()
    }));
    let (tls, secret_names) = upstream_tls(&c, &SecretSources::default());
    assert_eq!(tls.sni, "edition.cnn.com");
    assert_eq!(tls.trust, Trust::System);
    assert_eq!(
        tls.subject_alt_names,
        [SubjectAltName::Dns("edition.cnn.com".into())]
    );
    assert!(tls.verify_server_name);
    assert!(tls.client_cert.is_none());
    assert!(secret_names.is_empty());
}

#[test]
fn san_matchers_the_agent_cannot_verify_are_rejected() {
    let reject = |san: SubjectAltNameMatcher, reason: &str| {
        let c = upstream(validation_context(CertificateValidationContext {
            system_root_certs: Some(Default::default()),
            match_typed_subject_alt_names: vec![dns_san("ok.example"), san],
            ..Default::default()
        }));
        assert_rejected(
            cluster_from_proto(&c, &SecretSources::default()),
            "cluster",
            CLUSTER,
            "transport_socket.common_tls_context.validation_context.match_typed_subject_alt_names[1]",
            reason,
        );
    };
    let mut unspecified = dns_san("a.example");
    unspecified.san_type = SanType::Unspecified as i32;
    reject(
        unspecified,
        "SAN type SAN_TYPE_UNSPECIFIED cannot be verified; only DNS and URI SANs are supported",
    );
    let mut suffix = dns_san("");
    suffix.matcher = Some(StringMatcher {
        match_pattern: Some(string_matcher::MatchPattern::Suffix(".example".into())),
        ..Default::default()
    });
    reject(
        suffix,
        "only an exact matcher is supported for DNS and URI SANs",
    );
}

#[test]
fn istio_mutual_verifies_the_spiffe_ids_of_a_combined_validation_context() {
    let mut common = mesh_context();
    let mut uri =
        dns_san("spiffe://cluster.local/ns/istio-system/sa/istio-egressgateway-service-account");
    uri.san_type = SanType::Uri as i32;
    common.validation_context_type = Some(
        common_tls_context::ValidationContextType::CombinedValidationContext(
            common_tls_context::CombinedCertificateValidationContext {
                default_validation_context: Some(CertificateValidationContext {
                    match_typed_subject_alt_names: vec![uri],
                    ..Default::default()
                }),
                validation_context_sds_secret_config: Some(sds("ROOTCA")),
                ..Default::default()
            },
        ),
    );
    let (tls, _) = upstream_tls(&upstream(common), &mesh_secrets());
    assert_eq!(
        tls.subject_alt_names,
        [SubjectAltName::Uri(
            "spiffe://cluster.local/ns/istio-system/sa/istio-egressgateway-service-account".into()
        )]
    );
}

#[test]
fn a_bad_default_validation_context_is_rejected() {
    let mut common = mesh_context();
    let mut prefix = dns_san("");
    prefix.san_type = SanType::Uri as i32;
    prefix.matcher = Some(StringMatcher {
        match_pattern: Some(string_matcher::MatchPattern::Prefix(
            "spiffe://cluster.local/".into(),
        )),
        ..Default::default()
    });
    common.validation_context_type = Some(
        common_tls_context::ValidationContextType::CombinedValidationContext(
            common_tls_context::CombinedCertificateValidationContext {
                default_validation_context: Some(CertificateValidationContext {
                    match_typed_subject_alt_names: vec![prefix],
                    ..Default::default()
                }),
                validation_context_sds_secret_config: Some(sds("ROOTCA")),
                ..Default::default()
            },
        ),
    );
    assert_rejected(
        cluster_from_proto(&upstream(common), &SecretSources::default()),
        "cluster",
        CLUSTER,
        "transport_socket.common_tls_context.combined_validation_context.match_typed_subject_alt_names[0]",
        "only an exact matcher is supported for DNS and URI SANs",
    );
}
