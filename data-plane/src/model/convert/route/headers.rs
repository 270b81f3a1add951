//! Header edits → model: a route's and each weighted cluster entry's
//! headers to add (Envoy's `append_action`, the deprecated `append`,
//! `keep_empty_value`) and to remove, and the weighted cluster entries
//! themselves. Virtual host and route configuration level edits are
//! rejected: the agent applies edits per route only.

use proto::pb::envoy::config::core::v3::{HeaderValueOption, header_value_option};
use proto::pb::envoy::config::route::v3 as pb_route;

use super::super::At;
use crate::model::Error;
use crate::model::route::{AppendAction, HeaderEdits, HeaderToAdd, WeightedCluster};

/// Envoy's route-level header edit fields, as four lists.
pub(super) struct EditFields<'a> {
    pub(super) request_add: &'a [HeaderValueOption],
    pub(super) request_remove: &'a [String],
    pub(super) response_add: &'a [HeaderValueOption],
    pub(super) response_remove: &'a [String],
}

pub(super) fn header_edits(fields: EditFields<'_>, at: &At<'_>) -> Result<HeaderEdits, Error> {
    Ok(HeaderEdits {
        request_headers_to_add: headers_to_add(fields.request_add, at, "request_headers_to_add")?,
        request_headers_to_remove: headers_to_remove(
            fields.request_remove,
            at,
            "request_headers_to_remove",
        )?,
        response_headers_to_add: headers_to_add(
            fields.response_add,
            at,
            "response_headers_to_add",
        )?,
        response_headers_to_remove: headers_to_remove(
            fields.response_remove,
            at,
            "response_headers_to_remove",
        )?,
    })
}

/// Rejects header edits on a level the agent does not apply them at.
pub(super) fn no_edits(fields: EditFields<'_>, at: &At<'_>) -> Result<(), Error> {
    let set = [
        ("request_headers_to_add", !fields.request_add.is_empty()),
        (
            "request_headers_to_remove",
            !fields.request_remove.is_empty(),
        ),
        ("response_headers_to_add", !fields.response_add.is_empty()),
        (
            "response_headers_to_remove",
            !fields.response_remove.is_empty(),
        ),
    ];
    match set.iter().find(|(_, set)| *set) {
        Some((field, _)) => Err(at
            .field(field)
            .error("header edits are supported on routes and weighted clusters only")),
        None => Ok(()),
    }
}

// Envoy still accepts the deprecated `append` field; so do we.
#[allow(deprecated)]
fn headers_to_add(
    options: &[HeaderValueOption],
    at: &At<'_>,
    field: &str,
) -> Result<Vec<HeaderToAdd>, Error> {
    let mut added = Vec::with_capacity(options.len());
    for (i, option) in options.iter().enumerate() {
        let at = at.field(format!("{field}[{i}]"));
        let Some(header) = &option.header else {
            return Err(at.field("header").error("a header is required"));
        };
        modifiable(&header.key, &at)?;
        let name = http::HeaderName::from_bytes(header.key.as_bytes())
            .map_err(|_| at.error(format!("invalid header name {:?}", header.key)))?;
        let raw = if header.value.is_empty() {
            header.raw_value.as_slice()
        } else {
            header.value.as_bytes()
        };
        let literal = literal(raw).map_err(|reason| at.field("header.value").error(reason))?;
        // Envoy adds nothing for an empty value unless asked to.
        if literal.is_empty() && !option.keep_empty_value {
            continue;
        }
        let value = http::HeaderValue::from_bytes(&literal)
            .map_err(|_| at.error(format!("invalid value for header {:?}", header.key)))?;
        added.push(HeaderToAdd {
            name,
            value,
            action: append_action(option, &at)?,
        });
    }
    Ok(added)
}

