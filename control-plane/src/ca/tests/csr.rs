//! CSRs: signed for the caller's identity only, with the request's key, a
//! lifetime no longer than the CA allows, and the chain root last.

use std::time::{Duration, UNIX_EPOCH};

use rcgen::{CertificateParams, KeyPair, SanType};
use x509_parser::extensions::GeneralName;
use x509_parser::public_key::PublicKey;

use super::*;

/// A CSR with `sans`, signed by a new P-256 key, and that key.
fn csr(sans: Vec<SanType>) -> (String, KeyPair) {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let mut params = CertificateParams::default();
    params.subject_alt_names = sans;
    let csr = params.serialize_request(&key).expect("CSR");
    (csr.pem().expect("PEM"), key)
}

fn uri(text: &str) -> SanType {
    SanType::URI(text.try_into().expect("IA5"))
}

fn sleep_csr() -> (String, KeyPair) {
    csr(vec![uri("spiffe://cluster.local/ns/default/sa/sleep")])
}

#[test]
fn a_csr_for_the_callers_identity_is_signed_with_its_key() {
    let ca = new_ca(DEFAULT_WORKLOAD_CERT_TTL);
    let (csr, key) = sleep_csr();
    let signed = ca.sign_csr(&sleep_identity(), &csr, None).expect("signed");
    assert_eq!(signed.chain.len(), 2, "leaf and root");
    assert_eq!(signed.chain[1], ca.root_pem(), "the root is last");
    let leaf_pem = pem(&signed.chain[0]);
    let leaf = leaf_pem.parse_x509().expect("leaf");
    let root_pem = pem(ca.root_pem());
    let root = root_pem.parse_x509().expect("root");
    leaf.verify_signature(Some(root.public_key()))
        .expect("the root signed the leaf");
    assert_eq!(
        leaf.public_key().subject_public_key.data.as_ref(),
        key.public_key_raw(),
        "the certificate carries the workload's own key"
    );
    let san = leaf.subject_alternative_name().expect("SAN").expect("SAN");
    assert!(san.critical, "the subject is empty, so the SAN is critical");
    assert_eq!(
        san.value.general_names,
        vec![GeneralName::URI(
            "spiffe://cluster.local/ns/default/sa/sleep"
        )]
    );
    assert!(!leaf.is_ca());
    let eku = leaf.extended_key_usage().expect("EKU").expect("EKU");
    assert!(eku.value.server_auth && eku.value.client_auth);
    assert!(matches!(
        leaf.public_key().parsed().expect("key"),
        PublicKey::EC(_)
    ));
}

#[test]
fn a_csr_without_sans_is_signed_for_the_callers_identity() {
    let ca = new_ca(DEFAULT_WORKLOAD_CERT_TTL);
    let (csr, _) = csr(Vec::new());
    let signed = ca.sign_csr(&sleep_identity(), &csr, None).expect("signed");
    let leaf_pem = pem(&signed.chain[0]);
    let leaf = leaf_pem.parse_x509().expect("leaf");
    let san = leaf.subject_alternative_name().expect("SAN").expect("SAN");
    assert_eq!(
        san.value.general_names,
        vec![GeneralName::URI(
            "spiffe://cluster.local/ns/default/sa/sleep"
        )]
    );
}

#[test]
fn a_csr_for_another_identity_is_refused() {
    let ca = new_ca(DEFAULT_WORKLOAD_CERT_TTL);
    for sans in [
        vec![uri("spiffe://cluster.local/ns/prod/sa/payments-admin")],
        vec![
            uri("spiffe://cluster.local/ns/default/sa/sleep"),
            uri("spiffe://cluster.local/ns/prod/sa/payments-admin"),
        ],
        vec![uri("spiffe://other.domain/ns/default/sa/sleep")],
        vec![SanType::DnsName(
            "istiod.istio-system.svc".try_into().expect("IA5"),
        )],
    ] {
        let (csr, _) = csr(sans.clone());
        let error = ca
            .sign_csr(&sleep_identity(), &csr, None)
            .expect_err("another identity");
        assert!(
            matches!(error, CsrError::IdentityMismatch { .. }),
            "{sans:?}: {error}"
        );
    }
    let (csr, _) = csr(vec![uri(
        "spiffe://cluster.local/ns/prod/sa/payments-admin",
    )]);
    let error = ca
        .sign_csr(&sleep_identity(), &csr, None)
        .expect_err("refused");
    assert_eq!(
        error.to_string(),
        "URI \"spiffe://cluster.local/ns/prod/sa/payments-admin\""
    );
}

