//! A filter chain that terminates TLS offers the ALPN protocols its context
//! lists, and serves HTTP/2 when the client negotiates h2, as Envoy does on
//! a gateway's HTTPS server; a client offering none of them still
//! completes the handshake, with no protocol selected.

use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::Empty;
use hyper::{Request, StatusCode, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::model::cluster::ClientCert;
use crate::model::listener::{ChainAction, DownstreamTls, FilterChain, HttpManager};
use crate::proxy::test_fixtures::empty_context;

use super::{Accepted, Destination, run_chain};

const SERVER_NAME: &str = "gateway.test";

/// An HTTPS chain terminating TLS with a self-signed certificate for
/// [`SERVER_NAME`], offering `alpn`; returns the chain and the certificate.
fn https_chain(alpn: &[&str]) -> (FilterChain, CertificateDer<'static>) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec![SERVER_NAME.to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let der = cert.der().clone();
    let tls = DownstreamTls::new(
        Some(ClientCert {
            chain: vec![der.to_vec()],
            key: key.serialize_der(),
        }),
        None,
        false,
        alpn.iter().map(|p| p.to_string()).collect(),
        Vec::new(),
    )
    .unwrap();
    let chain = FilterChain {
        name: "https".into(),
        destination_port: None,
        destination_prefixes: Vec::new(),
        tls: Some(tls),
        server_names: Vec::new(),
        action: ChainAction::Http(HttpManager {
            stat_prefix: "outbound_0.0.0.0_443".into(),
            route_config_name: "https.443.https.gateway.default".into(),
            inline_routes: None,
            file_access_logs: Arc::new([]),
            grpc_access_log: None,
            http_filters: Default::default(),
            use_remote_address: false,
            path_normalization: Default::default(),
            server_header: Default::default(),
            timeouts: crate::model::http_timeouts::HttpTimeouts::default(),
            suppress_envoy_headers: false,
            upgrades: Default::default(),
        }),
        egress_policy: None,
    };
    (chain, der)
}

/// Serves `chain` on 127.0.0.1 for one connection, with an empty config
/// (every request is answered 404, no route).
async fn serve_once(chain: FilterChain) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let context = empty_context(None);
    tokio::spawn(async move {
        let (stream, remote) = listener.accept().await.unwrap();
        let destination = Destination {
            port: addr.port(),
            original_dst: None,
            host: None,
        };
        let accepted = Accepted::new(remote, Some(addr), destination, None);
        run_chain(stream, &chain, accepted, context).await;
    });
    addr
}

/// A TLS client trusting `root` and offering `alpn`.
async fn connect(
    addr: SocketAddr,
    root: CertificateDer<'static>,
    alpn: &[&[u8]],
) -> TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root).unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = TcpStream::connect(addr).await.unwrap();
    TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from(SERVER_NAME).unwrap(), tcp)
        .await
        .unwrap()
}

fn get() -> Request<Empty<bytes::Bytes>> {
    Request::get(format!("https://{SERVER_NAME}/get"))
        .header(hyper::header::HOST, SERVER_NAME)
        .body(Empty::new())
        .unwrap()
}

#[tokio::test]
async fn a_client_offering_h2_gets_h2_and_is_served_http2() {
    let (chain, root) = https_chain(&["h2", "http/1.1"]);
    let addr = serve_once(chain).await;
    let tls = connect(addr, root, &[b"h2", b"http/1.1"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));

    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(connection);
    let response = sender.send_request(get()).await.unwrap();
    assert_eq!(response.version(), Version::HTTP_2);
    assert_eq!(
        response.status(),
        StatusCode::NOT_FOUND,
        "no route configured"
    );
}

#[tokio::test]
async fn a_client_offering_http11_only_gets_http11() {
    let (chain, root) = https_chain(&["h2", "http/1.1"]);
    let addr = serve_once(chain).await;
    let tls = connect(addr, root, &[b"http/1.1"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));

    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(connection);
    let response = sender.send_request(get()).await.unwrap();
    assert_eq!(response.version(), Version::HTTP_11);
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_context_without_alpn_negotiates_none() {
    let (chain, root) = https_chain(&[]);
    let addr = serve_once(chain).await;
    let tls = connect(addr, root, &[b"h2", b"http/1.1"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), None);
}

#[tokio::test]
async fn a_mesh_client_offering_only_istio_protocols_completes_without_alpn() {
    let (chain, root) = https_chain(&["h2", "http/1.1"]);
    let addr = serve_once(chain).await;
    let tls = connect(addr, root, &[b"istio-peer-exchange", b"istio"]).await;
    assert_eq!(
        tls.get_ref().1.alpn_protocol(),
        None,
        "no protocol overlaps: the handshake goes on with none selected, as Envoy's"
    );

    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(connection);
    let response = sender.send_request(get()).await.unwrap();
    assert_eq!(response.version(), Version::HTTP_11);
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[test]
fn a_captured_connection_logs_its_original_destination_as_envoy_does() {
    let listener: SocketAddr = "127.0.0.1:15001".parse().unwrap();
    let captured = Destination {
        port: 443,
        original_dst: Some("93.184.216.34:443".parse().unwrap()),
        host: None,
    };
    assert_eq!(
        captured.logged_local(Some(listener)),
        Some("93.184.216.34:443".parse().unwrap())
    );
    assert_eq!(captured.connect_target(), None);
}

#[test]
fn a_connect_logs_the_listener_address_and_its_target_as_authority() {
    let listener: SocketAddr = "127.0.0.1:15001".parse().unwrap();
    let connect = Destination {
        port: 443,
        original_dst: Some("93.184.216.34:443".parse().unwrap()),
        host: Some("api.example.com".into()),
    };
    assert_eq!(connect.logged_local(Some(listener)), Some(listener));
    assert_eq!(
        connect.connect_target().as_deref(),
        Some("api.example.com:443")
    );
    let v6 = Destination {
        port: 443,
        original_dst: None,
        host: Some("2001:db8::1".into()),
    };
    assert_eq!(v6.connect_target().as_deref(), Some("[2001:db8::1]:443"));
}
