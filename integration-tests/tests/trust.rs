//! The control channel as an attacker on the same network sees it: real
//! grpcurl and a raw ADS client against the control plane's TLS port, with
//! no token, a malformed one, one whose claims were edited, one signed by
//! another key, for another audience or issuer, an expired one, a token of
//! one namespace used by a node of another, CSRs for another identity, and
//! clients without TLS. Each is refused with UNAUTHENTICATED or
//! PERMISSION_DENIED, its reason in one log line and in
//! `pilot_xds_auth_failures_total{reason}`; no log line holds a token. A
//! valid token, the control plane's own or a Kubernetes projected token
//! checked against the cluster's JWKS, gets a certificate for its own SPIFFE
//! id, signed from its CSR, and never a private key.

use std::fs;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail, ensure};
use integration_tests::ads::{self, refusal};
use integration_tests::control_channel::ControlChannel;
use integration_tests::control_plane::{ConfigDir, ControlPlane};
use integration_tests::fixtures::HTTPBIN_SERVICE_ENTRY;
use integration_tests::grpcurl::Grpcurl;
use integration_tests::process::{CommandOutput, eventually};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rcgen::{CertificateParams, KeyPair, SanType, string::Ia5String};
use serde_json::{Value, json};
use shared::node::{NodeId, NodeType};
use tonic::Code;
use x509_parser::extensions::GeneralName;
use x509_parser::pem::parse_x509_pem;

const CREATE_CERTIFICATE: &str = "istio.v1.auth.IstioCertificateService/CreateCertificate";
const CSDS: &str = "envoy.service.status.v3.ClientStatusDiscoveryService/FetchClientStatus";
const AUTH_FAILURES: &str = "pilot_xds_auth_failures_total";
/// The issuer and audience of the control plane's own tokens.
const ISSUER: &str = "egress-mesh-control-plane";
const AUDIENCE: &str = "istio-ca";
/// The control plane's token signing key in its CA directory.
const TOKEN_KEY: &str = "token-key.pem";
/// A cluster's service-account token issuer, and the id of its key.
const CLUSTER_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
const CLUSTER_KEY_ID: &str = "cluster-key-1";
/// How long a call or a refusal may take.
const CALL: Duration = Duration::from_secs(10);
/// How long a counted refusal may take to show in the metrics.
const COUNTED: Duration = Duration::from_secs(5);

fn serve() -> Result<(ConfigDir, ControlPlane)> {
    let config = ConfigDir::new()?;
    config.write("httpbin.yaml", HTTPBIN_SERVICE_ENTRY)?;
    let control_plane = ControlPlane::start(config.path(), None)?;
    Ok((config, control_plane))
}

fn spiffe(namespace: &str, service_account: &str) -> String {
    format!("spiffe://cluster.local/ns/{namespace}/sa/{service_account}")
}

/// A CSR as a workload makes it: a fresh P-256 key, the given URI SANs.
fn csr(uris: &[&str]) -> Result<(String, KeyPair)> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.subject_alt_names = uris
        .iter()
        .map(|uri| Ok(SanType::URI(Ia5String::try_from(*uri)?)))
        .collect::<Result<_>>()?;
    Ok((params.serialize_request(&key)?.pem()?, key))
}

fn create_certificate(grpcurl: &Grpcurl, csr: &str) -> Result<CommandOutput> {
    grpcurl.call(
        CREATE_CERTIFICATE,
        &json!({ "csr": csr, "validity_duration": 3600 }),
        CALL,
    )
}

/// The code and message grpcurl printed for a failed call
/// (`Code: Unauthenticated` / `Message: ..`).
fn grpc_error(output: &CommandOutput) -> Result<(String, String)> {
    ensure!(!output.success(), "the call succeeded: {}", output.stdout);
    let field = |name: &str| {
        output
            .stderr
            .lines()
            .find_map(|line| line.trim().strip_prefix(name))
            .map(|value| value.trim().to_string())
    };
    let code = field("Code:")
        .with_context(|| format!("grpcurl failed without a gRPC status: {}", output.stderr))?;
    Ok((code, field("Message:").unwrap_or_default()))
}

