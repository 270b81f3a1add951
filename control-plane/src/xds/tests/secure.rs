//! The secure port refuses what it cannot authenticate: each refusal with
//! its code, its reason in the status, and the metric.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use proto::pb::envoy::service::status::v3::client_status_discovery_service_client::ClientStatusDiscoveryServiceClient;
use proto::pb::envoy::service::status::v3::{ClientStatusRequest, ClientStatusResponse};
use serde_json::json;
use shared::type_url;
use tonic::Code;

use super::*;

/// Asserts that `result` failed with `code`, its status naming `reason`,
/// and that the metric counted it.
fn assert_refused<T>(mesh: &Mesh, result: Result<T, Status>, code: Code, reason: &str) {
    let Err(status) = result else {
        panic!("not refused: expected {reason}");
    };
    assert_eq!(status.code(), code, "{status:?}");
    assert!(
        status.message().starts_with(&format!("{reason}: ")),
        "{}",
        status.message()
    );
    assert_eq!(
        mesh.auth_failures(reason),
        1,
        "{}",
        mesh.context.metrics.render()
    );
}

/// Asserts that the sleep sidecar, connecting with `token`, is refused
/// with `code` and `reason`.
async fn assert_sleep_refused(mesh: &Mesh, token: Option<&str>, code: Code, reason: &str) {
    let result = mesh.connect(token, sidecar("default", "sleep")).await;
    assert_refused(mesh, result, code, reason);
}

fn sleep_account() -> ServiceAccount {
    ServiceAccount::new("default", "sleep").expect("names")
}

#[tokio::test]
async fn a_valid_token_is_served_over_tls() {
    let mesh = Mesh::start().await;
    let token = mesh.token("default", "sleep");
    let (_stream, response) = mesh
        .connect(Some(&token), sidecar("default", "sleep"))
        .await
        .expect("served");
    assert_eq!(response.type_url, type_url::CLUSTER);
    assert!(!response.resources.is_empty(), "the sidecar's clusters");
    assert!(
        !mesh
            .context
            .metrics
            .render()
            .contains("pilot_xds_auth_failures_total{"),
        "nothing refused"
    );
}

#[tokio::test]
async fn a_call_without_a_token_is_unauthenticated() {
    let mesh = Mesh::start().await;
    assert_sleep_refused(&mesh, None, Code::Unauthenticated, "missing_token").await;
}

#[tokio::test]
async fn an_expired_token_is_unauthenticated() {
    let mesh = Mesh::start().await;
    let two_hours_ago = SystemTime::now() - Duration::from_secs(7200);
    let expired = mesh
        .signing
        .mint(&sleep_account(), two_hours_ago, Duration::from_secs(3600))
        .expect("mint");
    assert_sleep_refused(
        &mesh,
        Some(&expired),
        Code::Unauthenticated,
        "expired_token",
    )
    .await;
}

#[tokio::test]
async fn a_token_for_another_audience_is_unauthenticated() {
    let mesh = Mesh::start().await;
    let now = SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let claims = json!({
        "iss": "egress-mesh-control-plane",
        "sub": "system:serviceaccount:default:sleep",
        "aud": ["https://kubernetes.default.svc"],
        "iat": now,
        "exp": now + 3600,
    });
    let key = EncodingKey::from_ec_pem(mesh.token_key_pem.as_bytes()).expect("key");
    let token = jsonwebtoken::encode(&Header::new(Algorithm::ES256), &claims, &key).expect("sign");
    assert_sleep_refused(&mesh, Some(&token), Code::Unauthenticated, "wrong_audience").await;
}

#[tokio::test]
async fn a_token_signed_by_another_key_is_unauthenticated() {
    let mesh = Mesh::start().await;
    let other_pem = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .expect("key")
        .serialize_pem();
    let other = TokenSigningKey::from_pem(&other_pem).expect("key");
    let forged = other
        .mint(
            &sleep_account(),
            SystemTime::now(),
            Duration::from_secs(3600),
        )
        .expect("mint");
    assert_sleep_refused(&mesh, Some(&forged), Code::Unauthenticated, "bad_signature").await;
}

