//! TLS origination: SNI, unknown issuers, SAN checks, ALPN for HTTP/2 and
//! client certificates.

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::CertificateError;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::model::cluster::{ClientCert, SubjectAltName, Trust, UpstreamTls};

use super::*;

/// A test CA that issues server certificates.
pub(super) struct TestCa {
    pub(super) cert: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

impl TestCa {
    pub(super) fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap().der().clone();
        Self {
            cert,
            issuer: Issuer::new(params, key),
        }
    }

    /// A certificate for `names` and its key.
    pub(super) fn issue(
        &self,
        names: &[&str],
    ) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
        let params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        self.issue_with(params)
    }

    /// A certificate with the subject alt name URI `uri` and its key, as
    /// a mesh workload has.
    pub(super) fn issue_spiffe(
        &self,
        uri: &str,
    ) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
        let mut params = CertificateParams::default();
        params.subject_alt_names = vec![rcgen::SanType::URI(uri.try_into().unwrap())];
        self.issue_with(params)
    }

    fn issue_with(
        &self,
        params: CertificateParams,
    ) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap().der().clone();
        (cert, PrivatePkcs8KeyDer::from(key.serialize_der()).into())
    }

    fn server_config(&self, names: &[&str], alpn: &[&[u8]]) -> Arc<rustls::ServerConfig> {
        Self::config_for(self.issue(names), alpn)
    }

    pub(super) fn config_for(
        (cert, key): (CertificateDer<'static>, PrivateKeyDer<'static>),
        alpn: &[&[u8]],
    ) -> Arc<rustls::ServerConfig> {
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }
}

pub(super) fn origination(sni: &str, trust: Trust) -> UpstreamTls {
    UpstreamTls {
        sni: sni.to_string(),
        auto_sni: false,
        trust,
        subject_alt_names: Vec::new(),
        client_cert: None,
        alpn: Vec::new(),
        verify_server_name: true,
    }
}

#[tokio::test]
async fn originates_tls_with_the_configured_sni() {
    let ca = TestCa::new("test CA");
    let server = TestServer::start(Some(ca.server_config(&["httpbin.test"], &[])), false).await;
    let tls = origination("httpbin.test", Trust::Roots(vec![ca.cert.to_vec()]));
    let upstreams = upstreams(vec![with_tls(static_cluster("tls", &[server.addr]), tls)]);

    let (status, seen, _) = fetch(&upstreams, "tls", "httpbin.test", None)
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert!(seen.starts_with("host=httpbin.test "), "{seen}");
    assert_eq!(*server.snis.lock(), vec![Some("httpbin.test".to_string())]);
    settle(&upstreams).await;
    fetch(&upstreams, "tls", "httpbin.test", None)
        .await
        .unwrap();
    assert_eq!(server.accepted(), 1, "TLS connections are pooled too");
}

#[tokio::test]
async fn an_unknown_issuer_fails_the_handshake() {
    let ca = TestCa::new("test CA");
    let other = TestCa::new("another CA");
    let server = TestServer::start(Some(ca.server_config(&["httpbin.test"], &[])), false).await;
    let tls = origination("httpbin.test", Trust::Roots(vec![other.cert.to_vec()]));
    let upstreams = upstreams(vec![with_tls(static_cluster("tls", &[server.addr]), tls)]);

    let err = fetch(&upstreams, "tls", "httpbin.test", None)
        .await
        .unwrap_err();
    let UpstreamError::Tls { addr, reason } = &err else {
        panic!("expected a TLS error, got {err}");
    };
    assert_eq!(*addr, server.addr);
    assert!(
        matches!(
            reason,
            TlsError::Handshake(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer
            ))
        ),
        "{reason:?}"
    );
    assert_eq!(
        err.transport_failure_reason(),
        "TLS_error:|268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:verify cert failed: X509_verify_cert: certificate verification error at depth 0: unable to get local issuer certificate:TLS_error_end"
    );
    assert_eq!(err.response_flag(), "UF");
    assert!(err.is_connect_failure());
}

