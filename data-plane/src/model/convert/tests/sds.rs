//! SDS: secrets as the control plane sends them, the references TLS
//! contexts make to them, and where each reference takes its secret from:
//! over ADS from the control plane, or, through the `sds-grpc` cluster, the
//! agent's own identity (`default` and `ROOTCA` only, never subscribed to
//! over ADS); any other source is rejected.

use std::sync::Arc;

use proto::pb::envoy::config::core::v3::{
    ApiConfigSource, ConfigSource, GrpcService, api_config_source::ApiType, config_source,
    grpc_service,
};
use proto::pb::envoy::extensions::transport_sockets::tls::v3::{
    CertificateValidationContext, DownstreamTlsContext, Secret as PbSecret, common_tls_context,
    secret,
};
use proto::wkt::BoolValue;

use super::tls::{
    CLUSTER, certificate_secret, dns_san, downstream, downstream_tls, mesh_secret_map,
    mesh_secrets, roots_secret, upstream, upstream_tls,
};
use super::{assert_rejected, certificate_pem, inline, starting};
use crate::model::cluster::{SubjectAltName, Trust};
use crate::model::proto_fixtures::{local_mesh_context, local_sds, mesh_context, sds};
use crate::model::secret::{Secret, SecretSources, Secrets};
use crate::model::{cluster_from_proto, secret_from_proto};

/// The proxy's own identity, and nothing over ADS.
fn local_secrets() -> SecretSources {
    SecretSources {
        ads: Secrets::new(),
        local: mesh_secret_map(),
    }
}

#[test]
fn sds_grpc_references_resolve_to_the_local_identity_and_are_not_subscribed() {
    let c = upstream(local_mesh_context());
    let (before, names) = upstream_tls(&c, &SecretSources::default());
    assert!(names.is_empty(), "nothing to ask the control plane for");
    assert!(
        before.client_cert.is_none(),
        "no certificate before the first one is issued"
    );

    let (after, names) = upstream_tls(&c, &local_secrets());
    assert!(names.is_empty());
    assert!(after.client_cert.is_some());
    assert!(matches!(&after.trust, Trust::Roots(roots) if roots.len() == 1));
    assert!(
        !after.verify_server_name,
        "SPIFFE certificates carry no DNS names"
    );

    let (ads_only, _) = upstream_tls(&c, &mesh_secrets());
    assert!(
        ads_only.client_cert.is_none(),
        "secrets sent over ADS do not stand in for the local identity"
    );
}

#[test]
fn a_gateway_terminates_mesh_tls_with_the_local_identity() {
    let ctx = DownstreamTlsContext {
        common_tls_context: Some(local_mesh_context()),
        require_client_certificate: Some(BoolValue { value: true }),
        ..Default::default()
    };
    let l = downstream(&ctx);
    let before = downstream_tls(&l, &SecretSources::default()).unwrap();
    assert!(before.secret_names.is_empty());
    assert!(
        before.server_config.is_none(),
        "connections are reset until the certificate is issued"
    );
    let after = downstream_tls(&l, &local_secrets()).unwrap();
    assert!(after.server_config.is_some());
}

#[test]
fn ads_and_local_references_mix() {
    let mut common = local_mesh_context();
    common.tls_certificate_sds_secret_configs = vec![sds("kubernetes://client-cert")];
    let (_, names) = upstream_tls(&upstream(common), &local_secrets());
    assert_eq!(names, [Arc::from("kubernetes://client-cert")]);
}

#[test]
fn sds_grpc_serves_only_default_and_rootca() {
    let mut common = local_mesh_context();
    common.tls_certificate_sds_secret_configs = vec![local_sds("kubernetes://client-cert")];
    assert_rejected(
        cluster_from_proto(&upstream(common), &local_secrets()),
        "cluster",
        "outbound|443||edition.cnn.com",
        "transport_socket.common_tls_context.tls_certificate_sds_secret_configs[0].name",
        "\"sds-grpc\" serves only \"default\" and \"ROOTCA\" (the proxy's own certificate and roots), not \"kubernetes://client-cert\"",
    );
}