#[tokio::test]
async fn a_node_of_another_namespace_than_its_token_is_denied() {
    let mesh = Mesh::start().await;
    let token = mesh.token("default", "sleep");
    let result = mesh.connect(Some(&token), sidecar("prod", "sleep")).await;
    assert_refused(&mesh, result, Code::PermissionDenied, "node_mismatch");
    assert_eq!(mesh.context.connections.len(), 0, "not registered");
}

#[tokio::test]
async fn a_node_claiming_another_service_account_than_its_token_is_denied() {
    let mesh = Mesh::start().await;
    let token = mesh.token("default", "sleep");
    let result = mesh
        .connect(Some(&token), sidecar("default", "payments-admin"))
        .await;
    assert_refused(&mesh, result, Code::PermissionDenied, "node_mismatch");
}

#[tokio::test]
async fn a_plaintext_client_cannot_call_the_secure_port() {
    let mesh = Mesh::start().await;
    let token = mesh.token("default", "sleep");
    let result = match mesh.plaintext_channel(mesh.secure).await {
        Ok(channel) => first_response(
            channel,
            Some(&token),
            sidecar("default", "sleep"),
            type_url::CLUSTER,
        )
        .await
        .map(|_| ()),
        Err(error) => Err(Status::unavailable(error.to_string())),
    };
    assert!(result.is_err(), "h2c to a TLS port fails");
    assert_eq!(mesh.context.connections.len(), 0);
}

/// CSDS's status for every proxy, fetched on the secure port with a token
/// of `namespace/name`.
async fn fetch_csds_as(
    mesh: &Mesh,
    namespace: &str,
    name: &str,
) -> Result<tonic::Response<ClientStatusResponse>, Status> {
    let token = mesh.token(namespace, name);
    ClientStatusDiscoveryServiceClient::new(mesh.secure_channel().await)
        .fetch_client_status(authorized(ClientStatusRequest::default(), Some(&token)))
        .await
}

#[tokio::test]
async fn csds_on_the_secure_port_is_for_istio_system_tokens_only() {
    let mesh = Mesh::start().await;
    let _stream = mesh
        .connect_as("default", "sleep", sidecar("default", "sleep"))
        .await;
    let result = fetch_csds_as(&mesh, "default", "sleep").await;
    assert_refused(&mesh, result, Code::PermissionDenied, "csds_not_allowed");

    let status = fetch_csds_as(&mesh, "istio-system", "istioctl")
        .await
        .expect("an operator reads CSDS")
        .into_inner();
    assert_eq!(status.config.len(), 1, "the connected sidecar");
}

#[tokio::test]
async fn csds_is_not_for_the_trusted_gateways_service_account_though_in_istio_system() {
    let mesh = Mesh::start().await;
    let result = fetch_csds_as(&mesh, "istio-system", "istio-egressgateway-service-account").await;
    assert_refused(&mesh, result, Code::PermissionDenied, "csds_not_allowed");
}

#[tokio::test]
async fn on_shutdown_the_server_returns_after_the_grace_period_despite_open_streams() {
    let mesh = Mesh::start().await;
    let _stream = mesh
        .connect_as("default", "sleep", sidecar("default", "sleep"))
        .await;
    let stopped_at = std::time::Instant::now();
    mesh.stop.send(()).expect("servers listening");
    let Mesh { secure_server, .. } = mesh;
    tokio::time::timeout(WAIT, secure_server)
        .await
        .expect("the server returns although an ADS stream is open")
        .expect("no panic")
        .expect("no error");
    assert!(
        stopped_at.elapsed() >= super::super::server::SHUTDOWN_GRACE,
        "open calls had their grace period"
    );
}
