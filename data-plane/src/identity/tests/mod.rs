//! The identity against the fake CA of [`crate::testing::fake_ca`] over
//! TLS: issuance, what the CSR and the call carry, the checks on the
//! returned chain, refusals and rotation at half life.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rcgen::{CertificateSigningRequestParams, SanType};
use tonic::Status;

use super::csr::signing_request;
use super::{CertificateAuthority, ChainError, IdentityError, SpiffeId, WorkloadCertificate};
use crate::testing::fake_ca::{Answer, FakeCa, TestCa};
use crate::xds::{ControlPlane, TlsSettings};
use shared::identity::CONTROL_PLANE_SERVER_NAME;

const HOUR: Duration = Duration::from_secs(3600);

fn sleep_id() -> SpiffeId {
    SpiffeId {
        trust_domain: "cluster.local".to_string(),
        namespace: "default".to_string(),
        service_account: "sleep".to_string(),
    }
}

/// The files a proxy is given: the root and its token.
struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new(root_pem: &str, token: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("root-cert.pem"), root_pem).unwrap();
        std::fs::write(dir.path().join("token"), token).unwrap();
        Self { dir }
    }

    fn token(&self) -> PathBuf {
        self.dir.path().join("token")
    }

    fn settings(&self, server_name: &str) -> TlsSettings {
        TlsSettings {
            ca_root: self.dir.path().join("root-cert.pem"),
            server_name: server_name.to_string(),
            token: self.token(),
        }
    }
}

fn authority(ca: &FakeCa, files: &Files) -> CertificateAuthority {
    let control_plane = ControlPlane::tls(
        &ca.address().to_string(),
        &files.settings(CONTROL_PLANE_SERVER_NAME),
    )
    .unwrap();
    CertificateAuthority::new(control_plane, sleep_id())
}

#[tokio::test]
async fn issues_a_certificate_for_the_local_key_and_spiffe_id() {
    let ca = FakeCa::start(CONTROL_PLANE_SERVER_NAME, Answer::Sign(HOUR))
        .await
        .unwrap();
    let files = Files::new(ca.root_pem(), "token-1\n");
    let asked = SystemTime::now();
    let certificate = authority(&ca, &files).issue().await.unwrap();

    assert_eq!(
        certificate.spiffe_id(),
        "spiffe://cluster.local/ns/default/sa/sleep"
    );
    assert_eq!(
        certificate.chain_der().len(),
        1,
        "the root is not in the chain"
    );
    assert_eq!(certificate.root_pem(), ca.root_pem());
    let life = certificate.not_after().duration_since(asked).unwrap();
    assert!(
        life.abs_diff(HOUR) < Duration::from_secs(60),
        "the lifetime the CA gave, not the one asked for: {life:?}"
    );

    let calls = ca.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].authorization.as_deref(), Some("Bearer token-1"));
    assert_eq!(calls[0].validity_duration, 24 * 3600, "Istio's SECRET_TTL");
    let csr = CertificateSigningRequestParams::from_pem(&calls[0].csr).unwrap();
    assert_eq!(
        csr.params.subject_alt_names,
        vec![SanType::URI(
            "spiffe://cluster.local/ns/default/sa/sleep"
                .try_into()
                .unwrap()
        )],
        "the CSR asks for the SPIFFE id only"
    );
    assert!(
        !calls[0].csr.contains("PRIVATE KEY"),
        "the key never leaves the proxy"
    );
}

#[tokio::test]
async fn the_token_is_read_again_for_every_request() {
    let ca = FakeCa::start(CONTROL_PLANE_SERVER_NAME, Answer::Sign(HOUR))
        .await
        .unwrap();
    let files = Files::new(ca.root_pem(), "token-1");
    let authority = authority(&ca, &files);
    authority.issue().await.unwrap();
    std::fs::write(files.token(), "token-2").unwrap();
    let second = authority.issue().await.unwrap();
    let calls = ca.calls();
    assert_eq!(calls[1].authorization.as_deref(), Some("Bearer token-2"));
    assert_ne!(
        second.key_der(),
        authority.issue().await.unwrap().key_der(),
        "every certificate comes with a new key"
    );
}

