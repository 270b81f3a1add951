//! Header handling shared by requests and responses: hop-by-hop headers,
//! a route's header edits, and a request's authority.

use http::Uri;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};

use crate::model::route::HeaderToAdd;

const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::UPGRADE,
    header::TRANSFER_ENCODING,
];

/// Removes the headers that concern one connection only.
pub(super) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
}

/// Applies a route's header edits: the removals, then the additions
/// (appended, or replacing the existing values when `overwrite` is set).
pub(super) fn edit(headers: &mut HeaderMap, remove: &[String], add: &[HeaderToAdd]) {
    for name in remove {
        headers.remove(name.as_str());
    }
    for add in add {
        if add.overwrite {
            headers.insert(add.name.clone(), add.value.clone());
        } else {
            headers.append(add.name.clone(), add.value.clone());
        }
    }
}

/// The request's authority: the absolute URI's, else the Host header.
pub(super) fn authority(uri: &Uri, headers: &HeaderMap) -> Option<HeaderValue> {
    match uri.authority() {
        Some(authority) => HeaderValue::from_str(authority.as_str()).ok(),
        None => headers.get(header::HOST).cloned(),
    }
}

/// A header value as text, empty when absent or not visible ASCII.
pub(super) fn text(value: Option<&HeaderValue>) -> &str {
    value.and_then(|v| v.to_str().ok()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(name: &'static str, value: &'static str, overwrite: bool) -> HeaderToAdd {
        HeaderToAdd {
            name: HeaderName::from_static(name),
            value: HeaderValue::from_static(value),
            overwrite,
        }
    }

    #[test]
    fn edits_remove_then_append_or_overwrite() {
        let mut headers = HeaderMap::new();
        headers.insert("x-kept", HeaderValue::from_static("old"));
        headers.insert("x-replaced", HeaderValue::from_static("old"));
        headers.insert("x-removed", HeaderValue::from_static("old"));
        edit(
            &mut headers,
            &["x-removed".to_string()],
            &[
                add("x-kept", "new", false),
                add("x-replaced", "new", true),
                add("x-removed", "added", false),
            ],
        );
        let values = |name: &str| -> Vec<&str> {
            headers
                .get_all(name)
                .iter()
                .map(|v| v.to_str().unwrap())
                .collect()
        };
        assert_eq!(values("x-kept"), ["old", "new"]);
        assert_eq!(values("x-replaced"), ["new"]);
        assert_eq!(values("x-removed"), ["added"]);
    }

    #[test]
    fn hop_by_hop_headers_are_not_forwarded() {
        let mut headers = HeaderMap::new();
        for name in [
            "connection",
            "keep-alive",
            "transfer-encoding",
            "upgrade",
            "te",
        ] {
            headers.insert(name, HeaderValue::from_static("x"));
        }
        headers.insert("x-end-to-end", HeaderValue::from_static("y"));
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers.len(), 1);
        assert_eq!(headers["x-end-to-end"], "y");
    }

    #[test]
    fn authority_prefers_the_absolute_uri() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("host.test"));
        let absolute: Uri = "http://uri.test:8080/a".parse().unwrap();
        let origin: Uri = "/a".parse().unwrap();
        assert_eq!(authority(&absolute, &headers).unwrap(), "uri.test:8080");
        assert_eq!(authority(&origin, &headers).unwrap(), "host.test");
        assert_eq!(authority(&origin, &HeaderMap::new()), None);
    }
}
