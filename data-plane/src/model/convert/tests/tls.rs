//! TLS: origination for clusters, termination for filter chains, and every
//! way their material or validation can be rejected; the helpers the SDS
//! and subject alt name tests share.

use std::sync::Arc;

use proto::pb::envoy::config::cluster::v3::Cluster;
use proto::pb::envoy::config::core::v3::{DataSource, TransportSocket, data_source};
use proto::pb::envoy::config::listener::v3::{Filter, FilterChain, Listener, filter};
use proto::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, Rds, http_connection_manager,
};
use proto::pb::envoy::extensions::transport_sockets::tls::v3::{
    CertificateValidationContext, CommonTlsContext, DownstreamTlsContext, Secret as PbSecret,
    SubjectAltNameMatcher, TlsCertificate, UpstreamTlsContext, common_tls_context, secret,
    subject_alt_name_matcher::SanType,
};
use proto::pb::envoy::r#type::matcher::v3::{StringMatcher, string_matcher};
use proto::wkt::{Any, BoolValue};

use super::{
    assert_rejected, certificate_pem, inline, pack, socket_address, starting, transport_socket,
};
use crate::model::cluster::{Trust, UpstreamTls};
use crate::model::convert::listener::HCM;
use crate::model::convert::tls::{DOWNSTREAM_TLS, RAW_BUFFER, UPSTREAM_TLS};
use crate::model::listener::DownstreamTls;
use crate::model::secret::{SecretSources, Secrets};
use crate::model::{Error, cluster_from_proto, listener_from_proto, secret_from_proto};

pub(super) const CLUSTER: &str = "outbound|443||edition.cnn.com";
pub(super) const LISTENER: &str = "0.0.0.0_443";

