//! An HTTP connection manager's `server_name` and
//! `server_header_transformation` → model.

use http::HeaderValue;
use proto::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, http_connection_manager::ServerHeaderTransformation,
};

use super::At;
use crate::model::Error;
use crate::model::server_header::{DEFAULT_SERVER_NAME, ServerHeader};

pub(super) fn server_header(
    hcm: &HttpConnectionManager,
    at: &At<'_>,
) -> Result<ServerHeader, Error> {
    let name = if hcm.server_name.is_empty() {
        DEFAULT_SERVER_NAME
    } else {
        hcm.server_name.as_str()
    };
    let value = HeaderValue::from_str(name)
        .map_err(|_| at.field("server_name").error("not a valid header value"))?;
    match ServerHeaderTransformation::try_from(hcm.server_header_transformation) {
        Ok(ServerHeaderTransformation::Overwrite) => Ok(ServerHeader::Overwrite(value)),
        Ok(ServerHeaderTransformation::AppendIfAbsent) => Ok(ServerHeader::AppendIfAbsent(value)),
        Ok(ServerHeaderTransformation::PassThrough) => Ok(ServerHeader::PassThrough),
        Err(_) => Err(at
            .field("server_header_transformation")
            .error("unknown transformation")),
    }
}
