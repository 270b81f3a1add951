//! Tokens as the control plane reads them: its own (ES256, Kubernetes
//! claim shape) and a cluster's through a JWKS file; each refusal with its
//! reason label and gRPC code.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use tonic::Code;

use super::*;

const CLUSTER_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

fn p256_pem() -> String {
    rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .expect("P-256 key")
        .serialize_pem()
}

fn sleep() -> ServiceAccount {
    ServiceAccount::new("default", "sleep").expect("valid names")
}

fn seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).expect("after 1970").as_secs()
}

/// A token with the given claims, signed by `pem` with `header`.
fn signed(pem: &str, header: &Header, claims: &serde_json::Value) -> String {
    let key = EncodingKey::from_ec_pem(pem.as_bytes()).expect("EC key");
    jsonwebtoken::encode(header, claims, &key).expect("encode")
}

/// Claims as a Kubernetes projected token has them, valid for an hour.
fn projected_claims(issuer: &str, audience: &str) -> serde_json::Value {
    let now = seconds(SystemTime::now());
    json!({
        "iss": issuer,
        "sub": "system:serviceaccount:default:sleep",
        "aud": [audience],
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "kubernetes.io": {
            "namespace": "default",
            "pod": {"name": "sleep-1", "uid": "0f3e"},
            "serviceaccount": {"name": "sleep", "uid": "9a1c"}
        }
    })
}

struct Own {
    pem: String,
    key: TokenSigningKey,
    authenticator: Authenticator,
}

fn own() -> Own {
    let pem = p256_pem();
    let key = TokenSigningKey::from_pem(&pem).expect("token key");
    let authenticator = Authenticator::new(&key, None);
    Own {
        pem,
        key,
        authenticator,
    }
}

fn refused(authenticator: &Authenticator, token: &str) -> AuthError {
    authenticator.verify(token).expect_err("refused")
}

#[test]
fn a_minted_token_proves_its_service_account() {
    let own = own();
    let token = own
        .key
        .mint(&sleep(), SystemTime::now(), Duration::from_secs(3600))
        .expect("mint");
    assert_eq!(own.authenticator.verify(&token), Ok(sleep()));
}

#[test]
fn a_minted_token_has_the_kubernetes_projected_token_shape() {
    let own = own();
    let now = SystemTime::now();
    let token = own
        .key
        .mint(&sleep(), now, Duration::from_secs(86400))
        .expect("mint");
    let header = jsonwebtoken::decode_header(&token).expect("header");
    assert_eq!(header.alg, Algorithm::ES256);
    let claims: serde_json::Value =
        jsonwebtoken::dangerous::insecure_decode_claims(&token).expect("claims");
    let now = seconds(now);
    assert_eq!(
        claims,
        json!({
            "iss": "egress-mesh-control-plane",
            "sub": "system:serviceaccount:default:sleep",
            "aud": ["istio-ca"],
            "iat": now,
            "nbf": now,
            "exp": now + 86400,
            "kubernetes.io": {"namespace": "default", "serviceaccount": {"name": "sleep"}}
        })
    );
}

#[test]
fn an_expired_token_is_unauthenticated_with_its_expiry() {
    let own = own();
    let two_hours_ago = SystemTime::now() - Duration::from_secs(7200);
    let token = own
        .key
        .mint(&sleep(), two_hours_ago, Duration::from_secs(3600))
        .expect("mint");
    let error = refused(&own.authenticator, &token);
    assert!(matches!(error, AuthError::ExpiredToken { .. }), "{error}");
    assert_eq!(error.reason(), "expired_token");
    assert_eq!(error.code(), Code::Unauthenticated);
    assert!(error.to_string().contains("token create"), "{error}");
}

#[test]
fn a_token_expired_a_second_ago_is_refused_without_leeway() {
    let own = own();
    let now = seconds(SystemTime::now());
    let mut claims = projected_claims(ISSUER, AUDIENCE);
    claims["iat"] = json!(now - 60);
    claims["nbf"] = json!(now - 60);
    claims["exp"] = json!(now - 1);
    let token = signed(&own.pem, &Header::new(Algorithm::ES256), &claims);
    assert_eq!(
        refused(&own.authenticator, &token).reason(),
        "expired_token"
    );
}

