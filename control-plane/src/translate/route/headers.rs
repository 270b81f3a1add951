//! VirtualService `headers` operations as Envoy's route header edits: `set`
//! overwrites, `add` appends, `remove` removes, on requests and responses.

use proto::pb::envoy::config::core::v3::{
    HeaderValue, HeaderValueOption, header_value_option::HeaderAppendAction,
};

use crate::config::model::{HeaderOperations, Headers};

fn header_option(key: &str, value: &str, action: HeaderAppendAction) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(HeaderValue {
            key: key.to_string(),
            value: value.to_string(),
            ..Default::default()
        }),
        append_action: action as i32,
        ..Default::default()
    }
}

pub(super) fn header_operations(
    headers: &Headers,
    request_add: &mut Vec<HeaderValueOption>,
    request_remove: &mut Vec<String>,
    response_add: &mut Vec<HeaderValueOption>,
    response_remove: &mut Vec<String>,
) {
    let apply =
        |ops: &HeaderOperations, add: &mut Vec<HeaderValueOption>, remove: &mut Vec<String>| {
            for (k, v) in &ops.set {
                add.push(header_option(
                    k,
                    v,
                    HeaderAppendAction::OverwriteIfExistsOrAdd,
                ));
            }
            for (k, v) in &ops.add {
                add.push(header_option(k, v, HeaderAppendAction::AppendIfExistsOrAdd));
            }
            remove.extend(ops.remove.iter().cloned());
        };
    if let Some(request) = &headers.request {
        apply(request, request_add, request_remove);
    }
    if let Some(response) = &headers.response {
        apply(response, response_add, response_remove);
    }
}
