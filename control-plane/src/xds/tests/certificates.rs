//! Istio's CA API on the secure port: a CSR for the caller's own identity
//! is signed; any other is refused; the plaintext port has no CA.

use proto::istio_ca::IstioCertificateRequest;
use proto::istio_ca::istio_certificate_service_client::IstioCertificateServiceClient;
use proto::wkt::{Struct, Value, value::Kind};
use rcgen::{CertificateParams, KeyPair, SanType};
use tonic::Code;
use x509_parser::extensions::GeneralName;

use super::*;

fn csr_for(spiffe_id: &str) -> String {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let mut params = CertificateParams::default();
    params.subject_alt_names = vec![SanType::URI(spiffe_id.try_into().expect("IA5"))];
    params
        .serialize_request(&key)
        .expect("CSR")
        .pem()
        .expect("PEM")
}

fn request(csr: String) -> IstioCertificateRequest {
    IstioCertificateRequest {
        csr,
        validity_duration: 3600,
        metadata: None,
    }
}

fn counter(mesh: &Mesh, name: &str) -> u64 {
    let prefix = format!("{name} ");
    mesh.context
        .metrics
        .render()
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .map_or(0, |count| count.parse().expect("a count"))
}

#[tokio::test]
async fn a_csr_for_the_tokens_identity_is_signed_root_last() {
    let mesh = Mesh::start().await;
    let token = mesh.token("default", "sleep");
    let mut ca = IstioCertificateServiceClient::new(mesh.secure_channel().await);
    let response = ca
        .create_certificate(authorized(
            request(csr_for("spiffe://cluster.local/ns/default/sa/sleep")),
            Some(&token),
        ))
        .await
        .expect("signed")
        .into_inner();
    assert_eq!(response.cert_chain.len(), 2);
    assert_eq!(response.cert_chain[1], mesh.root_pem, "the root last");
    let (_, leaf_pem) =
        x509_parser::pem::parse_x509_pem(response.cert_chain[0].as_bytes()).expect("PEM");
    let leaf = leaf_pem.parse_x509().expect("X.509");
    let san = leaf.subject_alternative_name().expect("SAN").expect("SAN");
    assert_eq!(
        san.value.general_names,
        vec![GeneralName::URI(
            "spiffe://cluster.local/ns/default/sa/sleep"
        )]
    );
    let lifetime = leaf.validity().not_after.timestamp() - leaf.validity().not_before.timestamp();
    assert_eq!(
        lifetime,
        3600 + 60,
        "the requested hour, plus a minute of skew"
    );
    assert_eq!(counter(&mesh, "citadel_server_csr_count"), 1);
    assert_eq!(
        counter(&mesh, "citadel_server_success_cert_issuance_count"),
        1
    );
}

#[tokio::test]
async fn a_csr_for_another_identity_is_denied() {
    let mesh = Mesh::start().await;
    let token = mesh.token("default", "sleep");
    let mut ca = IstioCertificateServiceClient::new(mesh.secure_channel().await);
    let status = ca
        .create_certificate(authorized(
            request(csr_for("spiffe://cluster.local/ns/prod/sa/payments-admin")),
            Some(&token),
        ))
        .await
        .expect_err("another identity");
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(
        status.message().starts_with("csr_identity_mismatch: "),
        "{}",
        status.message()
    );
    assert!(
        status.message().contains("payments-admin"),
        "{}",
        status.message()
    );
    assert_eq!(mesh.auth_failures("csr_identity_mismatch"), 1);
    assert_eq!(counter(&mesh, "citadel_server_csr_count"), 1);
    assert_eq!(
        counter(&mesh, "citadel_server_success_cert_issuance_count"),
        0
    );
}

#[tokio::test]
async fn impersonation_is_denied() {
    let mesh = Mesh::start().await;
    let token = mesh.token("default", "sleep");
    let mut ca = IstioCertificateServiceClient::new(mesh.secure_channel().await);
    let impersonated = Value {
        kind: Some(Kind::StringValue(
            "spiffe://cluster.local/ns/prod/sa/payments-admin".to_string(),
        )),
    };
    let status = ca
        .create_certificate(authorized(
            IstioCertificateRequest {
                metadata: Some(Struct {
                    fields: [("ImpersonatedIdentity".to_string(), impersonated)].into(),
                }),
                ..request(csr_for("spiffe://cluster.local/ns/default/sa/sleep"))
            },
            Some(&token),
        ))
        .await
        .expect_err("impersonation");
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(mesh.auth_failures("csr_identity_mismatch"), 1);
}

#[tokio::test]
async fn a_request_that_is_no_csr_is_invalid() {
    let mesh = Mesh::start().await;
    let token = mesh.token("default", "sleep");
    let mut ca = IstioCertificateServiceClient::new(mesh.secure_channel().await);
    let status = ca
        .create_certificate(authorized(request("garbage".to_string()), Some(&token)))
        .await
        .expect_err("invalid");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().starts_with("invalid_csr: "),
        "{}",
        status.message()
    );
    assert_eq!(mesh.auth_failures("invalid_csr"), 1);
}

#[tokio::test]
async fn a_csr_without_a_token_is_unauthenticated() {
    let mesh = Mesh::start().await;
    let mut ca = IstioCertificateServiceClient::new(mesh.secure_channel().await);
    let status = ca
        .create_certificate(authorized(
            request(csr_for("spiffe://cluster.local/ns/default/sa/sleep")),
            None,
        ))
        .await
        .expect_err("no token");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(mesh.auth_failures("missing_token"), 1);
}

#[tokio::test]
async fn the_plaintext_port_has_no_certificate_service() {
    let mesh = Mesh::start().await;
    let channel = mesh
        .plaintext_channel(mesh.plaintext)
        .await
        .expect("plaintext connection");
    let status = IstioCertificateServiceClient::new(channel)
        .create_certificate(request(csr_for(
            "spiffe://cluster.local/ns/default/sa/sleep",
        )))
        .await
        .expect_err("no CA on plaintext");
    assert_eq!(status.code(), Code::Unimplemented);
}