#[tokio::test]
async fn a_refusal_carries_the_control_plane_message() {
    let ca = FakeCa::start(
        CONTROL_PLANE_SERVER_NAME,
        Answer::Refuse(Status::permission_denied(
            "the CSR asks for ns/default/sa/admin; the token is for ns/default/sa/sleep",
        )),
    )
    .await
    .unwrap();
    let files = Files::new(ca.root_pem(), "token");
    let error = authority(&ca, &files).issue().await.unwrap_err();
    assert!(matches!(error, IdentityError::Refused(_)), "{error}");
    let message = error.to_string();
    assert!(
        message.contains("the token is for ns/default/sa/sleep"),
        "{message}"
    );
    assert!(message.contains("--service-account"), "{message}");
}

#[tokio::test]
async fn a_missing_token_file_is_a_clear_error() {
    let ca = FakeCa::start(CONTROL_PLANE_SERVER_NAME, Answer::Sign(HOUR))
        .await
        .unwrap();
    let files = Files::new(ca.root_pem(), "token");
    std::fs::remove_file(files.token()).unwrap();
    let error = authority(&ca, &files).issue().await.unwrap_err();
    let message = error.to_string();
    assert!(message.contains("cannot read the token file"), "{message}");
    assert!(ca.calls().is_empty(), "nothing is sent without a token");
}

#[tokio::test]
async fn the_server_must_hold_a_certificate_for_the_expected_name() {
    let ca = FakeCa::start("someone-else.example", Answer::Sign(HOUR))
        .await
        .unwrap();
    let files = Files::new(ca.root_pem(), "token");
    let error = authority(&ca, &files).issue().await.unwrap_err();
    assert!(matches!(error, IdentityError::Connect(_)), "{error}");
    assert!(
        error.to_string().contains("check --xds-server-name"),
        "{error}"
    );
    assert!(
        ca.calls().is_empty(),
        "the token is not sent to an unverified server"
    );
}

#[tokio::test]
async fn the_server_must_chain_to_the_given_root() {
    let ca = FakeCa::start(CONTROL_PLANE_SERVER_NAME, Answer::Sign(HOUR))
        .await
        .unwrap();
    let files = Files::new(TestCa::default().root_pem(), "token");
    let error = authority(&ca, &files).issue().await.unwrap_err();
    assert!(matches!(error, IdentityError::Connect(_)), "{error}");
    assert!(error.to_string().contains("--ca-root"), "{error}");
    assert!(
        !error.to_string().contains("reachable"),
        "it was reached: {error}"
    );
    assert!(ca.calls().is_empty());
}

#[tokio::test]
async fn a_certificate_for_another_key_is_refused() {
    let ca = FakeCa::start(CONTROL_PLANE_SERVER_NAME, Answer::Sign(HOUR))
        .await
        .unwrap();
    let other = signing_request(&sleep_id()).unwrap();
    ca.answer(Answer::Chain(ca.ca().sign(&other.csr_pem, HOUR).unwrap()));
    let files = Files::new(ca.root_pem(), "token");
    let error = authority(&ca, &files).issue().await.unwrap_err();
    assert!(
        matches!(error, IdentityError::Chain(ChainError::NotOurKey)),
        "{error}"
    );
}

#[test]
fn a_certificate_for_another_identity_is_refused() {
    let ca = TestCa::default();
    let admin = SpiffeId {
        service_account: "admin".to_string(),
        ..sleep_id()
    };
    let request = signing_request(&admin).unwrap();
    let chain = ca.sign(&request.csr_pem, HOUR).unwrap();
    let error =
        WorkloadCertificate::from_response(&chain, request.key, &sleep_id(), SystemTime::now())
            .unwrap_err();
    assert!(
        matches!(&error, ChainError::WrongIdentity { found, .. } if found == &["spiffe://cluster.local/ns/default/sa/admin"]),
        "{error}"
    );
}

#[test]
fn the_leaf_must_chain_to_the_root_of_the_response() {
    let request = signing_request(&sleep_id()).unwrap();
    let mut chain = TestCa::default().sign(&request.csr_pem, HOUR).unwrap();
    chain[1] = TestCa::default().root_pem().to_string();
    let error =
        WorkloadCertificate::from_response(&chain, request.key, &sleep_id(), SystemTime::now())
            .unwrap_err();
    assert!(matches!(error, ChainError::Untrusted(_)), "{error}");
}

#[test]
fn an_expired_certificate_is_refused() {
    let request = signing_request(&sleep_id()).unwrap();
    let chain = TestCa::default().sign(&request.csr_pem, HOUR).unwrap();
    let later = SystemTime::now() + 2 * HOUR;
    let error =
        WorkloadCertificate::from_response(&chain, request.key, &sleep_id(), later).unwrap_err();
    assert!(matches!(error, ChainError::Untrusted(_)), "{error}");
}