#[test]
fn a_token_valid_only_in_the_future_is_refused_beyond_five_minutes_of_skew() {
    let own = own();
    let now = seconds(SystemTime::now());
    let mut claims = projected_claims(ISSUER, AUDIENCE);
    claims["nbf"] = json!(now + 60);
    let token = signed(&own.pem, &Header::new(Algorithm::ES256), &claims);
    assert_eq!(
        own.authenticator.verify(&token),
        Ok(sleep()),
        "skew allowed"
    );
    claims["nbf"] = json!(now + 600);
    let token = signed(&own.pem, &Header::new(Algorithm::ES256), &claims);
    let error = refused(&own.authenticator, &token);
    assert!(matches!(error, AuthError::NotYetValid { .. }), "{error}");
    assert_eq!(error.reason(), "expired_token");
}

#[test]
fn a_token_signed_by_another_key_has_a_bad_signature() {
    let own = own();
    let other = TokenSigningKey::from_pem(&p256_pem()).expect("other key");
    let token = other
        .mint(&sleep(), SystemTime::now(), Duration::from_secs(3600))
        .expect("mint");
    let error = refused(&own.authenticator, &token);
    assert!(matches!(error, AuthError::BadSignature(_)), "{error}");
    assert_eq!(error.reason(), "bad_signature");
    assert_eq!(error.code(), Code::Unauthenticated);
}

#[test]
fn a_token_for_another_audience_is_refused() {
    let own = own();
    let claims = projected_claims(ISSUER, "https://kubernetes.default.svc");
    let token = signed(&own.pem, &Header::new(Algorithm::ES256), &claims);
    let error = refused(&own.authenticator, &token);
    assert!(matches!(error, AuthError::WrongAudience { .. }), "{error}");
    assert_eq!(error.reason(), "wrong_audience");
    assert!(
        error.to_string().contains("kubernetes.default.svc"),
        "{error}"
    );

    let mut claims = projected_claims(ISSUER, AUDIENCE);
    claims.as_object_mut().expect("object").remove("aud");
    let token = signed(&own.pem, &Header::new(Algorithm::ES256), &claims);
    assert_eq!(
        refused(&own.authenticator, &token).reason(),
        "wrong_audience"
    );
}

#[test]
fn a_token_of_an_untrusted_issuer_is_refused_naming_the_trusted_ones() {
    let own = own();
    let claims = projected_claims("https://attacker.example", AUDIENCE);
    let token = signed(&own.pem, &Header::new(Algorithm::ES256), &claims);
    let error = refused(&own.authenticator, &token);
    assert_eq!(error.reason(), "unknown_issuer");
    assert_eq!(error.code(), Code::Unauthenticated);
    let message = error.to_string();
    assert!(message.contains("attacker.example"), "{message}");
    assert!(message.contains("egress-mesh-control-plane"), "{message}");
}

/// `{"alg":"none","typ":"JWT"}`, base64url-encoded.
const ALG_NONE_HEADER: &str = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0";

/// `token` with its header replaced by `alg: none` and no signature.
fn unsigned(token: &str) -> String {
    let claims = token.split('.').nth(1).expect("a JWT");
    format!("{ALG_NONE_HEADER}.{claims}.")
}

#[test]
fn an_unsigned_alg_none_token_is_refused_for_every_issuer() {
    let own = own();
    let minted = own
        .key
        .mint(&sleep(), SystemTime::now(), Duration::from_secs(3600))
        .expect("mint");
    let error = refused(&own.authenticator, &unsigned(&minted));
    assert_eq!(error.code(), Code::Unauthenticated, "{error}");
    assert_eq!(error.reason(), "malformed_token", "{error}");

    let (jwks, pem) = cluster_jwks("key-1");
    let authenticator = cluster_authenticator(&jwks);
    let projected = signed(
        &pem,
        &with_kid("key-1"),
        &projected_claims(CLUSTER_ISSUER, AUDIENCE),
    );
    let error = refused(&authenticator, &unsigned(&projected));
    assert_eq!(error.code(), Code::Unauthenticated, "{error}");
}

