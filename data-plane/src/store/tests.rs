//! The config store: SDS references resolved when the secrets arrive, the
//! agent's own identity and its rotation, every rejected resource reported
//! on one line, wrong and unknown types, and a bad secret that leaves the
//! old config in place.

use super::*;
use proto::pack;
use proto::pb::envoy::config::cluster::v3::cluster::{ClusterDiscoveryType, DiscoveryType};
use proto::pb::envoy::extensions::transport_sockets::tls::v3::{
    CertificateValidationContext, TlsCertificate, UpstreamTlsContext, secret,
};

use std::time::Duration;

use proto::pb::envoy::config::listener::v3::{Filter, FilterChain, filter};
use proto::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, Rds, http_connection_manager,
};
use proto::pb::envoy::extensions::transport_sockets::tls::v3::{
    CommonTlsContext, DownstreamTlsContext,
};
use proto::wkt::BoolValue;

use crate::identity::SpiffeId;
use crate::model::cluster::Trust;
use crate::model::proto_fixtures::{
    certificate_pem, inline, local_mesh_context, mesh_context, transport_socket,
};
use crate::testing::fake_ca::TestCa;

fn mesh_mtls_cluster() -> Any {
    mtls_cluster(mesh_context())
}

fn mtls_cluster(common: CommonTlsContext) -> Any {
    let tls = UpstreamTlsContext {
        common_tls_context: Some(common),
        sni: "outbound_.80_.cnn_.istio-egressgateway.istio-system.svc.cluster.local".into(),
        ..Default::default()
    };
    let cluster = PbCluster {
        name: "outbound|80|cnn|istio-egressgateway.istio-system.svc.cluster.local".into(),
        cluster_discovery_type: Some(ClusterDiscoveryType::Type(DiscoveryType::Static as i32)),
        transport_socket: Some(transport_socket(
            "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
            &tls,
        )),
        ..Default::default()
    };
    pack(type_url::CLUSTER, &cluster)
}

fn secrets() -> Vec<Any> {
    let (cert, key) = certificate_pem("workload");
    let default = PbSecret {
        name: "default".into(),
        r#type: Some(secret::Type::TlsCertificate(TlsCertificate {
            certificate_chain: Some(inline(&cert)),
            private_key: Some(inline(&key)),
            ..Default::default()
        })),
    };
    let root = PbSecret {
        name: "ROOTCA".into(),
        r#type: Some(secret::Type::ValidationContext(
            CertificateValidationContext {
                trusted_ca: Some(inline(&cert)),
                ..Default::default()
            },
        )),
    };
    vec![
        pack(type_url::SECRET, &default),
        pack(type_url::SECRET, &root),
    ]
}

#[test]
fn sds_references_resolve_when_the_secrets_arrive() {
    let store = ConfigStore::new(Box::new(|_| Ok(())));
    store
        .update(type_url::CLUSTER, &[mesh_mtls_cluster()])
        .unwrap();
    assert_eq!(
        store.wanted_names(type_url::SECRET),
        Some(vec!["ROOTCA".to_string(), "default".to_string()])
    );
    let tls = |store: &ConfigStore| {
        store
            .load()
            .clusters
            .values()
            .next()
            .unwrap()
            .tls
            .clone()
            .unwrap()
    };
    assert!(
        tls(&store).client_cert.is_none(),
        "no certificate before SDS"
    );
    assert!(
        !tls(&store).verify_server_name,
        "mesh certificates are verified by chain"
    );

    store.update(type_url::SECRET, &secrets()).unwrap();
    let resolved = tls(&store);
    assert!(resolved.client_cert.is_some());
    assert!(matches!(&resolved.trust, Trust::Roots(roots) if roots.len() == 1));
}

#[test]
fn every_rejected_resource_is_reported_on_one_line() {
    use proto::pb::envoy::config::cluster::v3::cluster::LbPolicy;
    let store = ConfigStore::new(Box::new(|_| Ok(())));
    let unsupported = |name: &str| {
        let cluster = PbCluster {
            name: name.into(),
            lb_policy: LbPolicy::LoadBalancingPolicyConfig as i32,
            ..Default::default()
        };
        pack(type_url::CLUSTER, &cluster)
    };
    let error = store
        .update(
            type_url::CLUSTER,
            &[unsupported("a"), mesh_mtls_cluster(), unsupported("b")],
        )
        .unwrap_err();
    let reason = "only ROUND_ROBIN, LEAST_REQUEST, RANDOM, RING_HASH, MAGLEV and CLUSTER_PROVIDED are supported";
    assert_eq!(
        error.to_string(),
        format!("cluster \"a\": lb_policy: {reason}; cluster \"b\": lb_policy: {reason}")
    );
    assert!(store.load().clusters.is_empty(), "all or nothing");
}

#[test]
fn a_resource_of_the_wrong_type_and_an_unknown_type_are_rejected() {
    let store = ConfigStore::new(Box::new(|_| Ok(())));
    let error = store
        .update(type_url::LISTENER, &[mesh_mtls_cluster()])
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "resource of type {} in a {} response",
            type_url::CLUSTER,
            type_url::LISTENER
        )
    );
    let runtime = "type.googleapis.com/envoy.service.runtime.v3.Runtime";
    let error = store.update(runtime, &[]).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("resource type {runtime} is not supported by this agent")
    );
}

