//! An HTTP connection manager's path settings (`normalize_path`,
//! `merge_slashes`, `path_with_escaped_slashes_action`) and its request id
//! extension → model; what the agent cannot do is NACKed.

use proto::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, http_connection_manager::PathWithEscapedSlashesAction,
};
use proto::pb::envoy::extensions::request_id::uuid::v3::UuidRequestIdConfig;

use super::{At, decode};
use crate::model::Error;
use crate::model::path_normalization::{EscapedSlashes, PathNormalization};

const UUID_REQUEST_ID: &str =
    "type.googleapis.com/envoy.extensions.request_id.uuid.v3.UuidRequestIdConfig";

/// The path settings; unset `normalize_path` is Envoy's default (off), as
/// is `IMPLEMENTATION_SPECIFIC_DEFAULT` for escaped slashes (kept).
pub(super) fn path_normalization(
    hcm: &HttpConnectionManager,
    at: &At<'_>,
) -> Result<PathNormalization, Error> {
    let escaped_slashes = match PathWithEscapedSlashesAction::try_from(
        hcm.path_with_escaped_slashes_action,
    ) {
        Ok(
            PathWithEscapedSlashesAction::ImplementationSpecificDefault
            | PathWithEscapedSlashesAction::KeepUnchanged,
        ) => EscapedSlashes::Keep,
        Ok(PathWithEscapedSlashesAction::UnescapeAndForward) => EscapedSlashes::Unescape,
        _ => {
            return Err(at.field("path_with_escaped_slashes_action").error(
                "only KEEP_UNCHANGED and UNESCAPE_AND_FORWARD are supported (no redirect or rejection of escaped slashes)",
            ));
        }
    };
    if hcm.path_normalization_options.is_some() {
        return Err(at
            .field("path_normalization_options")
            .error("not supported: only normalize_path and merge_slashes transform paths"));
    }
    request_id_extension(hcm, at)?;
    Ok(PathNormalization {
        normalize: hcm.normalize_path.as_ref().is_some_and(|v| v.value),
        merge_slashes: hcm.merge_slashes,
        escaped_slashes,
    })
}

/// Only Envoy's UUID request ids (what the agent generates, also its
/// default when the extension is absent).
fn request_id_extension(hcm: &HttpConnectionManager, at: &At<'_>) -> Result<(), Error> {
    let Some(extension) = &hcm.request_id_extension else {
        return Ok(());
    };
    let at = at.field("request_id_extension.typed_config");
    let Some(any) = &extension.typed_config else {
        return Err(at.error("a request id extension needs its config"));
    };
    decode::<UuidRequestIdConfig>(any, UUID_REQUEST_ID, &at)?;
    Ok(())
}
