//! The Unix socket SDS is served on, as pilot-agent makes it: a stale
//! socket from an earlier run is replaced, the directory is created if
//! missing. Unlike pilot-agent's 0666 (which relies on a private
//! directory), the socket is 0600: only this user's Envoy may connect.

use std::fs::{DirBuilder, Permissions};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::path::Path;

use tokio::net::UnixListener;

use super::SdsError;

/// Binds `path`. Call on a tokio runtime.
pub(super) fn bind(path: &Path) -> Result<UnixListener, SdsError> {
    let error = |reason: String| SdsError::Socket {
        path: path.to_path_buf(),
        reason,
    };
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            std::fs::remove_file(path).map_err(|e| error(format!("remove the old socket: {e}")))?;
        }
        Ok(_) => {
            return Err(error(
                "a file that is not a socket is in the way; remove it or choose another --socket"
                    .to_string(),
            ));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(error(e.to_string())),
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        DirBuilder::new()
            .recursive(true)
            .mode(0o750)
            .create(parent)
            .map_err(|e| error(format!("create its directory: {e}")))?;
    }
    let listener = UnixListener::bind(path).map_err(|e| error(e.to_string()))?;
    std::fs::set_permissions(path, Permissions::from_mode(0o600))
        .map_err(|e| error(format!("make it private (0600): {e}")))?;
    Ok(listener)
}