#[allow(deprecated)]
fn append_action(option: &HeaderValueOption, at: &At<'_>) -> Result<AppendAction, Error> {
    use header_value_option::HeaderAppendAction as A;
    let action = A::try_from(option.append_action)
        .map_err(|_| at.field("append_action").error("unknown append action"))?;
    match (&option.append, action) {
        (Some(_), A::AppendIfExistsOrAdd) | (None, _) => {}
        (Some(_), _) => {
            return Err(at.error("append and append_action are both set"));
        }
    }
    Ok(match (&option.append, action) {
        (Some(append), _) if !append.value => AppendAction::OverwriteIfExistsOrAdd,
        (_, A::AppendIfExistsOrAdd) => AppendAction::AppendIfExistsOrAdd,
        (_, A::AddIfAbsent) => AppendAction::AddIfAbsent,
        (_, A::OverwriteIfExistsOrAdd) => AppendAction::OverwriteIfExistsOrAdd,
        (_, A::OverwriteIfExists) => AppendAction::OverwriteIfExists,
    })
}

/// A header value as Envoy's formatter reads it: `%%` is a literal `%`;
/// any other `%` starts a substitution command, which the agent does not
/// evaluate.
fn literal(raw: &[u8]) -> Result<Vec<u8>, String> {
    let mut value = Vec::with_capacity(raw.len());
    let mut bytes = raw.iter().copied().peekable();
    while let Some(byte) = bytes.next() {
        if byte != b'%' {
            value.push(byte);
        } else if bytes.next_if_eq(&b'%').is_some() {
            value.push(b'%');
        } else {
            return Err(
                "substitution commands (%...%) in header values are not supported by the agent"
                    .into(),
            );
        }
    }
    Ok(value)
}

fn headers_to_remove(names: &[String], at: &At<'_>, field: &str) -> Result<Vec<String>, Error> {
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let at = at.field(format!("{field}[{i}]"));
            modifiable(name, &at)?;
            http::HeaderName::from_bytes(name.as_bytes())
                .map(|name| name.as_str().to_string())
                .map_err(|_| at.error(format!("invalid header name {name:?}")))
        })
        .collect()
}

/// Envoy refuses to edit pseudo-headers and `host`.
fn modifiable(name: &str, at: &At<'_>) -> Result<(), Error> {
    if name.starts_with(':') || name.eq_ignore_ascii_case("host") {
        return Err(at.error(format!(
            "{name:?}: ':'-prefixed or host headers may not be modified"
        )));
    }
    Ok(())
}

/// The entries of Envoy's `weighted_clusters`, with their header edits and
/// host rewrite.
pub(super) fn weighted_clusters(
    w: &pb_route::WeightedCluster,
    at: &At<'_>,
) -> Result<Vec<WeightedCluster>, Error> {
    if w.random_value_specifier.is_some() {
        return Err(at
            .field("random_value_specifier")
            .error("not supported by the agent"));
    }
    w.clusters
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let at = at.field(format!("clusters[{i}]"));
            if !c.cluster_header.is_empty() {
                return Err(at
                    .field("cluster_header")
                    .error("not supported by the agent"));
            }
            if c.metadata_match.is_some() {
                return Err(at
                    .field("metadata_match")
                    .error("not supported by the agent"));
            }
            if !c.typed_per_filter_config.is_empty() {
                return Err(at
                    .field("typed_per_filter_config")
                    .error("not supported by the agent (filter configs go on the route)"));
            }
            let edits = EditFields {
                request_add: &c.request_headers_to_add,
                request_remove: &c.request_headers_to_remove,
                response_add: &c.response_headers_to_add,
                response_remove: &c.response_headers_to_remove,
            };
            use pb_route::weighted_cluster::cluster_weight::HostRewriteSpecifier;
            Ok(WeightedCluster {
                name: c.name.as_str().into(),
                weight: c.weight.as_ref().map_or(0, |w| w.value),
                headers: header_edits(edits, &at)?,
                host_rewrite: c
                    .host_rewrite_specifier
                    .as_ref()
                    .map(|HostRewriteSpecifier::HostRewriteLiteral(host)| host.clone()),
            })
        })
        .collect()
}