#[test]
fn an_hs256_token_keyed_with_the_public_key_is_refused() {
    let hmac = |public_pem: &str, header: Header, claims: &serde_json::Value| {
        let key = EncodingKey::from_secret(public_pem.as_bytes()).expect("HMAC key");
        jsonwebtoken::encode(&header, claims, &key).expect("encode")
    };
    let public_pem = |pem: &str| rcgen::KeyPair::from_pem(pem).expect("key").public_key_pem();
    let own = own();
    let token = hmac(
        &public_pem(&own.pem),
        Header::new(Algorithm::HS256),
        &projected_claims(ISSUER, AUDIENCE),
    );
    let error = refused(&own.authenticator, &token);
    assert_eq!(error.reason(), "bad_signature", "{error}");

    let (jwks, pem) = cluster_jwks("key-1");
    let authenticator = cluster_authenticator(&jwks);
    let mut header = with_kid("key-1");
    header.alg = Algorithm::HS256;
    let token = hmac(
        &public_pem(&pem),
        header,
        &projected_claims(CLUSTER_ISSUER, AUDIENCE),
    );
    let error = refused(&authenticator, &token);
    assert_eq!(error.reason(), "bad_signature", "{error}");
}

#[test]
fn a_token_naming_istio_ca_among_other_audiences_is_accepted() {
    let own = own();
    let mut claims = projected_claims(ISSUER, AUDIENCE);
    claims["aud"] = json!(["x", "istio-ca"]);
    let token = signed(&own.pem, &Header::new(Algorithm::ES256), &claims);
    assert_eq!(own.authenticator.verify(&token), Ok(sleep()));
}

#[test]
fn a_token_that_is_no_jwt_is_malformed() {
    let own = own();
    for token in ["", "not-a-jwt", "a.b.c", "eyJhbGciOiJFUzI1NiJ9.e30.c2ln"] {
        let error = refused(&own.authenticator, token);
        assert_eq!(error.reason(), "malformed_token", "{token:?}: {error}");
    }
}

#[test]
fn a_token_that_names_no_valid_service_account_is_malformed() {
    let own = own();
    let mut claims = projected_claims(ISSUER, AUDIENCE);
    claims["kubernetes.io"]["namespace"] = json!("prod");
    let token = signed(&own.pem, &Header::new(Algorithm::ES256), &claims);
    let error = refused(&own.authenticator, &token);
    assert_eq!(error.reason(), "malformed_token");
    assert!(
        error
            .to_string()
            .contains("but its sub names \"default/sleep\""),
        "{error}"
    );

    let mut claims = projected_claims(ISSUER, AUDIENCE);
    claims
        .as_object_mut()
        .expect("object")
        .remove("kubernetes.io");
    claims["sub"] = json!("system:serviceaccount:a/sa/b:x");
    let token = signed(&own.pem, &Header::new(Algorithm::ES256), &claims);
    assert_eq!(
        refused(&own.authenticator, &token).reason(),
        "malformed_token"
    );
}

#[test]
fn the_subject_alone_names_the_service_account() {
    let own = own();
    let mut claims = projected_claims(ISSUER, AUDIENCE);
    claims
        .as_object_mut()
        .expect("object")
        .remove("kubernetes.io");
    let token = signed(&own.pem, &Header::new(Algorithm::ES256), &claims);
    assert_eq!(own.authenticator.verify(&token), Ok(sleep()));
}

/// A JWKS document with one ES256 key of id `kid`, and that key's PEM.
fn cluster_jwks(kid: &str) -> (String, String) {
    let pem = p256_pem();
    let key = EncodingKey::from_ec_pem(pem.as_bytes()).expect("EC key");
    let mut jwk = Jwk::from_encoding_key(&key, Algorithm::ES256).expect("JWK");
    jwk.common.key_id = Some(kid.to_string());
    let set = JwkSet { keys: vec![jwk] };
    (serde_json::to_string(&set).expect("JSON"), pem)
}

fn cluster_authenticator(jwks: &str) -> Authenticator {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("jwks.json");
    std::fs::write(&path, jwks).expect("write");
    let kubernetes = KubernetesTokens::load(&path, CLUSTER_ISSUER).expect("JWKS");
    let own = TokenSigningKey::from_pem(&p256_pem()).expect("own key");
    Authenticator::new(&own, Some(kubernetes))
}

fn with_kid(kid: &str) -> Header {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.to_string());
    header
}