/// Checks that a refusal was counted under `reason` (once more than
/// `before`) and logged on one line naming it, and that the message says
/// something an operator can act on.
fn ensure_counted(
    control_plane: &ControlPlane,
    reason: &str,
    before: f64,
    message: &str,
) -> Result<()> {
    ensure!(!message.is_empty(), "{reason}: the status has no message");
    eventually(COUNTED, || {
        let count = failures(control_plane, reason)?;
        ensure!(
            count > before,
            "{AUTH_FAILURES}{{reason=\"{reason}\"}} is {count}, was {before}"
        );
        Ok(())
    })?;
    let logs = control_plane.logs();
    ensure!(
        logs.lines().any(|line| line.contains(reason)),
        "no log line names {reason}:\n{logs}"
    );
    Ok(())
}

fn failures(control_plane: &ControlPlane, reason: &str) -> Result<f64> {
    Ok(control_plane
        .metric_with(AUTH_FAILURES, &[("reason", reason)])?
        .unwrap_or_default())
}

/// Calls CreateCertificate with `grpcurl` and checks it is refused with
/// `code` and counted under one of `reasons`; returns the message.
fn ensure_refused(
    control_plane: &ControlPlane,
    grpcurl: &Grpcurl,
    csr: &str,
    code: &str,
    reasons: &[&str],
) -> Result<String> {
    let before: Vec<f64> = reasons
        .iter()
        .map(|reason| failures(control_plane, reason))
        .collect::<Result<_>>()?;
    let (got, message) = grpc_error(&create_certificate(grpcurl, csr)?)?;
    ensure!(got == code, "expected {code}, got {got}: {message}");
    let counted = eventually(COUNTED, || {
        for (reason, before) in reasons.iter().zip(&before) {
            if failures(control_plane, reason)? > *before {
                return Ok(*reason);
            }
        }
        bail!("none of {reasons:?} counted")
    })?;
    ensure_counted(control_plane, counted, 0.0, &message)?;
    println!("{code} ({counted}): {message}");
    Ok(message)
}

/// A token with `claims`, signed ES256 with the PEM key `key`.
fn sign(claims: &Value, key: &[u8]) -> Result<String> {
    Ok(jsonwebtoken::encode(
        &Header::new(Algorithm::ES256),
        claims,
        &EncodingKey::from_ec_pem(key)?,
    )?)
}

/// The control plane's claims for `namespace/service_account`, valid for
/// an hour, `edit` applied.
fn claims(namespace: &str, service_account: &str, edit: impl FnOnce(&mut Value)) -> Value {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let mut claims = json!({
        "iss": ISSUER,
        "sub": format!("system:serviceaccount:{namespace}:{service_account}"),
        "aud": [AUDIENCE],
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "kubernetes.io": {
            "namespace": namespace,
            "serviceaccount": { "name": service_account },
        },
    });
    edit(&mut claims);
    claims
}

/// `claims` as a Kubernetes projected service-account token: signed by
/// the cluster key `key` (PEM), with its key id.
fn kubernetes_token(claims: &Value, key: &[u8]) -> Result<String> {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(CLUSTER_KEY_ID.to_string());
    Ok(jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_ec_pem(key)?,
    )?)
}

/// A P-256 key that is not the control plane's, PEM (PKCS#8).
fn other_key() -> Result<String> {
    Ok(KeyPair::generate()?.serialize_pem())
}