#[tokio::test]
async fn the_sni_is_checked_only_under_auto_san_validation() {
    let ca = TestCa::new("test CA");
    let server = TestServer::start(Some(ca.server_config(&["httpbin.test"], &[])), false).await;
    let mut tls = origination("other.test", Trust::Roots(vec![ca.cert.to_vec()]));
    tls.verify_server_name = false;
    let chain_only = upstreams(vec![with_tls(
        static_cluster("tls", &[server.addr]),
        tls.clone(),
    )]);
    let (status, _, _) = fetch(&chain_only, "tls", "other.test", None).await.unwrap();
    assert_eq!(status, 200, "Envoy checks no name without SAN matchers");

    tls.verify_server_name = true;
    let auto_san = upstreams(vec![with_tls(static_cluster("tls", &[server.addr]), tls)]);
    let err = fetch(&auto_san, "tls", "other.test", None)
        .await
        .unwrap_err();
    assert_eq!(
        err.transport_failure_reason(),
        "TLS_error:|268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:verify cert failed: verify SAN list:TLS_error_end"
    );
}

#[tokio::test]
async fn subject_alt_names_replace_the_sni_check() {
    let ca = TestCa::new("test CA");
    let server = TestServer::start(Some(ca.server_config(&["egress.internal"], &[])), false).await;
    let mut tls = origination("httpbin.test", Trust::Roots(vec![ca.cert.to_vec()]));
    tls.subject_alt_names = vec![
        SubjectAltName::dns("nope.internal"),
        SubjectAltName::dns("egress.internal"),
    ];
    let matching = upstreams(vec![with_tls(
        static_cluster("tls", &[server.addr]),
        tls.clone(),
    )]);
    let (status, _, _) = fetch(&matching, "tls", "httpbin.test", None).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(*server.snis.lock(), vec![Some("httpbin.test".to_string())]);

    tls.subject_alt_names = vec![SubjectAltName::dns("nope.internal")];
    let mismatched = upstreams(vec![with_tls(static_cluster("tls", &[server.addr]), tls)]);
    let err = fetch(&mismatched, "tls", "httpbin.test", None)
        .await
        .unwrap_err();
    assert_eq!(
        err.transport_failure_reason(),
        "TLS_error:|268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:verify cert failed: SAN matcher, certificate SANs are [egress.internal]:TLS_error_end"
    );
}

#[tokio::test]
async fn spiffe_ids_are_matched_exactly() {
    let ca = TestCa::new("mesh CA");
    let gateway = "spiffe://cluster.local/ns/istio-system/sa/istio-egressgateway-service-account";
    let server = TestServer::start(
        Some(TestCa::config_for(ca.issue_spiffe(gateway), &[])),
        false,
    )
    .await;
    let mut tls = origination(
        "outbound_.80_._.istio-egressgateway.istio-system.svc.cluster.local",
        Trust::Roots(vec![ca.cert.to_vec()]),
    );
    tls.verify_server_name = false;
    tls.subject_alt_names = vec![SubjectAltName::uri(gateway)];
    let matching = upstreams(vec![with_tls(
        static_cluster("tls", &[server.addr]),
        tls.clone(),
    )]);
    let (status, _, _) = fetch(&matching, "tls", "httpbin.test", None).await.unwrap();
    assert_eq!(status, 200);

    tls.subject_alt_names = vec![SubjectAltName::uri(
        "spiffe://cluster.local/ns/default/sa/sleep",
    )];
    let impostor = upstreams(vec![with_tls(
        static_cluster("tls", &[server.addr]),
        tls.clone(),
    )]);
    let err = fetch(&impostor, "tls", "httpbin.test", None)
        .await
        .unwrap_err();
    let UpstreamError::Tls { reason, .. } = &err else {
        panic!("expected a TLS error, got {err}");
    };
    assert_eq!(
        super::super::tls_reason::transport_failure_reason(match reason {
            TlsError::Handshake(error) => error,
            other => panic!("expected a handshake error, got {other:?}"),
        }),
        format!(
            "TLS_error:|268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:verify cert failed: SAN matcher, certificate SANs are [{gateway}]:TLS_error_end"
        )
    );

    let other_ca = TestCa::new("another CA");
    tls.trust = Trust::Roots(vec![other_ca.cert.to_vec()]);
    tls.subject_alt_names = vec![SubjectAltName::uri(gateway)];
    let untrusted = upstreams(vec![with_tls(static_cluster("tls", &[server.addr]), tls)]);
    let err = fetch(&untrusted, "tls", "httpbin.test", None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            UpstreamError::Tls {
                reason: TlsError::Handshake(rustls::Error::InvalidCertificate(
                    CertificateError::UnknownIssuer
                )),
                ..
            }
        ),
        "the right SPIFFE id from the wrong CA is refused: {err}"
    );
}