#[test]
fn a_proxy_minutes_behind_the_ca_takes_its_certificate() {
    let request = signing_request(&sleep_id()).unwrap();
    let chain = TestCa::default().sign(&request.csr_pem, HOUR).unwrap();
    let behind = SystemTime::now() - Duration::from_secs(4 * 60);
    let certificate =
        WorkloadCertificate::from_response(&chain, request.key, &sleep_id(), behind).unwrap();
    assert!(
        certificate.rotation_time() > behind,
        "rotation still counts from when it was received"
    );
}

#[test]
fn a_certificate_valid_only_beyond_five_minutes_from_now_is_refused() {
    let request = signing_request(&sleep_id()).unwrap();
    let chain = TestCa::default().sign(&request.csr_pem, HOUR).unwrap();
    let behind = SystemTime::now() - Duration::from_secs(6 * 60);
    let error =
        WorkloadCertificate::from_response(&chain, request.key, &sleep_id(), behind).unwrap_err();
    assert!(matches!(error, ChainError::Untrusted(_)), "{error}");
}

#[test]
fn the_chain_needs_the_leaf_and_the_root() {
    let request = signing_request(&sleep_id()).unwrap();
    let chain = TestCa::default().sign(&request.csr_pem, HOUR).unwrap();
    let error = WorkloadCertificate::from_response(
        &chain[..1],
        request.key,
        &sleep_id(),
        SystemTime::now(),
    )
    .unwrap_err();
    assert!(matches!(error, ChainError::TooShort(1)), "{error}");
}

#[test]
fn rotates_at_half_the_life_left_when_received_and_never_shows_the_key() {
    let request = signing_request(&sleep_id()).unwrap();
    let chain = TestCa::default()
        .sign_backdated(&request.csr_pem, HOUR, 2 * HOUR)
        .unwrap();
    let received = SystemTime::now();
    let certificate =
        WorkloadCertificate::from_response(&chain, request.key, &sleep_id(), received).unwrap();
    let left = certificate.not_after().duration_since(received).unwrap();
    assert_eq!(
        certificate.rotation_time(),
        received + left / 2,
        "a backdated not_before does not count (Istio's CreatedTime)"
    );
    assert!(certificate.rotation_time() > received);
    let debug = format!("{certificate:?}");
    assert!(debug.contains(certificate.serial()), "{debug}");
    assert!(!debug.contains("PRIVATE"), "{debug}");
}

#[test]
fn serial_numbers_are_lowercase_hex_as_envoy_prints_them() {
    assert_eq!(super::serial_number(&[0x0a, 0xbc, 0x00]), "0abc00");
}

#[tokio::test]
async fn the_first_certificate_is_retried_until_issued() {
    let ca = FakeCa::start(
        CONTROL_PLANE_SERVER_NAME,
        Answer::Refuse(Status::unavailable("the CA is starting")),
    )
    .await
    .unwrap();
    let files = Files::new(ca.root_pem(), "token");
    let authority = authority(&ca, &files);
    let first = tokio::spawn(async move { authority.start().await });
    while ca.calls().len() < 2 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ca.answer(Answer::Sign(HOUR));
    let current = tokio::time::timeout(Duration::from_secs(10), first)
        .await
        .expect("issued once the CA signs")
        .unwrap();
    assert_eq!(
        current.borrow().spiffe_id(),
        "spiffe://cluster.local/ns/default/sa/sleep"
    );
}

#[tokio::test]
async fn rotates_to_a_new_certificate_at_half_life() {
    let lifetime = Duration::from_secs(4);
    let ca = FakeCa::start(CONTROL_PLANE_SERVER_NAME, Answer::Sign(lifetime))
        .await
        .unwrap();
    let files = Files::new(ca.root_pem(), "token");
    let started = Instant::now();
    let mut current = authority(&ca, &files).start().await;
    let first: Arc<WorkloadCertificate> = current.borrow_and_update().clone();
    tokio::time::timeout(Duration::from_secs(10), current.changed())
        .await
        .expect("rotated before the certificate expired")
        .unwrap();
    let second = current.borrow().clone();
    // Validity has whole seconds: about 3s or more of the 4s were left when
    // the first arrived, and rotation comes at half of what was left.
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_ne!(first.serial(), second.serial());
    assert_ne!(first.key_der(), second.key_der());
    assert!(second.rotation_time() > first.rotation_time());
    assert_eq!(ca.calls().len(), 2);
}