#[test]
fn other_secret_sources_are_rejected() {
    let mut other_cluster = local_sds("default");
    let Some(ConfigSource {
        config_source_specifier: Some(config_source::ConfigSourceSpecifier::ApiConfigSource(api)),
        ..
    }) = other_cluster.sds_config.as_mut()
    else {
        unreachable!("local_sds names an API config source");
    };
    *api = ApiConfigSource {
        grpc_services: vec![GrpcService {
            target_specifier: Some(grpc_service::TargetSpecifier::EnvoyGrpc(
                grpc_service::EnvoyGrpc {
                    cluster_name: "vault-sds".to_string(),
                    ..Default::default()
                },
            )),
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut common = local_mesh_context();
    common.tls_certificate_sds_secret_configs = vec![other_cluster];
    assert_rejected(
        cluster_from_proto(&upstream(common), &local_secrets()),
        "cluster",
        "outbound|443||edition.cnn.com",
        "transport_socket.common_tls_context.tls_certificate_sds_secret_configs[0].sds_config",
        "secrets from cluster \"vault-sds\" are not supported; use ADS, or \"sds-grpc\" for the proxy's own certificate",
    );

    let mut no_source = local_mesh_context();
    no_source.tls_certificate_sds_secret_configs[0].sds_config = None;
    assert_rejected(
        cluster_from_proto(&upstream(no_source), &local_secrets()),
        "cluster",
        "outbound|443||edition.cnn.com",
        "transport_socket.common_tls_context.tls_certificate_sds_secret_configs[0].sds_config",
        starting("a secret source is required"),
    );
}

#[test]
fn sds_grpc_is_a_grpc_stream_state_of_the_world_or_delta() {
    let with_api_type = |api_type: ApiType| {
        let mut reference = local_sds("default");
        if let Some(ConfigSource {
            config_source_specifier:
                Some(config_source::ConfigSourceSpecifier::ApiConfigSource(api)),
            ..
        }) = reference.sds_config.as_mut()
        {
            api.api_type = api_type as i32;
        }
        let mut common = local_mesh_context();
        common.tls_certificate_sds_secret_configs = vec![reference];
        cluster_from_proto(&upstream(common), &local_secrets())
    };
    assert!(with_api_type(ApiType::Grpc).is_ok());
    assert!(with_api_type(ApiType::DeltaGrpc).is_ok());
    assert_rejected(
        with_api_type(ApiType::Rest),
        "cluster",
        "outbound|443||edition.cnn.com",
        "transport_socket.common_tls_context.tls_certificate_sds_secret_configs[0].sds_config.api_config_source.api_type",
        "REST is not supported for \"sds-grpc\": use GRPC or DELTA_GRPC, as istiod writes it",
    );
    assert!(with_api_type(ApiType::AggregatedGrpc).is_err());
}

#[test]
fn istio_mutual_refers_to_sds_and_verifies_the_chain_only() {
    let c = upstream(mesh_context());
    let (before, names) = upstream_tls(&c, &SecretSources::default());
    assert_eq!(names, [Arc::from("default"), Arc::from("ROOTCA")]);
    assert!(before.client_cert.is_none(), "no certificate before SDS");
    assert_eq!(
        before.trust,
        Trust::Roots(Vec::new()),
        "no roots before SDS"
    );
    assert!(
        !before.verify_server_name,
        "SPIFFE certificates carry no DNS names"
    );

    let (after, _) = upstream_tls(&c, &mesh_secrets());
    assert!(after.client_cert.is_some());
    assert!(matches!(&after.trust, Trust::Roots(roots) if roots.len() == 1));
}

#[test]
fn a_combined_validation_context_takes_roots_from_sds_and_sans_inline() {
    let mut common = mesh_context();
    common.validation_context_type = Some(
        common_tls_context::ValidationContextType::CombinedValidationContext(
            common_tls_context::CombinedCertificateValidationContext {
                default_validation_context: Some(CertificateValidationContext {
                    match_typed_subject_alt_names: vec![dns_san("egress.example")],
                    ..Default::default()
                }),
                validation_context_sds_secret_config: Some(sds("ROOTCA")),
                ..Default::default()
            },
        ),
    );
    let (tls, names) = upstream_tls(&upstream(common), &mesh_secrets());
    assert_eq!(
        tls.subject_alt_names,
        [SubjectAltName::dns("egress.example")]
    );
    assert!(matches!(&tls.trust, Trust::Roots(roots) if roots.len() == 1));
    assert!(names.contains(&Arc::from("ROOTCA")));
}

#[test]
fn a_gateway_terminates_mesh_tls_once_its_secrets_arrive() {
    let ctx = DownstreamTlsContext {
        common_tls_context: Some(mesh_context()),
        require_client_certificate: Some(BoolValue { value: true }),
        ..Default::default()
    };
    let l = downstream(&ctx);
    let before = downstream_tls(&l, &SecretSources::default()).unwrap();
    assert_eq!(
        before.secret_names,
        [Arc::from("default"), Arc::from("ROOTCA")]
    );
    assert!(before.require_client_certificate);
    assert!(
        before.server_config.is_none(),
        "connections are reset until SDS"
    );

    let after = downstream_tls(&l, &mesh_secrets()).unwrap();
    assert!(after.certificate.is_some());
    assert!(after.server_config.is_some());
}

#[test]
fn an_sds_reference_to_the_wrong_kind_of_secret_is_rejected() {
    let mut swapped = mesh_context();
    swapped.tls_certificate_sds_secret_configs = vec![sds("ROOTCA")];
    assert_rejected(
        cluster_from_proto(&upstream(swapped), &mesh_secrets()),
        "cluster",
        CLUSTER,
        "transport_socket.common_tls_context.tls_certificate_sds_secret_configs[0]",
        "secret \"ROOTCA\" is a validation context, not a certificate",
    );
    let mut swapped = mesh_context();
    swapped.validation_context_type = Some(
        common_tls_context::ValidationContextType::ValidationContextSdsSecretConfig(sds("default")),
    );
    assert_rejected(
        cluster_from_proto(&upstream(swapped), &mesh_secrets()),
        "cluster",
        CLUSTER,
        "transport_socket.common_tls_context.validation_context_sds_secret_config",
        "secret \"default\" is a certificate, not a validation context",
    );
}

#[test]
fn secrets_hold_a_certificate_or_roots() {
    let (cert, key) = certificate_pem("workload");
    let (name, secret) = secret_from_proto(&certificate_secret("default", &cert, &key)).unwrap();
    assert_eq!(&*name, "default");
    assert!(matches!(secret, Secret::Certificate(c) if c.chain.len() == 1));
    let (name, secret) = secret_from_proto(&roots_secret("ROOTCA", &cert)).unwrap();
    assert_eq!(&*name, "ROOTCA");
    assert!(matches!(secret, Secret::Validation(roots) if roots.len() == 1));
}

#[test]
fn every_way_a_secret_is_rejected() {
    let (cert, _) = certificate_pem("workload");
    assert_rejected(
        secret_from_proto(&certificate_secret("default", &cert, "no key")),
        "secret",
        "default",
        "tls_certificate",
        "private_key: no PEM private key found",
    );
    let validation = |vc: CertificateValidationContext| PbSecret {
        name: "ROOTCA".into(),
        r#type: Some(secret::Type::ValidationContext(vc)),
    };
    assert_rejected(
        secret_from_proto(&validation(CertificateValidationContext {
            system_root_certs: Some(Default::default()),
            ..Default::default()
        })),
        "secret",
        "ROOTCA",
        "validation_context.trusted_ca",
        "trusted_ca is required",
    );
    assert_rejected(
        secret_from_proto(&validation(CertificateValidationContext {
            trusted_ca: Some(inline(&cert)),
            match_typed_subject_alt_names: vec![dns_san("a.example")],
            ..Default::default()
        })),
        "secret",
        "ROOTCA",
        "validation_context.match_typed_subject_alt_names",
        "subject alt names are not supported in a secret; \
         match them in the TLS context that uses it",
    );
    assert_rejected(
        secret_from_proto(&PbSecret {
            name: "session".into(),
            r#type: None,
        }),
        "secret",
        "session",
        "type",
        "only tls_certificate and validation_context secrets are supported",
    );
}