#[test]
fn a_projected_service_account_token_verifies_against_the_jwks_file() {
    let (jwks, pem) = cluster_jwks("key-1");
    let authenticator = cluster_authenticator(&jwks);
    let claims = projected_claims(CLUSTER_ISSUER, AUDIENCE);
    let token = signed(&pem, &with_kid("key-1"), &claims);
    assert_eq!(authenticator.verify(&token), Ok(sleep()));
    let token = signed(&pem, &Header::new(Algorithm::ES256), &claims);
    assert_eq!(authenticator.verify(&token), Ok(sleep()), "without kid");
}

#[test]
fn a_projected_token_of_an_unknown_key_id_or_key_has_a_bad_signature() {
    let (jwks, pem) = cluster_jwks("key-1");
    let authenticator = cluster_authenticator(&jwks);
    let claims = projected_claims(CLUSTER_ISSUER, AUDIENCE);
    let error = refused(&authenticator, &signed(&pem, &with_kid("key-2"), &claims));
    assert_eq!(error.reason(), "bad_signature");
    assert!(error.to_string().contains("key-2"), "{error}");
    let other = p256_pem();
    let error = refused(&authenticator, &signed(&other, &with_kid("key-1"), &claims));
    assert_eq!(error.reason(), "bad_signature");
}

/// Puts `jwks` in place of `path` as a new file, as `kubectl get --raw
/// /openid/v1/jwks > new && mv new FILE` or a Kubernetes volume does.
fn replace_file(path: &Path, jwks: &str) {
    let new = path.with_extension("new");
    std::fs::write(&new, jwks).expect("write");
    std::fs::rename(&new, path).expect("rename");
}

#[test]
fn a_rotated_jwks_file_is_read_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("jwks.json");
    let (first, _) = cluster_jwks("key-1");
    std::fs::write(&path, first).expect("write");
    let kubernetes = KubernetesTokens::load(&path, CLUSTER_ISSUER)
        .expect("JWKS")
        .rechecked_every_time();
    let own = TokenSigningKey::from_pem(&p256_pem()).expect("own key");
    let authenticator = Authenticator::new(&own, Some(kubernetes));
    let (rotated, pem) = cluster_jwks("key-2");
    let token = signed(
        &pem,
        &with_kid("key-2"),
        &projected_claims(CLUSTER_ISSUER, AUDIENCE),
    );
    assert_eq!(refused(&authenticator, &token).reason(), "bad_signature");
    replace_file(&path, &rotated);
    assert_eq!(
        authenticator.verify(&token),
        Ok(sleep()),
        "the new key is read"
    );
}

#[test]
fn an_unusable_new_jwks_file_leaves_the_last_good_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("jwks.json");
    let (jwks, pem) = cluster_jwks("key-1");
    std::fs::write(&path, jwks).expect("write");
    let kubernetes = KubernetesTokens::load(&path, CLUSTER_ISSUER)
        .expect("JWKS")
        .rechecked_every_time();
    let own = TokenSigningKey::from_pem(&p256_pem()).expect("own key");
    let authenticator = Authenticator::new(&own, Some(kubernetes));
    let token = signed(
        &pem,
        &with_kid("key-1"),
        &projected_claims(CLUSTER_ISSUER, AUDIENCE),
    );
    for unusable in ["not json", r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#] {
        replace_file(&path, unusable);
        assert_eq!(authenticator.verify(&token), Ok(sleep()), "{unusable}");
    }
    std::fs::remove_file(&path).expect("remove");
    assert_eq!(authenticator.verify(&token), Ok(sleep()), "removed");
}

#[test]
fn a_jwks_file_without_a_signing_key_is_refused_at_load() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("jwks.json");
    std::fs::write(&path, r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#).expect("write");
    let error = KubernetesTokens::load(&path, CLUSTER_ISSUER).expect_err("no usable key");
    assert!(matches!(error, JwksError::NoUsableKey { .. }), "{error}");
    std::fs::write(&path, "not json").expect("write");
    let error = KubernetesTokens::load(&path, CLUSTER_ISSUER).expect_err("not JSON");
    assert!(error.to_string().contains("/openid/v1/jwks"), "{error}");
    let missing = KubernetesTokens::load(Path::new("/nonexistent/jwks.json"), CLUSTER_ISSUER);
    assert!(matches!(missing, Err(JwksError::Read { .. })));
}