#[test]
fn a_bad_secret_is_rejected_and_the_old_config_stays() {
    let store = ConfigStore::new(Box::new(|_| Ok(())));
    store
        .update(type_url::CLUSTER, &[mesh_mtls_cluster()])
        .unwrap();
    let bad = PbSecret {
        name: "default".into(),
        r#type: Some(secret::Type::TlsCertificate(TlsCertificate {
            certificate_chain: Some(inline("not a certificate")),
            private_key: Some(inline("not a key")),
            ..Default::default()
        })),
    };
    let error = store
        .update(type_url::SECRET, &[pack(type_url::SECRET, &bad)])
        .unwrap_err();
    let ApplyError::Invalid(errors) = error else {
        panic!("expected the secret to be invalid, got {error}");
    };
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].kind, "secret");
    assert_eq!(errors[0].name, "default");
    assert_eq!(errors[0].field, "tls_certificate");
    assert!(store.load().secrets.ads.is_empty());
}

/// A gateway listener terminating mutual TLS with the local identity.
fn mtls_gateway_listener() -> Any {
    let tls = DownstreamTlsContext {
        common_tls_context: Some(local_mesh_context()),
        require_client_certificate: Some(BoolValue { value: true }),
        ..Default::default()
    };
    let hcm = HttpConnectionManager {
        route_specifier: Some(http_connection_manager::RouteSpecifier::Rds(Rds {
            route_config_name: "https.443.gateway".into(),
            ..Default::default()
        })),
        ..Default::default()
    };
    let listener = PbListener {
        name: "0.0.0.0_15443".into(),
        address: Some(proto::pb::envoy::config::core::v3::Address {
            address: Some(proto::pb::envoy::config::core::v3::address::Address::SocketAddress(
                proto::pb::envoy::config::core::v3::SocketAddress {
                    address: "0.0.0.0".into(),
                    port_specifier: Some(
                        proto::pb::envoy::config::core::v3::socket_address::PortSpecifier::PortValue(15443),
                    ),
                    ..Default::default()
                },
            )),
        }),
        filter_chains: vec![FilterChain {
            transport_socket: Some(transport_socket(
                "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
                &tls,
            )),
            filters: vec![Filter {
                name: "envoy.filters.network.http_connection_manager".into(),
                config_type: Some(filter::ConfigType::TypedConfig(pack(
                    "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                    &hcm,
                ))),
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    pack(type_url::LISTENER, &listener)
}

fn sleep_id() -> SpiffeId {
    SpiffeId {
        trust_domain: "cluster.local".into(),
        namespace: "default".into(),
        service_account: "sleep".into(),
    }
}

#[test]
fn the_local_identity_is_used_and_each_rotation_rebuilds_its_users() {
    let ca = TestCa::default();
    let store = ConfigStore::new(Box::new(|_| Ok(())));
    store
        .update(type_url::CLUSTER, &[mtls_cluster(local_mesh_context())])
        .unwrap();
    store
        .update(type_url::LISTENER, &[mtls_gateway_listener()])
        .unwrap();
    assert_eq!(
        store.wanted_names(type_url::SECRET),
        Some(Vec::new()),
        "the local identity is not asked of the control plane"
    );
    let client_cert = |config: &RunningConfig| {
        config
            .clusters
            .values()
            .next()
            .unwrap()
            .tls
            .as_ref()
            .unwrap()
            .client_cert
            .clone()
    };
    let server_config = |config: &RunningConfig| {
        config.listeners.values().next().unwrap().filter_chains[0]
            .tls
            .as_ref()
            .unwrap()
            .server_config
            .clone()
    };
    assert!(client_cert(&store.load()).is_none());
    assert!(server_config(&store.load()).is_none());

    let first = ca.workload_certificate(&sleep_id(), Duration::from_secs(3600));
    store.set_identity(&first).unwrap();
    let before = store.load();
    assert_eq!(
        client_cert(&before).unwrap().chain,
        first.chain_der(),
        "the cluster presents the proxy's certificate"
    );
    assert!(
        server_config(&before).is_some(),
        "the gateway accepts handshakes"
    );

    let second = ca.workload_certificate(&sleep_id(), Duration::from_secs(3600));
    store.set_identity(&second).unwrap();
    let after = store.load();
    assert_eq!(client_cert(&after).unwrap().chain, second.chain_der());
    assert!(!Arc::ptr_eq(
        &server_config(&before).unwrap(),
        &server_config(&after).unwrap()
    ));
    assert_eq!(
        client_cert(&before).unwrap().chain,
        first.chain_der(),
        "connections that loaded the old config keep its certificate"
    );
}

#[test]
fn a_new_identity_keeps_the_secrets_sent_over_ads() {
    let store = ConfigStore::new(Box::new(|_| Ok(())));
    store
        .update(type_url::CLUSTER, &[mesh_mtls_cluster()])
        .unwrap();
    store.update(type_url::SECRET, &secrets()).unwrap();
    let certificate = TestCa::default().workload_certificate(&sleep_id(), Duration::from_secs(60));
    store.set_identity(&certificate).unwrap();
    let config = store.load();
    assert_eq!(config.secrets.ads.len(), 2);
    assert_eq!(config.secrets.local.len(), 2);
    assert!(
        config
            .clusters
            .values()
            .next()
            .unwrap()
            .tls
            .as_ref()
            .unwrap()
            .client_cert
            .is_some(),
        "references over ADS still resolve"
    );
}
