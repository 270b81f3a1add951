//! Addresses, schemes, the root file and the token as the connection reads
//! them. Connections over TLS are tested with the identity, against the
//! fake CA.

use std::path::PathBuf;

use tonic::service::Interceptor;

use shared::identity::CONTROL_PLANE_SERVER_NAME;

use super::{BearerToken, ControlPlane, TlsSettings, read_token};
use crate::testing::fake_ca::TestCa;
use crate::xds::{Error, connect_hint, error_chain, refusal};

fn settings(dir: &tempfile::TempDir) -> TlsSettings {
    TlsSettings {
        ca_root: dir.path().join("root-cert.pem"),
        server_name: CONTROL_PLANE_SERVER_NAME.to_string(),
        token: dir.path().join("token"),
    }
}

#[test]
fn an_invalid_address_is_an_error() {
    let error = ControlPlane::plaintext("not a host:port").unwrap_err();
    assert!(error.to_string().contains("not a host:port"), "{error}");
}

#[test]
fn tls_refuses_an_http_url() {
    // tonic would connect without TLS to an http:// URL even with a TLS
    // configuration: the token would go out in the clear.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("root-cert.pem"),
        TestCa::default().root_pem(),
    )
    .unwrap();
    let error = ControlPlane::tls("http://127.0.0.1:15012", &settings(&dir)).unwrap_err();
    assert!(
        matches!(&error, Error::InvalidAddress { reason, .. } if reason.contains("--plaintext")),
        "{error}"
    );
    assert!(ControlPlane::tls("https://127.0.0.1:15012", &settings(&dir)).is_ok());
    assert!(ControlPlane::tls("127.0.0.1:15012", &settings(&dir)).is_ok());
}

#[test]
fn plaintext_refuses_an_https_url_and_sends_no_token() {
    assert!(ControlPlane::plaintext("https://127.0.0.1:15010").is_err());
    let plaintext = ControlPlane::plaintext("127.0.0.1:15010").unwrap();
    assert!(!plaintext.is_authenticated());
}

#[test]
fn the_root_file_must_hold_a_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let missing = ControlPlane::tls("127.0.0.1:15012", &settings(&dir)).unwrap_err();
    assert!(
        matches!(&missing, Error::CaRoot { path, .. } if path.ends_with("root-cert.pem")),
        "{missing}"
    );
    std::fs::write(dir.path().join("root-cert.pem"), "not PEM").unwrap();
    let empty = ControlPlane::tls("127.0.0.1:15012", &settings(&dir)).unwrap_err();
    assert!(
        empty.to_string().contains("no PEM certificate found"),
        "{empty}"
    );
}

#[tokio::test]
async fn the_token_becomes_a_bearer_header() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    std::fs::write(&path, "eyJhbGciOiJFUzI1NiJ9.e30.c2ln\n").unwrap();
    let header = read_token(&path).await.unwrap();
    let mut interceptor = BearerToken(Some(header));
    let request = interceptor.call(tonic::Request::new(())).unwrap();
    assert_eq!(
        request.metadata().get("authorization").unwrap(),
        "Bearer eyJhbGciOiJFUzI1NiJ9.e30.c2ln"
    );
    let (metadata, _, ()) = request.into_parts();
    assert!(
        metadata.into_headers()["authorization"].is_sensitive(),
        "HPACK never indexes the token"
    );
    let plain = BearerToken(None).call(tonic::Request::new(())).unwrap();
    assert!(plain.metadata().get("authorization").is_none());
}

#[tokio::test]
async fn token_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join("token");
    let missing = read_token(&path).await.unwrap_err();
    assert!(
        missing.to_string().contains(&path.display().to_string()),
        "{missing}"
    );
    std::fs::write(&path, " \n").unwrap();
    let empty = read_token(&path).await.unwrap_err();
    assert!(empty.to_string().contains("is empty"), "{empty}");
    std::fs::write(&path, "two words").unwrap();
    assert!(read_token(&path).await.is_err());
}

#[test]
fn refusals_keep_the_server_message_and_say_what_to_check() {
    let expired = refusal(&tonic::Status::unauthenticated(
        "expired_token: the token expired at 2026-01-01T00:00:00Z",
    ));
    assert!(
        expired.starts_with("Unauthenticated: expired_token"),
        "{expired}"
    );
    assert!(expired.contains("check --token"), "{expired}");
    let mismatch = refusal(&tonic::Status::permission_denied("node_mismatch: ..."));
    assert!(mismatch.contains("--service-account"), "{mismatch}");
    assert!(
        mismatch.contains("--trust-domain"),
        "the usual cause of a CSR identity mismatch: {mismatch}"
    );
    assert_eq!(
        refusal(&tonic::Status::unavailable("restarting")),
        "Unavailable: restarting"
    );
}

#[tokio::test]
async fn a_control_plane_not_listening_is_unreachable_not_untrusted() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = closed.local_addr().unwrap().to_string();
    drop(closed);
    let error = ControlPlane::plaintext(&address)
        .unwrap()
        .connect()
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("is it running and reachable?"),
        "{message}"
    );
    assert!(!message.contains("--ca-root"), "{message}");
}

#[test]
fn a_tls_failure_points_at_the_tls_flags() {
    let certificate = |error| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(error),
        )
    };
    let name = connect_hint(&certificate(rustls::CertificateError::NotValidForName));
    assert!(name.contains("--xds-server-name"), "{name}");
    let root = connect_hint(&certificate(rustls::CertificateError::UnknownIssuer));
    assert!(root.contains("--ca-root"), "{root}");
    let handshake = connect_hint(&std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType),
    ));
    assert!(handshake.contains("--plaintext"), "{handshake}");
    let refused = connect_hint(&std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
    assert_eq!(refused, "is it running and reachable?");
}

#[test]
fn error_chain_joins_sources_without_repeats() {
    #[derive(Debug, thiserror::Error)]
    #[error("{message}")]
    struct Layer {
        message: &'static str,
        source: Option<Box<Layer>>,
    }
    let layer = |message, source| Layer { message, source };
    let error = layer(
        "transport error",
        Some(Box::new(layer(
            "tcp connect error",
            Some(Box::new(layer(
                "tcp connect error",
                Some(Box::new(layer("refused", None))),
            ))),
        ))),
    );
    assert_eq!(
        error_chain(&error),
        "transport error: tcp connect error: refused"
    );
}