#[test]
fn the_control_planes_own_issuer_is_refused_as_the_clusters() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("jwks.json");
    std::fs::write(&path, cluster_jwks("key-1").0).expect("write");
    let error = KubernetesTokens::load(&path, ISSUER).expect_err("shadowed by the own issuer");
    assert!(matches!(error, JwksError::OwnIssuer), "{error}");
    assert!(
        error
            .to_string()
            .starts_with("--jwt-issuer \"egress-mesh-control-plane\" is the issuer of this control plane's own tokens"),
        "{error}"
    );
}

#[test]
fn the_bearer_scheme_is_required_and_case_insensitive() {
    assert_eq!(bearer_token(Some("Bearer abc")), Ok("abc"));
    assert_eq!(bearer_token(Some("bearer abc")), Ok("abc"));
    assert_eq!(bearer_token(None), Err(AuthError::MissingToken));
    assert_eq!(bearer_token(Some("Bearer ")), Err(AuthError::MissingToken));
    assert_eq!(
        bearer_token(Some("Basic dXNlcjpwYXNz")).map_err(|e| e.reason()),
        Err("malformed_token")
    );
}

#[test]
fn service_account_names_follow_kubernetes_rules() {
    assert_eq!(
        "istio-system/istio-egressgateway-service-account".parse::<ServiceAccount>(),
        ServiceAccount::new("istio-system", "istio-egressgateway-service-account")
    );
    assert!(ServiceAccount::new("default", "sa.with.dots").is_ok());
    for (namespace, name) in [
        ("", "sleep"),
        ("Default", "sleep"),
        ("default", ""),
        ("a/sa/b", "sleep"),
        ("default", "sleep/x"),
        ("-x", "sleep"),
        ("default", "x-"),
    ] {
        assert!(
            ServiceAccount::new(namespace, name).is_err(),
            "{namespace:?}/{name:?}"
        );
    }
    assert!(matches!(
        "no-slash".parse::<ServiceAccount>(),
        Err(AccountError::Format(_))
    ));
}

#[test]
fn what_a_caller_wrote_is_quoted_or_escaped_so_that_no_refusal_spans_two_lines() {
    let forged = "sleep\n2026-01-01T00:00:00Z INFO proxy connected\u{1b}[0m";
    let errors = [
        AuthError::MalformedToken(forged.into()),
        AuthError::BadSignature(forged.into()),
        AuthError::InvalidCsr(forged.into()),
        AuthError::NodeMismatch {
            claimed: format!("default/{forged}"),
            token: "default/sleep".into(),
        },
        AuthError::CsrIdentityMismatch {
            requested: forged.into(),
            token: "spiffe://cluster.local/ns/default/sa/sleep".into(),
        },
        AuthError::UnknownIssuer {
            issuer: forged.into(),
            accepted: ISSUER.into(),
        },
    ];
    for error in errors {
        let message = error.to_string();
        assert!(
            !message.chars().any(char::is_control),
            "{} {message:?}",
            error.reason()
        );
        assert!(message.contains(r"sleep\n2026"), "{message}");
    }
}

#[test]
fn every_reason_has_its_label_and_code() {
    let cases = [
        (
            AuthError::MissingToken,
            "missing_token",
            Code::Unauthenticated,
        ),
        (
            AuthError::NodeMismatch {
                claimed: "prod/sleep".into(),
                token: "default/sleep".into(),
            },
            "node_mismatch",
            Code::PermissionDenied,
        ),
        (
            AuthError::CsrIdentityMismatch {
                requested: "x".into(),
                token: "y".into(),
            },
            "csr_identity_mismatch",
            Code::PermissionDenied,
        ),
        (
            AuthError::CsdsNotAllowed {
                caller: "default/sleep".into(),
            },
            "csds_not_allowed",
            Code::PermissionDenied,
        ),
        (
            AuthError::CsdsNotForGateways {
                caller: "istio-system/istio-egressgateway-service-account".into(),
            },
            "csds_not_allowed",
            Code::PermissionDenied,
        ),
    ];
    for (error, reason, code) in cases {
        assert_eq!(error.reason(), reason);
        let status = error.to_status();
        assert_eq!(status.code(), code);
        assert!(status.message().starts_with(reason), "{}", status.message());
    }
}