#[test]
fn a_valid_token_gets_a_certificate_for_its_own_identity_only() -> Result<()> {
    let (_config, control_plane) = serve()?;
    let token = control_plane.ca().token("default", "sleep")?;
    let grpcurl = control_plane.grpcurl_calling_with(Some(&token))?;
    let own = spiffe("default", "sleep");

    let (request, key) = csr(&[&own])?;
    let output = create_certificate(&grpcurl, &request)?;
    output.ensure_success()?;
    ensure!(
        !output.stdout.contains("PRIVATE KEY"),
        "a private key was sent: {}",
        output.stdout
    );
    let chain: Vec<String> = serde_json::from_value(output.json()?["certChain"].clone())
        .context("the response has a certChain")?;
    ensure!(chain.len() == 2, "[leaf, root] as istiod sends: {chain:#?}");
    let root = fs::read_to_string(control_plane.ca().root_cert())?;
    ensure!(
        chain[1].trim() == root.trim(),
        "the chain ends with root-cert.pem"
    );
    let (_, pem) = parse_x509_pem(chain[0].as_bytes())?;
    let leaf = pem.parse_x509()?;
    ensure!(
        leaf.public_key().subject_public_key.data.as_ref() == key.public_key_raw(),
        "the leaf certifies the CSR's key"
    );
    let uris: Vec<String> = leaf
        .subject_alternative_name()?
        .context("the leaf has subject alt names")?
        .value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::URI(uri) => Some(uri.to_string()),
            _ => None,
        })
        .collect();
    ensure!(uris == [own.clone()], "the leaf names {own} only: {uris:?}");
    let lifetime = leaf.validity().not_after.timestamp() - leaf.validity().not_before.timestamp();
    ensure!(
        lifetime <= 3600 + 60,
        "the requested hour is honoured (it is shorter than the default): {lifetime}s"
    );

    // Another identity, alone or next to its own: refused.
    let gateway = spiffe("istio-system", "istio-egressgateway-service-account");
    for uris in [vec![gateway.as_str()], vec![own.as_str(), gateway.as_str()]] {
        let (request, _) = csr(&uris)?;
        ensure_refused(
            &control_plane,
            &grpcurl,
            &request,
            "PermissionDenied",
            &["csr_identity_mismatch"],
        )
        .with_context(|| format!("a CSR for {uris:?}"))?;
    }
    // Not a CSR at all.
    ensure_refused(
        &control_plane,
        &grpcurl,
        "-----BEGIN CERTIFICATE REQUEST-----\nbm90IGEgQ1NS\n-----END CERTIFICATE REQUEST-----\n",
        "InvalidArgument",
        &["invalid_csr"],
    )?;
    ensure!(
        !control_plane.logs().contains(&token),
        "the token was logged"
    );
    Ok(())
}

#[test]
fn missing_malformed_edited_and_foreign_tokens_are_unauthenticated() -> Result<()> {
    let (_config, control_plane) = serve()?;
    let ca = control_plane.ca();
    let (request, _) = csr(&[&spiffe("default", "sleep")])?;
    let refused = |token: Option<&str>, reasons: &[&str]| {
        let grpcurl = control_plane.grpcurl_calling_with(token)?;
        ensure_refused(
            &control_plane,
            &grpcurl,
            &request,
            "Unauthenticated",
            reasons,
        )
    };

    refused(None, &["missing_token"])?;
    refused(Some("not-a-jwt"), &["malformed_token"])?;

    // A genuine token of default/sleep, its claims edited to another
    // namespace's service account: the signature no longer matches.
    let genuine = ca.token("default", "sleep")?;
    let forged_claims = sign(
        &claims(
            "istio-system",
            "istio-egressgateway-service-account",
            |_| {},
        ),
        other_key()?.as_bytes(),
    )?;
    let genuine_parts: Vec<&str> = genuine.split('.').collect();
    let forged_parts: Vec<&str> = forged_claims.split('.').collect();
    let edited = format!(
        "{}.{}.{}",
        genuine_parts[0], forged_parts[1], genuine_parts[2]
    );
    refused(Some(&edited), &["bad_signature"])?;
    // The same claims signed by a key of the attacker's own.
    refused(Some(&forged_claims), &["bad_signature"])?;
    // No signature at all (`alg: none`).
    let unsigned = format!(
        "{}.{}.",
        "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0", forged_parts[1]
    );
    refused(Some(&unsigned), &["malformed_token", "bad_signature"])?;

    // Signed with the control plane's own key, but for another audience
    // or from another issuer.
    let key = fs::read(ca.dir().join(TOKEN_KEY))
        .with_context(|| format!("reading {TOKEN_KEY} from the CA directory"))?;
    let other_audience = sign(
        &claims("default", "sleep", |claims| {
            claims["aud"] = json!(["kubernetes.default.svc"]);
        }),
        &key,
    )?;
    refused(Some(&other_audience), &["wrong_audience"])?;
    let other_issuer = sign(
        &claims("default", "sleep", |claims| {
            claims["iss"] = json!("https://attacker.example");
        }),
        &key,
    )?;
    refused(Some(&other_issuer), &["unknown_issuer"])?;

    // The same refusals hold for an ADS stream.
    let node = ads::node(
        &NodeId::new(NodeType::Sidecar, "10.0.0.1", "sleep", "default"),
        "sleep",
        &[("app", "sleep")],
    );
    for token in [None, Some(edited.as_str()), Some(forged_claims.as_str())] {
        let status = refusal(&control_plane.channel(), token, node.clone(), CALL)?
            .context("an ADS stream was served without a valid token")?;
        ensure!(
            status.code() == Code::Unauthenticated,
            "ADS with {token:?}: {status:?}"
        );
    }

    let logs = control_plane.logs();
    for token in [&genuine, &edited, &forged_claims, &other_audience] {
        ensure!(!logs.contains(token.as_str()), "a token was logged");
    }
    Ok(())
}

