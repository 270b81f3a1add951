//! The root: created once and kept, checked when loaded, copied to
//! `root-cert.pem`; and the token key beside it.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use super::*;

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path)
        .expect("file written")
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn a_created_root_is_kept_across_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca_dir = dir.path().join("ca");
    let first =
        CertificateAuthority::load_or_create(&ca_dir, "cluster.local", Duration::from_secs(60))
            .expect("create");
    assert_eq!(first.source(), &RootSource::Created(ca_dir.clone()));
    assert_eq!(mode(&ca_dir.join(CA_KEY_FILE)), 0o600, "the key is private");

    let second =
        CertificateAuthority::load_or_create(&ca_dir, "cluster.local", Duration::from_secs(60))
            .expect("load");
    assert_eq!(second.source(), &RootSource::Loaded(ca_dir.clone()));
    assert_eq!(second.root_pem(), first.root_pem());
    assert_eq!(second.root_not_after, first.root_not_after);
}

#[test]
fn root_cert_pem_is_the_root_refreshed_at_every_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = CertificateAuthority::load_or_create(
        dir.path(),
        "cluster.local",
        DEFAULT_WORKLOAD_CERT_TTL,
    )
    .expect("create");
    let root_cert = dir.path().join(ROOT_CERT_FILE);
    let read = || std::fs::read_to_string(&root_cert).expect("root-cert.pem");
    assert_eq!(read(), ca.root_pem());
    assert_eq!(
        read(),
        std::fs::read_to_string(dir.path().join(CA_CERT_FILE)).expect("ca-cert.pem")
    );
    assert_eq!(mode(&root_cert), 0o644 & !umask(), "readable by proxies");

    std::fs::write(&root_cert, "stale").expect("overwrite");
    CertificateAuthority::load_or_create(dir.path(), "cluster.local", DEFAULT_WORKLOAD_CERT_TTL)
        .expect("load");
    assert_eq!(read(), ca.root_pem(), "refreshed from ca-cert.pem");
}

/// The process umask, as the mode of a newly created file shows it.
fn umask() -> u32 {
    let dir = tempfile::tempdir().expect("tempdir");
    let probe = dir.path().join("probe");
    std::fs::write(&probe, "").expect("probe");
    !mode(&probe) & 0o666
}

#[test]
fn the_token_key_is_created_private_once_then_reused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca_dir = dir.path().join("ca");
    let first = load_or_create_token_key(&ca_dir).expect("create");
    assert!(first.contains("BEGIN PRIVATE KEY"), "PKCS#8 PEM");
    let key = rcgen::KeyPair::from_pem(&first).expect("a key");
    assert!(key.is_compatible(&rcgen::PKCS_ECDSA_P256_SHA256), "P-256");
    assert_eq!(mode(&ca_dir.join(TOKEN_KEY_FILE)), 0o600);
    assert_eq!(load_or_create_token_key(&ca_dir).expect("reuse"), first);
    let leftovers: Vec<_> = std::fs::read_dir(&ca_dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(leftovers, [TOKEN_KEY_FILE], "no temporary file is left");
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
    let ca = new_ca(Duration::from_secs(60));
    let leaf = ca.issue_server_certificate(&[]).expect("issue");
    std::fs::write(dir.path().join(CA_CERT_FILE), &leaf.cert_pem).expect("write cert");
    std::fs::write(dir.path().join(CA_KEY_FILE), leaf.key_pem()).expect("write key");
    let error =
        CertificateAuthority::load(dir.path(), Duration::from_secs(60)).expect_err("not a CA");
    assert!(
        error.to_string().contains("not a CA certificate"),
        "{error}"
    );
}
