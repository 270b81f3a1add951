//! Header edits a route configuration asks for (a route's, or a weighted
//! cluster entry's): what to remove, and what to add with Envoy's
//! `append_action`.

/// One header to add, with a literal value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderToAdd {
    pub name: http::HeaderName,
    pub value: http::HeaderValue,
    pub action: AppendAction,
}

/// Envoy's `HeaderValueOption.append_action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendAction {
    /// Add a value, after any existing ones (Envoy's default).
    AppendIfExistsOrAdd,
    /// Add only when the header is absent.
    AddIfAbsent,
    /// Replace every existing value, or add.
    OverwriteIfExistsOrAdd,
    /// Replace every existing value; nothing when absent.
    OverwriteIfExists,
}

/// The header edits of one level (a weighted cluster entry's), applied
/// before the route's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderEdits {
    pub request_headers_to_add: Vec<HeaderToAdd>,
    pub request_headers_to_remove: Vec<String>,
    pub response_headers_to_add: Vec<HeaderToAdd>,
    pub response_headers_to_remove: Vec<String>,
}
