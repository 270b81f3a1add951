//! Subject alt name matchers: DNS, URI, email and IP SANs with any string
//! matcher become what a peer certificate must carry, as Envoy checks them;
//! an unspecified type, or names without trusted roots, are rejected rather
//! than verified less than they ask. The SNI is checked only when the
//! cluster asks for `auto_san_validation`.

use proto::pb::envoy::extensions::transport_sockets::tls::v3::{
    CertificateValidationContext, common_tls_context, subject_alt_name_matcher::SanType,
};
use proto::pb::envoy::r#type::matcher::v3::{StringMatcher, string_matcher};

use proto::pb::envoy::config::core::v3::UpstreamHttpProtocolOptions;
use proto::pb::envoy::extensions::upstreams::http::v3::HttpProtocolOptions;

use super::tls::{CLUSTER, dns_san, mesh_secrets, upstream, upstream_tls, validation_context};
use super::{assert_rejected, pack};
use crate::model::cluster::{SanType as SanKind, SubjectAltName, Trust};
use crate::model::cluster_from_proto;
use crate::model::convert::cluster::HTTP_OPTIONS as HTTP_OPTIONS_KEY;
use crate::model::proto_fixtures::{mesh_context, sds};
use crate::model::route::StringMatch;
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
        [SubjectAltName::dns("edition.cnn.com")]
    );
    assert!(
        !tls.verify_server_name,
        "without auto_san_validation the SNI is not checked"
    );
    assert!(tls.client_cert.is_none());
    assert!(secret_names.is_empty());
}

#[test]
fn san_matchers_the_agent_cannot_verify_are_rejected() {
    let reject = |vc: CertificateValidationContext, field: &str, reason: &str| {
        let c = upstream(validation_context(vc));
        assert_rejected(
            cluster_from_proto(&c, &SecretSources::default()),
            "cluster",
            CLUSTER,
            field,
            reason,
        );
    };
    let mut unspecified = dns_san("a.example");
    unspecified.san_type = SanType::Unspecified as i32;
    reject(
        CertificateValidationContext {
            system_root_certs: Some(Default::default()),
            match_typed_subject_alt_names: vec![dns_san("ok.example"), unspecified],
            ..Default::default()
        },
        "transport_socket.common_tls_context.validation_context.match_typed_subject_alt_names[1].san_type",
        "SAN type SAN_TYPE_UNSPECIFIED cannot be verified; DNS, URI, EMAIL and IP_ADDRESS are supported",
    );
    reject(
        CertificateValidationContext {
            match_typed_subject_alt_names: vec![dns_san("ok.example")],
            ..Default::default()
        },
        "transport_socket.common_tls_context.validation_context.match_typed_subject_alt_names",
        "subject alt names cannot be verified without trusted_ca or system_root_certs",
    );
}

#[test]
fn any_string_matcher_is_kept_with_its_case_rule() {
    let mut suffix = dns_san("");
    suffix.matcher = Some(StringMatcher {
        match_pattern: Some(string_matcher::MatchPattern::Suffix(".example".into())),
        ignore_case: true,
    });
    let mut prefix = dns_san("");
    prefix.san_type = SanType::Uri as i32;
    prefix.matcher = Some(StringMatcher {
        match_pattern: Some(string_matcher::MatchPattern::Prefix("spiffe://td/".into())),
        ..Default::default()
    });
    let c = upstream(validation_context(CertificateValidationContext {
        system_root_certs: Some(Default::default()),
        match_typed_subject_alt_names: vec![suffix, prefix],
        ..Default::default()
    }));
    let (tls, _) = upstream_tls(&c, &SecretSources::default());
    assert_eq!(
        tls.subject_alt_names,
        [
            SubjectAltName {
                san_type: SanKind::Dns,
                pattern: StringMatch::Suffix(".example".into()),
                ignore_case: true,
            },
            SubjectAltName {
                san_type: SanKind::Uri,
                pattern: StringMatch::Prefix("spiffe://td/".into()),
                ignore_case: false,
            },
        ]
    );
}

#[test]
fn auto_sni_and_auto_san_validation_name_and_check_the_request_host() {
    let mut c = upstream(validation_context(CertificateValidationContext {
        system_root_certs: Some(Default::default()),
        ..Default::default()
    }));
    let options = HttpProtocolOptions {
        upstream_http_protocol_options: Some(UpstreamHttpProtocolOptions {
            auto_sni: true,
            auto_san_validation: true,
            ..Default::default()
        }),
        ..Default::default()
    };
    c.typed_extension_protocol_options.insert(
        HTTP_OPTIONS_KEY.into(),
        pack(
            "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            &options,
        ),
    );
    let (tls, _) = upstream_tls(&c, &SecretSources::default());
    assert!(tls.verify_server_name);
    assert!(tls.auto_sni);
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
        [SubjectAltName::uri(
            "spiffe://cluster.local/ns/istio-system/sa/istio-egressgateway-service-account"
        )]
    );
}

#[test]
fn a_bad_default_validation_context_is_rejected() {
    let mut common = mesh_context();
    let mut unspecified = dns_san("spiffe://cluster.local/");
    unspecified.san_type = SanType::Unspecified as i32;
    common.validation_context_type = Some(
        common_tls_context::ValidationContextType::CombinedValidationContext(
            common_tls_context::CombinedCertificateValidationContext {
                default_validation_context: Some(CertificateValidationContext {
                    match_typed_subject_alt_names: vec![unspecified],
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
        "transport_socket.common_tls_context.combined_validation_context.match_typed_subject_alt_names[0].san_type",
        "SAN type SAN_TYPE_UNSPECIFIED cannot be verified; DNS, URI, EMAIL and IP_ADDRESS are supported",
    );
}
