//! Where SDS references take their secrets from: over ADS from the control
//! plane, or, through the `sds-grpc` cluster, the agent's own identity
//! (`default` and `ROOTCA` only, never subscribed to over ADS); any other
//! source is rejected.

use std::sync::Arc;

use proto::pb::envoy::config::core::v3::{
    ApiConfigSource, ConfigSource, GrpcService, config_source, grpc_service,
};
use proto::pb::envoy::extensions::transport_sockets::tls::v3::DownstreamTlsContext;
use proto::wkt::BoolValue;

use super::tls::{
    downstream, downstream_tls, mesh_secret_map, mesh_secrets, upstream, upstream_tls,
};
use super::{assert_rejected, starting};
use crate::model::cluster::Trust;
use crate::model::cluster_from_proto;
use crate::model::proto_fixtures::{local_mesh_context, local_sds, sds};
use crate::model::secret::{SecretSources, Secrets};

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