pub(super) fn dns_san(name: &str) -> SubjectAltNameMatcher {
    SubjectAltNameMatcher {
        san_type: SanType::Dns as i32,
        matcher: Some(StringMatcher {
            match_pattern: Some(string_matcher::MatchPattern::Exact(name.to_string())),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub(super) fn validation_context(vc: CertificateValidationContext) -> CommonTlsContext {
    CommonTlsContext {
        validation_context_type: Some(
            common_tls_context::ValidationContextType::ValidationContext(vc),
        ),
        ..Default::default()
    }
}

fn cluster_with(socket: TransportSocket) -> Cluster {
    Cluster {
        name: CLUSTER.into(),
        transport_socket: Some(socket),
        ..Default::default()
    }
}

pub(super) fn upstream(common: CommonTlsContext) -> Cluster {
    cluster_with(transport_socket(
        UPSTREAM_TLS,
        &UpstreamTlsContext {
            common_tls_context: Some(common),
            sni: "edition.cnn.com".into(),
            ..Default::default()
        },
    ))
}

pub(super) fn upstream_tls(c: &Cluster, secrets: &SecretSources) -> (UpstreamTls, Vec<Arc<str>>) {
    let converted = cluster_from_proto(c, secrets).unwrap();
    let tls = converted.tls.expect("the cluster originates TLS");
    ((*tls).clone(), converted.secret_names)
}

/// A listener whose one HTTP chain terminates TLS with `ctx`.
pub(super) fn downstream(ctx: &DownstreamTlsContext) -> Listener {
    let hcm = HttpConnectionManager {
        route_specifier: Some(http_connection_manager::RouteSpecifier::Rds(Rds {
            route_config_name: "443".into(),
            ..Default::default()
        })),
        ..Default::default()
    };
    Listener {
        name: LISTENER.into(),
        address: Some(socket_address("0.0.0.0", 443)),
        filter_chains: vec![FilterChain {
            transport_socket: Some(transport_socket(DOWNSTREAM_TLS, ctx)),
            filters: vec![Filter {
                name: "envoy.filters.network.http_connection_manager".into(),
                config_type: Some(filter::ConfigType::TypedConfig(pack(HCM, &hcm))),
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

pub(super) fn downstream_tls(
    l: &Listener,
    secrets: &SecretSources,
) -> Result<DownstreamTls, Error> {
    let converted = listener_from_proto(l, secrets)?;
    Ok(converted.filter_chains[0]
        .tls
        .clone()
        .expect("the chain terminates TLS"))
}

/// The mesh secrets over ADS: `default` (a certificate and key) and `ROOTCA`.
pub(super) fn mesh_secrets() -> SecretSources {
    SecretSources {
        ads: mesh_secret_map(),
        local: Secrets::new(),
    }
}

pub(super) fn mesh_secret_map() -> Secrets {
    let (cert, key) = certificate_pem("workload");
    let mut secrets = Secrets::new();
    for proto in [
        certificate_secret("default", &cert, &key),
        roots_secret("ROOTCA", &cert),
    ] {
        let (name, secret) = secret_from_proto(&proto).unwrap();
        secrets.insert(name, Arc::new(secret));
    }
    secrets
}

pub(super) fn certificate_secret(name: &str, cert: &str, key: &str) -> PbSecret {
    PbSecret {
        name: name.to_string(),
        r#type: Some(secret::Type::TlsCertificate(TlsCertificate {
            certificate_chain: Some(inline(cert)),
            private_key: Some(inline(key)),
            ..Default::default()
        })),
    }
}

pub(super) fn roots_secret(name: &str, roots: &str) -> PbSecret {
    PbSecret {
        name: name.to_string(),
        r#type: Some(secret::Type::ValidationContext(
            CertificateValidationContext {
                trusted_ca: Some(inline(roots)),
                ..Default::default()
            },
        )),
    }
}

#[test]
fn without_a_validation_context_nothing_is_verified() {
    let (tls, _) = upstream_tls(
        &upstream(CommonTlsContext::default()),
        &SecretSources::default(),
    );
    assert_eq!(tls.trust, Trust::None);
}

#[test]
fn mutual_tls_reads_the_inline_certificate_and_roots() {
    let (cert, key) = certificate_pem("client");
    let mut common = validation_context(CertificateValidationContext {
        trusted_ca: Some(inline(&cert)),
        ..Default::default()
    });
    common.tls_certificates = vec![TlsCertificate {
        certificate_chain: Some(inline(&cert)),
        private_key: Some(inline(&key)),
        ..Default::default()
    }];
    common.alpn_protocols = vec!["http/1.1".into()];
    let (tls, _) = upstream_tls(&upstream(common), &SecretSources::default());
    assert!(matches!(&tls.trust, Trust::Roots(roots) if roots.len() == 1));
    assert_eq!(tls.client_cert.unwrap().chain.len(), 1);
    assert_eq!(tls.alpn, ["http/1.1"]);
}

#[test]
fn termination_offers_the_listed_alpn_protocols() {
    let (cert, key) = certificate_pem("gateway");
    let mut common = CommonTlsContext {
        tls_certificates: vec![TlsCertificate {
            certificate_chain: Some(inline(&cert)),
            private_key: Some(inline(&key)),
            ..Default::default()
        }],
        ..Default::default()
    };
    common.alpn_protocols = vec!["h2".into(), "http/1.1".into()];
    let ctx = DownstreamTlsContext {
        common_tls_context: Some(common.clone()),
        ..Default::default()
    };
    let tls = downstream_tls(&downstream(&ctx), &SecretSources::default()).unwrap();
    assert_eq!(tls.alpn, ["h2", "http/1.1"]);
    let config = tls.server_config.expect("the certificate is there");
    assert_eq!(
        config.alpn_protocols,
        [b"h2".to_vec(), b"http/1.1".to_vec()]
    );

    common.alpn_protocols = vec!["h2".into(), String::new()];
    let ctx = DownstreamTlsContext {
        common_tls_context: Some(common),
        ..Default::default()
    };
    assert_rejected(
        downstream_tls(&downstream(&ctx), &SecretSources::default()),
        "listener",
        LISTENER,
        "filter_chains[0].transport_socket.common_tls_context.alpn_protocols",
        starting("invalid ALPN protocol \"\": "),
    );
}

#[test]
fn raw_buffer_is_plaintext() {
    let c = cluster_with(transport_socket(RAW_BUFFER, &proto::wkt::Empty {}));
    assert!(
        cluster_from_proto(&c, &SecretSources::default())
            .unwrap()
            .tls
            .is_none()
    );
}

#[test]
fn an_unknown_transport_socket_is_rejected() {
    let other = cluster_with(TransportSocket {
        name: "envoy.transport_sockets.alts".into(),
        config_type: Some(
            proto::pb::envoy::config::core::v3::transport_socket::ConfigType::TypedConfig(pack(
                "type.googleapis.com/envoy.extensions.transport_sockets.alts.v3.Alts",
                &proto::wkt::Empty {},
            )),
        ),
    });
    assert_rejected(
        cluster_from_proto(&other, &SecretSources::default()),
        "cluster",
        CLUSTER,
        "transport_socket",
        "unsupported transport socket envoy.transport_sockets.alts",
    );
    let untyped = cluster_with(TransportSocket {
        name: "envoy.transport_sockets.tls".into(),
        config_type: None,
    });
    assert_rejected(
        cluster_from_proto(&untyped, &SecretSources::default()),
        "cluster",
        CLUSTER,
        "transport_socket",
        "unsupported transport socket envoy.transport_sockets.tls",
    );
}

#[test]
fn a_tls_context_that_does_not_decode_is_rejected() {
    let garbage = |type_url: &str| TransportSocket {
        name: "envoy.transport_sockets.tls".into(),
        config_type: Some(
            proto::pb::envoy::config::core::v3::transport_socket::ConfigType::TypedConfig(Any {
                type_url: type_url.to_string(),
                value: vec![0xff, 0xff],
            }),
        ),
    };
    assert_rejected(
        cluster_from_proto(
            &cluster_with(garbage(UPSTREAM_TLS)),
            &SecretSources::default(),
        ),
        "cluster",
        CLUSTER,
        "transport_socket",
        starting(&format!("cannot decode {UPSTREAM_TLS}: ")),
    );
    let mut l = downstream(&DownstreamTlsContext::default());
    l.filter_chains[0].transport_socket = Some(garbage(DOWNSTREAM_TLS));
    assert_rejected(
        listener_from_proto(&l, &SecretSources::default()),
        "listener",
        LISTENER,
        "filter_chains[0].transport_socket",
        starting(&format!("cannot decode {DOWNSTREAM_TLS}: ")),
    );
}

/// The rejection of a cluster whose context has `cert` as its one
/// `tls_certificates`, for `reason`.
#[track_caller]
fn assert_certificate_rejected(cert: TlsCertificate, reason: &str) {
    let c = upstream(CommonTlsContext {
        tls_certificates: vec![cert],
        ..Default::default()
    });
    assert_rejected(
        cluster_from_proto(&c, &SecretSources::default()),
        "cluster",
        CLUSTER,
        "transport_socket.common_tls_context.tls_certificates[0]",
        starting(reason),
    );
}

fn source(specifier: data_source::Specifier) -> Option<DataSource> {
    Some(DataSource {
        specifier: Some(specifier),
        ..Default::default()
    })
}

#[test]
fn every_way_a_certificate_cannot_be_read_is_rejected() {
    let (cert, key) = certificate_pem("client");
    let pair = |chain: Option<DataSource>, key: Option<DataSource>| TlsCertificate {
        certificate_chain: chain,
        private_key: key,
        ..Default::default()
    };
    assert_certificate_rejected(
        pair(None, Some(inline(&key))),
        "certificate_chain is required",
    );
    assert_certificate_rejected(pair(Some(inline(&cert)), None), "private_key is required");
    assert_certificate_rejected(
        pair(
            source(data_source::Specifier::Filename(
                "/nonexistent/cert.pem".into(),
            )),
            Some(inline(&key)),
        ),
        "cannot read /nonexistent/cert.pem: ",
    );
    assert_certificate_rejected(
        pair(
            source(data_source::Specifier::EnvironmentVariable(
                "DATA_PLANE_TEST_UNSET_VARIABLE".into(),
            )),
            Some(inline(&key)),
        ),
        "environment variable DATA_PLANE_TEST_UNSET_VARIABLE is not set",
    );
    assert_certificate_rejected(
        pair(Some(DataSource::default()), Some(inline(&key))),
        "empty data source",
    );
    assert_certificate_rejected(
        pair(Some(inline("not a certificate")), Some(inline(&key))),
        "certificate_chain: no PEM certificate found",
    );
    assert_certificate_rejected(
        pair(
            Some(inline(
                "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
            )),
            Some(inline(&key)),
        ),
        "certificate_chain: invalid PEM: ",
    );
    assert_certificate_rejected(
        pair(Some(inline(&cert)), Some(inline(&cert))),
        "private_key: no PEM private key found",
    );
}

#[test]
fn unreadable_trusted_roots_are_rejected() {
    let c = upstream(validation_context(CertificateValidationContext {
        trusted_ca: Some(inline("no roots here")),
        ..Default::default()
    }));
    assert_rejected(
        cluster_from_proto(&c, &SecretSources::default()),
        "cluster",
        CLUSTER,
        "transport_socket.common_tls_context.validation_context",
        "no PEM certificate found",
    );
}

#[test]
fn a_certificate_provider_validation_context_is_rejected() {
    // Read from JSON: the proto marks the certificate provider fields
    // deprecated.
    let common: CommonTlsContext = proto::from_json(
        "envoy.extensions.transport_sockets.tls.v3.CommonTlsContext",
        &serde_json::json!({ "validationContextCertificateProviderInstance": {} }),
    )
    .unwrap();
    assert_rejected(
        cluster_from_proto(&upstream(common), &SecretSources::default()),
        "cluster",
        CLUSTER,
        "transport_socket.common_tls_context.validation_context_type",
        "this kind of validation context is not supported",
    );
}

#[test]
fn client_verification_the_agent_cannot_do_is_rejected() {
    let with_validation = |vc: CertificateValidationContext| DownstreamTlsContext {
        common_tls_context: Some(validation_context(vc)),
        ..Default::default()
    };
    let sans = with_validation(CertificateValidationContext {
        match_typed_subject_alt_names: vec![dns_san("client.example")],
        ..Default::default()
    });
    assert_rejected(
        downstream_tls(&downstream(&sans), &SecretSources::default()),
        "listener",
        LISTENER,
        "filter_chains[0].transport_socket.common_tls_context",
        "verifying the subject alt names of client certificates is not supported",
    );
    let system = with_validation(CertificateValidationContext {
        system_root_certs: Some(Default::default()),
        ..Default::default()
    });
    assert_rejected(
        downstream_tls(&downstream(&system), &SecretSources::default()),
        "listener",
        LISTENER,
        "filter_chains[0].transport_socket.common_tls_context.validation_context.system_root_certs",
        "verifying clients against the system roots is not supported",
    );
}

#[test]
fn requiring_client_certificates_without_trusted_cas_is_rejected() {
    let (cert, key) = certificate_pem("gateway");
    let ctx = DownstreamTlsContext {
        common_tls_context: Some(CommonTlsContext {
            tls_certificates: vec![TlsCertificate {
                certificate_chain: Some(inline(&cert)),
                private_key: Some(inline(&key)),
                ..Default::default()
            }],
            ..Default::default()
        }),
        require_client_certificate: Some(BoolValue { value: true }),
        ..Default::default()
    };
    assert_rejected(
        downstream_tls(&downstream(&ctx), &SecretSources::default()),
        "listener",
        LISTENER,
        "filter_chains[0].transport_socket.common_tls_context",
        starting("require_client_certificate needs a validation context with trusted CAs"),
    );
    // Without the requirement, the same context serves clients without
    // certificates, as Envoy does.
    let optional = DownstreamTlsContext {
        require_client_certificate: Some(BoolValue { value: false }),
        ..ctx
    };
    let tls = downstream_tls(&downstream(&optional), &SecretSources::default())
        .expect("a server that does not require client certificates");
    assert!(!tls.require_client_certificate);
    assert!(tls.server_config.is_some());
}

#[test]
fn material_rustls_cannot_load_rejects_the_listener() {
    let (cert, key) = certificate_pem("gateway");
    let garbage_der = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    let terminate = |roots: &str, key: &str| {
        let mut common = validation_context(CertificateValidationContext {
            trusted_ca: Some(inline(roots)),
            ..Default::default()
        });
        common.tls_certificates = vec![TlsCertificate {
            certificate_chain: Some(inline(&cert)),
            private_key: Some(inline(key)),
            ..Default::default()
        }];
        downstream(&DownstreamTlsContext {
            common_tls_context: Some(common),
            ..Default::default()
        })
    };
    assert_rejected(
        downstream_tls(&terminate(garbage_der, &key), &SecretSources::default()),
        "listener",
        LISTENER,
        "filter_chains[0].transport_socket.common_tls_context",
        starting("invalid trusted CA certificate: "),
    );
    let garbage_key = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
    assert_rejected(
        downstream_tls(&terminate(&cert, garbage_key), &SecretSources::default()),
        "listener",
        LISTENER,
        "filter_chains[0].transport_socket.common_tls_context",
        starting("private key: "),
    );
}