#[test]
fn a_csr_with_an_ip_or_email_san_or_an_upper_case_spiffe_id_is_refused() {
    let ca = new_ca(DEFAULT_WORKLOAD_CERT_TTL);
    let spiffe_id = uri("spiffe://cluster.local/ns/default/sa/sleep");
    let cases = [
        (
            SanType::IpAddress("10.1.0.5".parse().expect("IP")),
            "IP 10.1.0.5",
        ),
        (
            SanType::Rfc822Name("sleep@cluster.local".try_into().expect("IA5")),
            "email \"sleep@cluster.local\"",
        ),
        (
            uri("spiffe://cluster.local/ns/Default/sa/sleep"),
            "URI \"spiffe://cluster.local/ns/Default/sa/sleep\"",
        ),
        (
            uri("SPIFFE://cluster.local/ns/default/sa/sleep"),
            "URI \"SPIFFE://cluster.local/ns/default/sa/sleep\"",
        ),
    ];
    for (san, quoted) in cases {
        let (csr, _) = csr(vec![spiffe_id.clone(), san]);
        let error = ca
            .sign_csr(&sleep_identity(), &csr, None)
            .expect_err("a SAN of no SPIFFE id of the token");
        assert!(
            matches!(error, CsrError::IdentityMismatch { .. }),
            "{quoted}: {error}"
        );
        assert_eq!(error.to_string(), quoted);
    }
}

#[test]
fn a_refused_san_is_quoted_so_that_it_cannot_forge_a_log_line() {
    let ca = new_ca(DEFAULT_WORKLOAD_CERT_TTL);
    let (csr, _) = csr(vec![uri(
        "spiffe://cluster.local/ns/default/sa/sleep\nINFO signed a workload certificate",
    )]);
    let error = ca
        .sign_csr(&sleep_identity(), &csr, None)
        .expect_err("another identity");
    assert_eq!(
        error.to_string(),
        r#"URI "spiffe://cluster.local/ns/default/sa/sleep\nINFO signed a workload certificate""#
    );
}

#[test]
fn a_csr_whose_signature_does_not_verify_is_invalid() {
    let ca = new_ca(DEFAULT_WORKLOAD_CERT_TTL);
    let (csr, _) = sleep_csr();
    // Flip one base64 character inside the signature, at the end of the DER.
    let end = csr.find("-----END").expect("PEM end");
    let body_end = csr[..end].trim_end().len();
    let mut tampered = csr.clone().into_bytes();
    let at = body_end - 8;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("ASCII");
    let error = ca
        .sign_csr(&sleep_identity(), &tampered, None)
        .expect_err("tampered");
    assert!(matches!(error, CsrError::Invalid(_)), "{error}");
    for garbage in ["", "not a CSR", ca.root_pem()] {
        let error = ca
            .sign_csr(&sleep_identity(), garbage, None)
            .expect_err("not a CSR");
        assert!(
            matches!(error, CsrError::Invalid(_)),
            "{garbage:?}: {error}"
        );
    }
}

#[test]
fn a_csr_asking_for_a_ca_certificate_is_invalid() {
    let ca = new_ca(DEFAULT_WORKLOAD_CERT_TTL);
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let mut params = CertificateParams::default();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let csr = params
        .serialize_request(&key)
        .expect("CSR")
        .pem()
        .expect("PEM");
    let error = ca.sign_csr(&sleep_identity(), &csr, None).expect_err("CA");
    assert!(matches!(error, CsrError::Invalid(_)), "{error}");
}

#[test]
fn the_lifetime_is_the_shorter_of_the_requested_one_and_the_workload_ttl() {
    let ttl = Duration::from_secs(3600);
    let ca = new_ca(ttl);
    let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let issued = now + Duration::from_millis(700);
    let (csr, _) = sleep_csr();
    let cases = [
        (None, ttl),
        (Some(Duration::ZERO), ttl),
        (Some(Duration::from_secs(600)), Duration::from_secs(600)),
        (Some(Duration::from_secs(7200)), ttl),
    ];
    for (requested, lifetime) in cases {
        let signed = ca
            .sign_csr_at(&sleep_identity(), &csr, requested, issued)
            .expect("signed");
        assert_eq!(signed.not_after, now + lifetime, "{requested:?}");
        let leaf_pem = pem(&signed.chain[0]);
        let leaf = leaf_pem.parse_x509().expect("leaf");
        assert_eq!(time_of(&leaf, true), now + lifetime);
        assert_eq!(
            time_of(&leaf, false),
            now - Duration::from_secs(60),
            "a minute of clock skew"
        );
    }
}

