//! The files of a CA directory besides the root: `root-cert.pem` (the root
//! as proxies and operators read it, Istio's name) and `token-key.pem` (the
//! key tokens are signed with), and how each is written.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::CaError;

/// The root certificate as proxies trust it (`--ca-root`), as Istio names
/// it: a copy of `ca-cert.pem`, refreshed at every start.
pub const ROOT_CERT_FILE: &str = "root-cert.pem";
/// The key the control plane signs its tokens with: ECDSA P-256, PKCS#8
/// PEM, readable by its owner only.
pub const TOKEN_KEY_FILE: &str = "token-key.pem";

/// Writes `root-cert.pem` in `dir`: through a temporary file renamed over
/// the old one, so that a reader never sees half a certificate.
pub(super) fn write_root_cert(dir: &Path, root_pem: &str) -> Result<(), CaError> {
    let path = dir.join(ROOT_CERT_FILE);
    let temporary = dir.join(format!(".{ROOT_CERT_FILE}.new"));
    let _ = std::fs::remove_file(&temporary);
    write_new_file(&temporary, root_pem, false)?;
    std::fs::rename(&temporary, &path).map_err(|source| CaError::Write { path, source })
}

/// The token key in `dir` (PKCS#8 PEM), generated and written (mode 0600)
/// when the file does not exist yet.
pub fn load_or_create_token_key(dir: &Path) -> Result<String, CaError> {
    let path = dir.join(TOKEN_KEY_FILE);
    if path.exists() {
        return read_file(&path);
    }
    std::fs::create_dir_all(dir).map_err(|source| CaError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let key =
        rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(CaError::Generate)?;
    let pem = key.serialize_pem();
    // Written whole under a temporary name, then linked into place: a
    // reader never sees half a key, and when another process (`serve` and
    // `token create` at once) links its key first, that one is used.
    let temporary = dir.join(format!(".{TOKEN_KEY_FILE}.{}", std::process::id()));
    let _ = std::fs::remove_file(&temporary);
    write_new_file(&temporary, &pem, true)?;
    let linked = std::fs::hard_link(&temporary, &path);
    let _ = std::fs::remove_file(&temporary);
    match linked {
        Ok(()) => Ok(pem),
        Err(source) if source.kind() == std::io::ErrorKind::AlreadyExists => read_file(&path),
        Err(source) => Err(CaError::Write { path, source }),
    }
}

pub(super) fn read_file(path: &Path) -> Result<String, CaError> {
    std::fs::read_to_string(path).map_err(|source| CaError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes `contents` to a new file; `private` files are readable by the
/// owner only.
pub(super) fn write_new_file(path: &Path, contents: &str, private: bool) -> Result<(), CaError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    if private {
        options.mode(0o600);
    }
    options
        .open(path)
        .and_then(|mut file| file.write_all(contents.as_bytes()))
        .map_err(|source| CaError::Write {
            path: path.to_path_buf(),
            source,
        })
}
