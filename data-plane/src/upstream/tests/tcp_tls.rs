//! TLS origination on TCP proxying, as Envoy's TCP proxy does it through the
//! cluster's transport socket: ISTIO_MUTUAL to a gateway (SPIFFE SAN check,
//! the context's ALPN list as it is), and a failed handshake as UF; the
//! identities on an ISTIO_MUTUAL connection, for requests and TCP.

use std::net::SocketAddr;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::model::cluster::{ClientCert, SubjectAltName, Trust, UpstreamTls};

use super::super::{Principals, UpstreamStream};
use super::tls::{TestCa, origination};
use super::*;

const GATEWAY: &str =
    "spiffe://cluster.local/ns/istio-system/sa/istio-egressgateway-service-account";

/// What a TLS echo server saw of each handshake: SNI and negotiated ALPN.
#[derive(Debug, Default)]
struct Handshakes {
    snis: Vec<Option<String>>,
    alpns: Vec<Option<Vec<u8>>>,
}

/// A TLS server on 127.0.0.1 that echoes what it reads.
async fn tls_echo(config: Arc<rustls::ServerConfig>) -> (SocketAddr, Arc<Mutex<Handshakes>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Handshakes::default()));
    let handshakes = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (config, seen) = (config.clone(), seen.clone());
            tokio::spawn(async move {
                let Ok(mut stream) = TlsAcceptor::from(config).accept(tcp).await else {
                    return;
                };
                {
                    let connection = stream.get_ref().1;
                    let mut seen = seen.lock();
                    seen.snis.push(connection.server_name().map(str::to_string));
                    seen.alpns
                        .push(connection.alpn_protocol().map(<[u8]>::to_vec));
                }
                let mut buf = [0u8; 4];
                if stream.read_exact(&mut buf).await.is_ok() {
                    let _ = stream.write_all(&buf).await;
                    let _ = stream.shutdown().await;
                }
            });
        }
    });
    (addr, handshakes)
}

/// The transport socket istiod gives a sidecar's cluster to the egress
/// gateway with ISTIO_MUTUAL on a TCP port.
fn istio_mutual_to_gateway(ca: &TestCa, san: &str) -> UpstreamTls {
    let mut tls = origination(
        "outbound_.7777_.mongo_.istio-egressgateway.istio-system.svc.cluster.local",
        Trust::Roots(vec![ca.cert.to_vec()]),
    );
    tls.verify_server_name = false;
    tls.subject_alt_names = vec![SubjectAltName::uri(san)];
    tls.alpn = vec!["istio-peer-exchange".into(), "istio".into()];
    tls
}

async fn ping(stream: &mut (impl AsyncRead + AsyncWrite + Unpin)) -> [u8; 4] {
    stream.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    stream.read_exact(&mut buf).await.unwrap();
    buf
}

#[tokio::test]
async fn tcp_connections_originate_istio_mutual_tls_to_the_gateway() {
    let ca = TestCa::new("mesh CA");
    let server = TestCa::config_for(
        ca.issue_spiffe(GATEWAY),
        &[b"istio-peer-exchange", b"istio"],
    );
    let (addr, seen) = tls_echo(server).await;
    let upstreams = upstreams(vec![with_tls(
        static_cluster("gateway", &[addr]),
        istio_mutual_to_gateway(&ca, GATEWAY),
    )]);

    let (mut stream, used) = upstreams.connect_tcp("gateway", None).await.unwrap();
    assert_eq!(used, addr);
    assert!(matches!(stream.get_ref(), UpstreamStream::Tls(..)));
    assert_eq!(&ping(&mut stream).await, b"ping");
    let seen = seen.lock();
    assert_eq!(
        seen.snis,
        [Some(
            "outbound_.7777_.mongo_.istio-egressgateway.istio-system.svc.cluster.local".to_string()
        )]
    );
    assert_eq!(seen.alpns, [Some(b"istio-peer-exchange".to_vec())]);
}

#[tokio::test]
async fn tcp_proxying_offers_the_context_alpn_list_without_h2() {
    // An HTTP/2 cluster's pool offers h2 first; the TCP proxy offers only
    // what the transport socket lists, as Envoy's does.
    let ca = TestCa::new("mesh CA");
    let server = TestCa::config_for(ca.issue_spiffe(GATEWAY), &[b"h2", b"istio"]);
    let (addr, seen) = tls_echo(server).await;
    let mut cluster = with_tls(
        static_cluster("gateway", &[addr]),
        istio_mutual_to_gateway(&ca, GATEWAY),
    );
    cluster.http2 = true;
    let upstreams = upstreams(vec![cluster]);

    let (mut stream, _) = upstreams.connect_tcp("gateway", None).await.unwrap();
    assert_eq!(&ping(&mut stream).await, b"ping");
    assert_eq!(seen.lock().alpns, [Some(b"istio".to_vec())]);
}