#[test]
fn an_expired_token_is_refused() -> Result<()> {
    let (_config, control_plane) = serve()?;
    let token = control_plane
        .ca()
        .token_expiring("default", "sleep", Duration::from_secs(1))?;
    let grpcurl = control_plane.grpcurl_calling_with(Some(&token))?;
    let (request, _) = csr(&[&spiffe("default", "sleep")])?;
    let before = failures(&control_plane, "expired_token")?;
    // However much clock skew the control plane allows, it ends.
    let message = eventually(Duration::from_secs(150), || {
        let (code, message) = grpc_error(&create_certificate(&grpcurl, &request)?)?;
        ensure!(code == "Unauthenticated", "{code}: {message}");
        Ok(message)
    })?;
    ensure_counted(&control_plane, "expired_token", before, &message)?;
    println!("expired: {message}");
    Ok(())
}

#[test]
fn a_token_speaks_only_for_its_own_namespace_and_service_account() -> Result<()> {
    let (_config, control_plane) = serve()?;
    let channel = control_plane.channel();
    let token = control_plane.ca().token("default", "sleep")?;
    let stream = |node_id: NodeId, service_account: &str| {
        refusal(
            &channel,
            Some(&token),
            ads::node(&node_id, service_account, &[("app", "sleep")]),
            CALL,
        )
    };
    let sleep = NodeId::new(NodeType::Sidecar, "10.0.0.1", "sleep", "default");
    ensure!(
        stream(sleep.clone(), "sleep")?.is_none(),
        "the token's own node is served"
    );

    let mismatches = [
        // A node of namespace prod with default's token.
        (
            NodeId::new(NodeType::Sidecar, "10.0.0.2", "payments", "prod"),
            "sleep",
        ),
        // The right namespace, another service account.
        (sleep, "istio-egressgateway-service-account"),
        // The egress gateway itself.
        (
            NodeId::new(
                NodeType::Router,
                "10.0.0.3",
                "istio-egressgateway",
                "istio-system",
            ),
            "istio-egressgateway-service-account",
        ),
    ];
    for (node_id, service_account) in mismatches {
        let before = failures(&control_plane, "node_mismatch")?;
        let status = stream(node_id.clone(), service_account)?
            .with_context(|| format!("{node_id} ({service_account}) was served"))?;
        ensure!(
            status.code() == Code::PermissionDenied,
            "{node_id} ({service_account}): {status:?}"
        );
        ensure_counted(&control_plane, "node_mismatch", before, status.message())?;
        println!("{node_id} as {service_account}: {}", status.message());
    }

    // Every proxy's config is for operators (istio-system) only.
    let csds = control_plane
        .grpcurl_calling_with(Some(&token))?
        .call(CSDS, &json!({}), CALL)?;
    let (code, message) = grpc_error(&csds)?;
    ensure!(
        code == "PermissionDenied",
        "CSDS as default/sleep: {code}: {message}"
    );
    control_plane
        .grpcurl()?
        .call(CSDS, &json!({}), CALL)?
        .ensure_success()
        .context("CSDS as an operator")?;
    Ok(())
}

