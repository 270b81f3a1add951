//! The mesh CA as its users rely on it: SPIFFE leaf certificates signed by
//! the root, lifetimes and rotation, a root that persists, no key material in
//! debug output, and a root directory that is whole and consistent.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::pem::Pem;
use x509_parser::public_key::PublicKey;

use super::*;

fn sleep_identity() -> Identity {
    Identity {
        trust_domain: "cluster.local".to_string(),
        namespace: "default".to_string(),
        service_account: "sleep".to_string(),
    }
}

fn pem(text: &str) -> Pem {
    x509_parser::pem::parse_x509_pem(text.as_bytes())
        .expect("PEM certificate")
        .1
}

fn time_of(x509: &X509Certificate<'_>, not_after: bool) -> SystemTime {
    let validity = x509.validity();
    let t = if not_after {
        validity.not_after
    } else {
        validity.not_before
    };
    SystemTime::from(t.to_datetime())
}

#[test]
fn workload_certificate_is_a_spiffe_leaf_signed_by_the_root() {
    let ca = CertificateAuthority::generate("cluster.local", DEFAULT_WORKLOAD_CERT_TTL)
        .expect("generate");
    let cert = ca.issue(&sleep_identity()).expect("issue");
    let root_pem = pem(ca.root_pem());
    let root = root_pem.parse_x509().expect("root parses");
    let leaf_pem = pem(&cert.chain_pem);
    let leaf = leaf_pem.parse_x509().expect("leaf parses");

    let san = leaf
        .subject_alternative_name()
        .expect("one SAN extension")
        .expect("SAN present");
    assert!(san.critical, "the subject is empty, so the SAN is critical");
    assert_eq!(
        san.value.general_names,
        vec![GeneralName::URI(
            "spiffe://cluster.local/ns/default/sa/sleep"
        )]
    );
    assert!(leaf.subject().iter().next().is_none(), "empty subject");
    assert_eq!(leaf.issuer(), root.subject());
    leaf.verify_signature(Some(root.public_key()))
        .expect("the root signed the leaf");
    assert!(!leaf.is_ca());
    let eku = leaf
        .extended_key_usage()
        .expect("EKU")
        .expect("EKU present");
    assert!(eku.value.server_auth && eku.value.client_auth);
    match leaf.public_key().parsed().expect("public key") {
        PublicKey::EC(point) => assert_eq!(point.key_size(), 256, "P-256"),
        other => panic!("expected an EC key, got {other:?}"),
    }
    assert!(root.is_ca());
    assert!(
        cert.private_key_pem().contains("BEGIN PRIVATE KEY"),
        "PKCS#8 PEM key"
    );
}

#[test]
fn validity_and_rotation_follow_the_ttl() {
    let ttl = Duration::from_secs(3600);
    let ca = CertificateAuthority::generate("cluster.local", ttl).expect("generate");
    let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let cert = ca
        .issue_at(&sleep_identity(), now + Duration::from_millis(700))
        .expect("issue");
    assert_eq!(cert.not_before, now - Duration::from_secs(60));
    assert_eq!(cert.not_after, now + ttl);
    assert_eq!(
        cert.rotate_at,
        now + Duration::from_secs(2880),
        "80% of an hour"
    );
    let leaf_pem = pem(&cert.chain_pem);
    let leaf = leaf_pem.parse_x509().expect("leaf parses");
    assert_eq!(time_of(&leaf, false), cert.not_before);
    assert_eq!(time_of(&leaf, true), cert.not_after);
}

#[test]
fn workload_certificate_never_outlives_the_root() {
    let ca = CertificateAuthority::generate("cluster.local", DEFAULT_WORKLOAD_CERT_TTL)
        .expect("generate");
    let issued = ca.root_not_after - Duration::from_secs(3600);
    let cert = ca.issue_at(&sleep_identity(), issued).expect("issue");
    assert_eq!(cert.not_after, ca.root_not_after);
    assert_eq!(cert.rotate_at, issued + Duration::from_secs(2880));
}

#[test]
fn debug_output_has_no_key_material() {
    let ca = CertificateAuthority::generate("cluster.local", DEFAULT_WORKLOAD_CERT_TTL)
        .expect("generate");
    let cert = ca.issue(&sleep_identity()).expect("issue");
    for text in [format!("{cert:?}"), format!("{ca:?}")] {
        assert!(!text.contains("PRIVATE KEY"), "{text}");
        assert!(!text.contains(cert.private_key_pem()), "{text}");
    }
}

#[test]
fn a_created_root_is_kept_across_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca_dir = dir.path().join("ca");
    let first =
        CertificateAuthority::load_or_create(&ca_dir, "cluster.local", Duration::from_secs(60))
            .expect("create");
    assert_eq!(first.source(), &RootSource::Created(ca_dir.clone()));
    let mode = std::fs::metadata(ca_dir.join(CA_KEY_FILE))
        .expect("key written")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the key is private to its owner");

    let second =
        CertificateAuthority::load_or_create(&ca_dir, "cluster.local", Duration::from_secs(60))
            .expect("load");
    assert_eq!(second.source(), &RootSource::Loaded(ca_dir.clone()));
    assert_eq!(second.root_pem(), first.root_pem());
    assert_eq!(second.root_not_after, first.root_not_after);

    let cert = second.issue(&sleep_identity()).expect("issue");
    let root_pem = pem(first.root_pem());
    let root = root_pem.parse_x509().expect("root parses");
    let leaf_pem = pem(&cert.chain_pem);
    let leaf = leaf_pem.parse_x509().expect("leaf parses");
    assert_eq!(leaf.issuer(), root.subject());
    leaf.verify_signature(Some(root.public_key()))
        .expect("a loaded root signs as the created one did");
}

#[test]
fn a_directory_with_only_the_certificate_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    CertificateAuthority::load_or_create(dir.path(), "cluster.local", Duration::from_secs(60))
        .expect("create");
    std::fs::remove_file(dir.path().join(CA_KEY_FILE)).expect("remove key");
    let error =
        CertificateAuthority::load_or_create(dir.path(), "cluster.local", Duration::from_secs(60))
            .expect_err("incomplete");
    let message = error.to_string();
    assert!(
        message.contains("has ca-cert.pem but not ca-key.pem"),
        "{message}"
    );
}

#[test]
fn a_key_of_another_root_is_rejected() {
    let a = tempfile::tempdir().expect("tempdir");
    let b = tempfile::tempdir().expect("tempdir");
    for dir in [a.path(), b.path()] {
        CertificateAuthority::load_or_create(dir, "cluster.local", Duration::from_secs(60))
            .expect("create");
    }
    std::fs::copy(b.path().join(CA_KEY_FILE), a.path().join(CA_KEY_FILE)).expect("copy key");
    let error =
        CertificateAuthority::load(a.path(), Duration::from_secs(60)).expect_err("mismatch");
    assert!(matches!(error, CaError::KeyMismatch { .. }), "{error}");
}

#[test]
fn a_leaf_certificate_is_not_accepted_as_the_root() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca =
        CertificateAuthority::generate("cluster.local", Duration::from_secs(60)).expect("generate");
    let cert = ca.issue(&sleep_identity()).expect("issue");
    std::fs::write(dir.path().join(CA_CERT_FILE), &cert.chain_pem).expect("write cert");
    std::fs::write(dir.path().join(CA_KEY_FILE), cert.private_key_pem()).expect("write key");
    let error =
        CertificateAuthority::load(dir.path(), Duration::from_secs(60)).expect_err("not a CA");
    assert!(
        error.to_string().contains("not a CA certificate"),
        "{error}"
    );
}
