//! VirtualService `headers` as istiod's `TranslateHeadersOperations` writes
//! them: `set` (overwrite) then `add` (append), each sorted by name;
//! `remove`; pseudo-headers and `host` left out, and the authority they
//! set returned apart (it becomes a host rewrite).

use proto::pb::envoy::config::core::v3::{
    HeaderValue, HeaderValueOption, header_value_option::HeaderAppendAction,
};

use crate::config::model::{HeaderOperations, Headers};

/// Envoy's header edits for one `headers`.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct HeaderEdits {
    pub request_add: Vec<HeaderValueOption>,
    pub request_remove: Vec<String>,
    pub response_add: Vec<HeaderValueOption>,
    pub response_remove: Vec<String>,
    /// The `:authority` (or `host`) a request `set` (else `add`) gives.
    pub authority: Option<String>,
}

impl HeaderEdits {
    /// These edits followed by `other`'s (a later `set` wins in Envoy).
    pub fn extend(&mut self, other: HeaderEdits) {
        self.request_add.extend(other.request_add);
        self.request_remove.extend(other.request_remove);
        self.response_add.extend(other.response_add);
        self.response_remove.extend(other.response_remove);
    }
}

/// A header Envoy does not let a route edit.
fn is_internal(name: &str) -> bool {
    name.starts_with(':') || name.eq_ignore_ascii_case("host")
}

fn is_authority(name: &str) -> bool {
    name.eq_ignore_ascii_case(":authority") || name.eq_ignore_ascii_case("host")
}

fn options(
    headers: &std::collections::BTreeMap<String, String>,
    action: HeaderAppendAction,
) -> impl Iterator<Item = HeaderValueOption> + '_ {
    headers
        .iter()
        .filter(|(name, _)| !is_internal(name))
        .map(move |(name, value)| HeaderValueOption {
            header: Some(HeaderValue {
                key: name.clone(),
                value: value.clone(),
                ..Default::default()
            }),
            append_action: action as i32,
            ..Default::default()
        })
}

fn adds(ops: &HeaderOperations) -> Vec<HeaderValueOption> {
    options(&ops.set, HeaderAppendAction::OverwriteIfExistsOrAdd)
        .chain(options(&ops.add, HeaderAppendAction::AppendIfExistsOrAdd))
        .collect()
}

fn removes(ops: &HeaderOperations) -> Vec<String> {
    ops.remove
        .iter()
        .filter(|name| !is_internal(name))
        .cloned()
        .collect()
}

/// The authority a map sets (the last one by name, as Go's map walk would
/// pick any; validation allows one).
fn authority_of(headers: &std::collections::BTreeMap<String, String>) -> Option<String> {
    headers
        .iter()
        .filter(|(name, _)| is_authority(name))
        .map(|(_, value)| value.clone())
        .next_back()
}

pub(super) fn header_edits(headers: &Headers) -> HeaderEdits {
    let empty = HeaderOperations::default();
    let request = headers.request.as_ref().unwrap_or(&empty);
    let response = headers.response.as_ref().unwrap_or(&empty);
    HeaderEdits {
        request_add: adds(request),
        request_remove: removes(request),
        response_add: adds(response),
        response_remove: removes(response),
        authority: authority_of(&request.set).or_else(|| authority_of(&request.add)),
    }
}