#[test]
fn clients_without_tls_cannot_use_the_secure_port() -> Result<()> {
    let (_config, control_plane) = serve()?;
    let addr: SocketAddr = control_plane.xds_addr();
    let listed = Grpcurl::plaintext(addr).list()?;
    ensure!(
        !listed.success(),
        "plaintext grpcurl listed services on the TLS port: {}",
        listed.stdout
    );
    let token = control_plane.ca().token("default", "sleep")?;
    let node = ads::node(
        &NodeId::new(NodeType::Sidecar, "10.0.0.1", "sleep", "default"),
        "sleep",
        &[("app", "sleep")],
    );
    let plaintext = refusal(&ControlChannel::plaintext(addr), Some(&token), node, CALL);
    ensure!(
        !matches!(plaintext, Ok(None)),
        "a plaintext ADS stream was served on the TLS port"
    );
    println!("plaintext grpcurl: {}", listed.stderr.trim());
    Ok(())
}

#[test]
fn a_kubernetes_projected_token_is_accepted_against_the_clusters_jwks() -> Result<()> {
    let cluster_key = other_key()?;
    let mut jwk = Jwk::from_encoding_key(
        &EncodingKey::from_ec_pem(cluster_key.as_bytes())?,
        Algorithm::ES256,
    )?;
    jwk.common.key_id = Some(CLUSTER_KEY_ID.to_string());
    let jwks_dir = tempfile::tempdir()?;
    let jwks = jwks_dir.path().join("jwks.json");
    fs::write(&jwks, serde_json::to_string(&JwkSet { keys: vec![jwk] })?)?;
    let config = ConfigDir::new()?;
    config.write("httpbin.yaml", HTTPBIN_SERVICE_ENTRY)?;
    let control_plane = ControlPlane::options(config.path())
        .arg("--jwks")
        .arg(&jwks)
        .arg("--jwt-issuer")
        .arg(CLUSTER_ISSUER)
        .start()?;
    // As the kubelet projects it for a pod of `sleep`.
    let projected = claims("default", "sleep", |claims| {
        claims["iss"] = json!(CLUSTER_ISSUER);
        claims["kubernetes.io"]["pod"] = json!({ "name": "sleep-7d9c5", "uid": "1f0c" });
        claims["kubernetes.io"]["serviceaccount"]["uid"] = json!("9b2e");
    });
    let token = kubernetes_token(&projected, cluster_key.as_bytes())?;
    let (request, _) = csr(&[&spiffe("default", "sleep")])?;
    create_certificate(&control_plane.grpcurl_calling_with(Some(&token))?, &request)?
        .ensure_success()
        .context("a cluster's projected token")?;
    let node = ads::node(
        &NodeId::new(NodeType::Sidecar, "10.0.0.1", "sleep-7d9c5", "default"),
        "sleep",
        &[("app", "sleep")],
    );
    ensure!(
        refusal(&control_plane.channel(), Some(&token), node, CALL)?.is_none(),
        "an ADS stream with a cluster's projected token is served"
    );

    // The cluster's issuer, another key.
    let forged = kubernetes_token(&projected, other_key()?.as_bytes())?;
    ensure_refused(
        &control_plane,
        &control_plane.grpcurl_calling_with(Some(&forged))?,
        &request,
        "Unauthenticated",
        &["bad_signature"],
    )?;
    // The control plane's own tokens still work beside them.
    let own = control_plane.ca().token("default", "sleep")?;
    create_certificate(&control_plane.grpcurl_calling_with(Some(&own))?, &request)?
        .ensure_success()
        .context("the control plane's own token")?;
    Ok(())
}
