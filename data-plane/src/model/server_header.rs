//! The `server` response header an HTTP connection manager writes, as
//! Envoy's `server_name` and `server_header_transformation` say: by
//! default every response, local or from upstream, says `server: envoy`.

use std::sync::Arc;

use http::{HeaderMap, HeaderValue, header};

/// Envoy's name for itself when the connection manager names none.
pub const DEFAULT_SERVER_NAME: &str = "envoy";

/// What happens to a response's `server` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerHeader {
    /// Always this name (Envoy's default).
    Overwrite(HeaderValue),
    /// This name unless the response has one.
    AppendIfAbsent(HeaderValue),
    /// The response's own, or none.
    PassThrough,
}

impl Default for ServerHeader {
    fn default() -> Self {
        Self::Overwrite(HeaderValue::from_static(DEFAULT_SERVER_NAME))
    }
}

impl ServerHeader {
    pub fn apply(&self, headers: &mut HeaderMap) {
        match self {
            Self::Overwrite(name) => {
                headers.insert(header::SERVER, name.clone());
            }
            Self::AppendIfAbsent(name) => {
                headers
                    .entry(header::SERVER)
                    .or_insert_with(|| name.clone());
            }
            Self::PassThrough => {}
        }
    }
}

/// Shared by every request of a connection manager.
pub type SharedServerHeader = Arc<ServerHeader>;

#[cfg(test)]
mod tests {
    use super::*;

    fn with_server(value: Option<&'static str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(value) = value {
            headers.insert(header::SERVER, HeaderValue::from_static(value));
        }
        headers
    }

    fn server_after(rule: &ServerHeader, value: Option<&'static str>) -> Option<String> {
        let mut headers = with_server(value);
        rule.apply(&mut headers);
        headers
            .get(header::SERVER)
            .map(|v| v.to_str().unwrap_or_default().to_string())
    }

    #[test]
    fn envoys_default_overwrites_the_upstream_server() {
        let rule = ServerHeader::default();
        assert_eq!(
            server_after(&rule, Some("gunicorn")).as_deref(),
            Some("envoy")
        );
        assert_eq!(server_after(&rule, None).as_deref(), Some("envoy"));
    }

    #[test]
    fn append_if_absent_and_pass_through_keep_the_upstream_server() {
        let append = ServerHeader::AppendIfAbsent(HeaderValue::from_static("istio-envoy"));
        assert_eq!(
            server_after(&append, Some("gunicorn")).as_deref(),
            Some("gunicorn")
        );
        assert_eq!(server_after(&append, None).as_deref(), Some("istio-envoy"));
        assert_eq!(
            server_after(&ServerHeader::PassThrough, Some("gunicorn")).as_deref(),
            Some("gunicorn")
        );
        assert_eq!(server_after(&ServerHeader::PassThrough, None), None);
    }
}