#[test]
fn a_workload_certificate_never_outlives_the_root() {
    let ca = new_ca(DEFAULT_WORKLOAD_CERT_TTL);
    let issued = ca.root_not_after - Duration::from_secs(3600);
    let (csr, _) = sleep_csr();
    let signed = ca
        .sign_csr_at(&sleep_identity(), &csr, None, issued)
        .expect("signed");
    assert_eq!(signed.not_after, ca.root_not_after);
}

#[test]
fn once_the_root_has_expired_nothing_is_signed() {
    let ca = new_ca(DEFAULT_WORKLOAD_CERT_TTL);
    let (csr, _) = sleep_csr();
    let last_second = ca.root_not_after - Duration::from_secs(1);
    let signed = ca
        .sign_csr_at(&sleep_identity(), &csr, None, last_second)
        .expect("the root is valid for one more second");
    let leaf_pem = pem(&signed.chain[0]);
    let leaf = leaf_pem.parse_x509().expect("leaf");
    assert!(time_of(&leaf, false) < time_of(&leaf, true));
    for now in [
        ca.root_not_after,
        ca.root_not_after + Duration::from_secs(3600),
    ] {
        let error = ca
            .sign_csr_at(&sleep_identity(), &csr, None, now)
            .expect_err("expired root");
        assert!(
            matches!(error, CsrError::Issue(CaError::RootExpired { .. })),
            "{error}"
        );
        let at = humantime::format_rfc3339_seconds(ca.root_not_after);
        assert!(
            error.to_string().starts_with(&format!(
                "the root expired on {at}; replace ca-cert.pem/ca-key.pem"
            )),
            "{error}"
        );
    }
}

#[test]
fn each_certificate_has_its_own_serial_even_for_one_key() {
    let ca = new_ca(DEFAULT_WORKLOAD_CERT_TTL);
    let (csr, _) = sleep_csr();
    let serial = |chain: &[String]| {
        let leaf_pem = pem(&chain[0]);
        let leaf = leaf_pem.parse_x509().expect("leaf");
        leaf.raw_serial().to_vec()
    };
    let first = ca.sign_csr(&sleep_identity(), &csr, None).expect("first");
    let second = ca.sign_csr(&sleep_identity(), &csr, None).expect("second");
    assert_ne!(serial(&first.chain), serial(&second.chain));
}

/// A CSR for the sleep identity in `tests/fixtures/csr` (made with openssl,
/// for keys rcgen cannot generate).
fn fixture(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/csr")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A CSR for the sleep identity with a new key of `algorithm`.
fn csr_with(algorithm: &'static rcgen::SignatureAlgorithm) -> String {
    let key = KeyPair::generate_for(algorithm).expect("key");
    let mut params = CertificateParams::default();
    params.subject_alt_names = vec![uri("spiffe://cluster.local/ns/default/sa/sleep")];
    params
        .serialize_request(&key)
        .expect("CSR")
        .pem()
        .expect("PEM")
}

#[test]
fn an_rsa_2048_csr_is_signed_for_its_key() {
    let ca = new_ca(DEFAULT_WORKLOAD_CERT_TTL);
    let signed = ca
        .sign_csr(&sleep_identity(), &fixture("rsa-2048.csr.pem"), None)
        .expect("RSA 2048 is accepted");
    let leaf_pem = pem(&signed.chain[0]);
    let leaf = leaf_pem.parse_x509().expect("leaf");
    assert!(matches!(
        leaf.public_key().parsed().expect("key"),
        PublicKey::RSA(_)
    ));
}

#[test]
fn a_csr_with_a_key_other_than_p256_or_rsa_2048_is_invalid_naming_the_accepted_keys() {
    let ca = new_ca(DEFAULT_WORKLOAD_CERT_TTL);
    let cases = [
        (fixture("rsa-1024.csr.pem"), "a 1024-bit RSA key"),
        (
            fixture("p256-sha384.csr.pem"),
            "a P-256 key signed with ecdsa-with-SHA384",
        ),
        (
            csr_with(&rcgen::PKCS_ECDSA_P384_SHA384),
            "an ECDSA key on curve secp384r1",
        ),
        (csr_with(&rcgen::PKCS_ED25519), "a key of type ed25519"),
    ];
    for (csr, key) in cases {
        let error = ca
            .sign_csr(&sleep_identity(), &csr, None)
            .expect_err("refused key");
        assert!(matches!(error, CsrError::Invalid(_)), "{key}: {error}");
        assert_eq!(
            error.to_string(),
            format!(
                "its key is {key}; this CA signs ECDSA P-256 keys (requests signed with SHA-256) and RSA keys of at least 2048 bits"
            )
        );
    }
}
