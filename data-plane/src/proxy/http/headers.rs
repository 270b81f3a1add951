//! Header handling shared by requests and responses: hop-by-hop headers,
//! a route's header edits, and a request's authority.

use http::Uri;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};

use crate::model::route::{AppendAction, HeaderToAdd};

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

/// Applies one level's header edits as Envoy's header parser does: the
/// removals, then the additions by their `append_action`; the values that
/// overwrite replace the existing ones last, all together (so two of them
/// for one name both stay).
pub(super) fn edit(headers: &mut HeaderMap, remove: &[String], add: &[HeaderToAdd]) {
    for name in remove {
        headers.remove(name.as_str());
    }
    let mut overwrites = Vec::new();
    for add in add {
        let present = headers.contains_key(&add.name);
        match add.action {
            AppendAction::AppendIfExistsOrAdd => {
                headers.append(add.name.clone(), add.value.clone());
            }
            AppendAction::AddIfAbsent if !present => {
                headers.append(add.name.clone(), add.value.clone());
            }
            AppendAction::OverwriteIfExists if present => overwrites.push(add),
            AppendAction::OverwriteIfExistsOrAdd => overwrites.push(add),
            AppendAction::AddIfAbsent | AppendAction::OverwriteIfExists => {}
        }
    }
    for add in &overwrites {
        headers.remove(&add.name);
    }
    for add in overwrites {
        headers.append(add.name.clone(), add.value.clone());
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

    fn add(name: &'static str, value: &'static str, action: AppendAction) -> HeaderToAdd {
        HeaderToAdd {
            name: HeaderName::from_static(name),
            value: HeaderValue::from_static(value),
            action,
        }
    }

    fn values<'h>(headers: &'h HeaderMap, name: &str) -> Vec<&'h str> {
        headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect()
    }

    #[test]
    fn edits_remove_then_add_by_append_action() {
        use AppendAction::*;
        let mut headers = HeaderMap::new();
        for name in [
            "x-kept",
            "x-replaced",
            "x-removed",
            "x-absent-only",
            "x-if-exists",
        ] {
            headers.insert(name, HeaderValue::from_static("old"));
        }
        edit(
            &mut headers,
            &["x-removed".to_string()],
            &[
                add("x-kept", "new", AppendIfExistsOrAdd),
                add("x-replaced", "new", OverwriteIfExistsOrAdd),
                add("x-removed", "added", AppendIfExistsOrAdd),
                add("x-absent-only", "new", AddIfAbsent),
                add("x-new", "new", AddIfAbsent),
                add("x-if-exists", "new", OverwriteIfExists),
                add("x-never", "new", OverwriteIfExists),
            ],
        );
        assert_eq!(values(&headers, "x-kept"), ["old", "new"]);
        assert_eq!(values(&headers, "x-replaced"), ["new"]);
        assert_eq!(values(&headers, "x-removed"), ["added"]);
        assert_eq!(values(&headers, "x-absent-only"), ["old"]);
        assert_eq!(values(&headers, "x-new"), ["new"]);
        assert_eq!(values(&headers, "x-if-exists"), ["new"]);
        assert!(!headers.contains_key("x-never"));
    }

    #[test]
    fn two_overwrites_of_one_name_both_stay() {
        let mut headers = HeaderMap::new();
        headers.insert("x-a", HeaderValue::from_static("old"));
        edit(
            &mut headers,
            &[],
            &[
                add("x-a", "1", AppendAction::OverwriteIfExistsOrAdd),
                add("x-a", "2", AppendAction::OverwriteIfExistsOrAdd),
            ],
        );
        assert_eq!(values(&headers, "x-a"), ["1", "2"]);
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