#[tokio::test]
async fn without_sni_or_trust_anything_goes() {
    let ca = TestCa::new("test CA");
    let server = TestServer::start(Some(ca.server_config(&["httpbin.test"], &[])), false).await;
    // No validation context: nothing is verified, and no SNI is sent to an IP.
    let no_trust = upstreams(vec![with_tls(
        static_cluster("tls", &[server.addr]),
        origination("", Trust::None),
    )]);
    let (status, _, _) = fetch(&no_trust, "tls", "httpbin.test", None).await.unwrap();
    assert_eq!(status, 200);
    // Trusted roots but no SNI and no SANs: the chain alone is verified.
    let roots = origination("", Trust::Roots(vec![ca.cert.to_vec()]));
    let chain_only = upstreams(vec![with_tls(static_cluster("tls", &[server.addr]), roots)]);
    let (status, _, _) = fetch(&chain_only, "tls", "httpbin.test", None)
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(*server.snis.lock(), vec![None, None]);
}

#[tokio::test]
async fn alpn_h2_is_negotiated_for_http2_clusters() {
    let ca = TestCa::new("test CA");
    let server = TestServer::start(Some(ca.server_config(&["h2.test"], &[b"h2"])), true).await;
    let mut cluster = with_tls(
        static_cluster("h2", &[server.addr]),
        origination("h2.test", Trust::Roots(vec![ca.cert.to_vec()])),
    );
    cluster.http2 = true;
    let upstreams = upstreams(vec![cluster]);
    let (status, seen, _) = fetch(&upstreams, "h2", "h2.test", None).await.unwrap();
    assert_eq!(status, 200);
    assert!(
        seen.contains("authority=h2.test ") && seen.ends_with("HTTP/2.0"),
        "{seen}"
    );
}

#[tokio::test]
async fn a_client_certificate_is_presented() {
    let ca = TestCa::new("test CA");
    let (chain, key) = ca.issue(&["client.test"]);
    let mut tls = origination("httpbin.test", Trust::Roots(vec![ca.cert.to_vec()]));
    tls.client_cert = Some(ClientCert {
        chain: vec![chain.to_vec()],
        key: key.secret_der().to_vec(),
    });
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.cert.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let client_verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let (cert, server_key) = ca.issue(&["httpbin.test"]);
    let server_config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(client_verifier)
        .with_single_cert(vec![cert], server_key)
        .unwrap();
    let server = TestServer::start(Some(Arc::new(server_config)), false).await;

    let with_cert = upstreams(vec![with_tls(
        static_cluster("mtls", &[server.addr]),
        tls.clone(),
    )]);
    let (status, _, _) = fetch(&with_cert, "mtls", "httpbin.test", None)
        .await
        .unwrap();
    assert_eq!(status, 200);

    tls.client_cert = None;
    let without_cert = upstreams(vec![with_tls(static_cluster("mtls", &[server.addr]), tls)]);
    assert!(
        fetch(&without_cert, "mtls", "httpbin.test", None)
            .await
            .is_err()
    );
}