#[tokio::test]
async fn a_gateway_with_another_identity_fails_the_tcp_handshake_as_uf() {
    let ca = TestCa::new("mesh CA");
    let impostor = "spiffe://cluster.local/ns/default/sa/sleep";
    let server = TestCa::config_for(ca.issue_spiffe(impostor), &[b"istio"]);
    let (addr, seen) = tls_echo(server).await;
    let upstreams = upstreams(vec![with_tls(
        static_cluster("gateway", &[addr]),
        istio_mutual_to_gateway(&ca, GATEWAY),
    )]);

    let err = upstreams.connect_tcp("gateway", None).await.unwrap_err();
    assert!(
        matches!(&err, UpstreamError::Tls { addr: a, .. } if *a == addr),
        "{err:?}"
    );
    assert_eq!(
        err.transport_failure_reason(),
        format!(
            "TLS_error:|268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:verify cert failed: SAN matcher, certificate SANs are [{impostor}]:TLS_error_end"
        )
    );
    assert_eq!(err.response_flag(), "UF");
    assert!(err.is_connect_failure());
    assert!(seen.lock().alpns.is_empty(), "no handshake completed");
    let status = &upstreams.describe()[0];
    assert_eq!(status.endpoints[0].cx_total, 1);
    assert_eq!(status.endpoints[0].cx_connect_fail, 1);
}

#[tokio::test]
async fn simple_origination_on_tcp_verifies_the_chain_not_the_sni() {
    let ca = TestCa::new("test CA");
    let server = TestCa::config_for(ca.issue(&["mongo.test"]), &[]);
    let (addr, seen) = tls_echo(server).await;
    let trust = Trust::Roots(vec![ca.cert.to_vec()]);
    let good = upstreams(vec![with_tls(
        static_cluster("mongo", &[addr]),
        origination("mongo.test", trust.clone()),
    )]);
    let (mut stream, _) = good.connect_tcp("mongo", None).await.unwrap();
    assert_eq!(&ping(&mut stream).await, b"ping");
    assert_eq!(seen.lock().snis, [Some("mongo.test".to_string())]);

    // auto_san_validation is an HTTP option: Envoy's TCP proxy checks the
    // chain alone when no SAN matcher is configured.
    let other_name = upstreams(vec![with_tls(
        static_cluster("mongo", &[addr]),
        origination("other.test", trust),
    )]);
    let (mut stream, _) = other_name.connect_tcp("mongo", None).await.unwrap();
    assert_eq!(&ping(&mut stream).await, b"ping");

    let other_ca = TestCa::new("another CA");
    let untrusted = upstreams(vec![with_tls(
        static_cluster("mongo", &[addr]),
        origination("mongo.test", Trust::Roots(vec![other_ca.cert.to_vec()])),
    )]);
    let err = untrusted.connect_tcp("mongo", None).await.unwrap_err();
    assert_eq!(
        err.transport_failure_reason(),
        "TLS_error:|268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:verify cert failed: X509_verify_cert: certificate verification error at depth 0: unable to get local issuer certificate:TLS_error_end"
    );
}

#[tokio::test]
async fn the_identities_on_the_connection_come_with_the_request_and_the_connection() {
    let ca = TestCa::new("mesh CA");
    let sleep = "spiffe://cluster.local/ns/default/sa/sleep";
    let (chain, key) = ca.issue_spiffe(sleep);
    let mut tls = istio_mutual_to_gateway(&ca, GATEWAY);
    tls.client_cert = Some(ClientCert {
        chain: vec![chain.to_vec()],
        key: key.secret_der().to_vec(),
    });
    let server = TestServer::start(
        Some(TestCa::config_for(ca.issue_spiffe(GATEWAY), &[])),
        false,
    )
    .await;
    let upstreams = upstreams(vec![with_tls(
        static_cluster("gateway", &[server.addr]),
        tls,
    )]);
    let expected = Principals {
        peer: Some(GATEWAY.to_string()),
        local: Some(Arc::from(sleep)),
    };
    let (status, _, info) = fetch(&upstreams, "gateway", "httpbin.test", None)
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(info.principals.as_deref(), Some(&expected));
    let (_, info) = upstreams
        .connect_tcp_hashed("gateway", None, None)
        .await
        .unwrap();
    assert_eq!(info.principals.as_deref(), Some(&expected));
}
