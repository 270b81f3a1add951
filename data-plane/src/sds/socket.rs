//! The Unix socket SDS is served on, as pilot-agent makes it: a stale
//! socket from an earlier run is replaced, the directory is created if
//! missing. Unlike pilot-agent's 0666 (which relies on a private
//! directory), only this user may connect: the socket is created under
//! umask 077 (never reachable by others, not even for an instant), then
//! set to 0600; and each connection's peer must be this user or root.

use std::fs::{DirBuilder, Permissions};
use std::future::ready;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::path::Path;

use futures::{Stream, StreamExt};
use nix::sys::stat::{Mode, umask};
use parking_lot::Mutex;
use tokio::net::{UnixListener, UnixStream};
use tokio_stream::wrappers::UnixListenerStream;

use super::SdsError;

/// Serializes this module's changes to the process umask, so that two
/// binds at once cannot leave it restrictive.
static UMASK: Mutex<()> = Mutex::new(());

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
    let listener = bind_private(path).map_err(|e| error(e.to_string()))?;
    std::fs::set_permissions(path, Permissions::from_mode(0o600))
        .map_err(|e| error(format!("make it private (0600): {e}")))?;
    Ok(listener)
}

/// Binds `path` under umask 077: the socket exists with no permission for
/// group and others. The umask is the process's, restored at once (nothing
/// between can panic); files other threads create meanwhile are only more
/// private.
pub(super) fn bind_private(path: &Path) -> std::io::Result<UnixListener> {
    let bound = {
        let _only_one = UMASK.lock();
        let previous = umask(Mode::from_bits_truncate(0o077));
        let bound = std::os::unix::net::UnixListener::bind(path);
        umask(previous);
        bound?
    };
    bound.set_nonblocking(true)?;
    UnixListener::from_std(bound)
}

/// Whether a connection whose peer runs as `peer_uid` may be served by a
/// process running as `our_uid`: its own user (its Envoy) and root only.
pub(super) fn is_trusted_peer(peer_uid: u32, our_uid: u32) -> bool {
    peer_uid == our_uid || peer_uid == 0
}

/// The connections `listener` accepts from trusted peers; any other is
/// closed at once, with a warning.
pub(super) fn trusted_connections(
    listener: UnixListener,
) -> impl Stream<Item = std::io::Result<UnixStream>> {
    let our_uid = nix::unistd::geteuid().as_raw();
    UnixListenerStream::new(listener).filter(move |accepted| {
        ready(match accepted {
            Ok(connection) => is_trusted_connection(connection, our_uid),
            Err(_) => true,
        })
    })
}

fn is_trusted_connection(connection: &UnixStream, our_uid: u32) -> bool {
    match connection.peer_cred() {
        Ok(peer) if is_trusted_peer(peer.uid(), our_uid) => true,
        Ok(peer) => {
            tracing::warn!(
                uid = peer.uid(),
                pid = ?peer.pid(),
                "refused an SDS connection from another user: only uid {our_uid} (this agent's) and root may fetch this proxy's key"
            );
            false
        }
        Err(error) => {
            tracing::warn!(%error, "refused an SDS connection whose peer cannot be identified");
            false
        }
    }
}
