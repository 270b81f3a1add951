//! Header edits: append actions as Envoy reads them, weighted cluster
//! entries with their own edits and host rewrite, and the edits Envoy (or
//! the agent) refuses.

use proto::pb::envoy::config::core::v3::{HeaderValue, HeaderValueOption, header_value_option};
use proto::pb::envoy::config::route::v3::{Route, route_action, weighted_cluster};
use proto::wkt::{BoolValue, UInt32Value};

use super::route::{assert_route_rejected, base, first_route, forward, route_action};
use super::{assert_rejected, rejection};
use crate::model::route::{AppendAction, ClusterTarget};
use crate::model::route_config_from_proto;

fn option(
    key: &str,
    value: &str,
    action: header_value_option::HeaderAppendAction,
) -> HeaderValueOption {
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

fn append(key: &str, value: &str) -> HeaderValueOption {
    option(
        key,
        value,
        header_value_option::HeaderAppendAction::AppendIfExistsOrAdd,
    )
}

#[allow(deprecated)]
#[test]
fn append_actions_and_the_deprecated_append_are_kept() {
    use header_value_option::HeaderAppendAction as A;
    let mut rc = base();
    rc.virtual_hosts[0].routes[0].request_headers_to_add = vec![
        option("x-a", "1", A::AppendIfExistsOrAdd),
        option("x-b", "1", A::AddIfAbsent),
        option("x-c", "1", A::OverwriteIfExistsOrAdd),
        option("x-d", "1", A::OverwriteIfExists),
        HeaderValueOption {
            append: Some(BoolValue { value: false }),
            ..append("x-e", "1")
        },
        HeaderValueOption {
            append: Some(BoolValue { value: true }),
            ..append("x-f", "1")
        },
    ];
    let actions: Vec<AppendAction> = first_route(&rc)
        .request_headers_to_add
        .iter()
        .map(|h| h.action)
        .collect();
    assert_eq!(
        actions,
        [
            AppendAction::AppendIfExistsOrAdd,
            AppendAction::AddIfAbsent,
            AppendAction::OverwriteIfExistsOrAdd,
            AppendAction::OverwriteIfExists,
            AppendAction::OverwriteIfExistsOrAdd,
            AppendAction::AppendIfExistsOrAdd,
        ]
    );
}

#[test]
fn empty_values_are_dropped_unless_kept_and_double_percent_is_literal() {
    let mut rc = base();
    rc.virtual_hosts[0].routes[0].response_headers_to_add = vec![
        append("x-empty", ""),
        HeaderValueOption {
            keep_empty_value: true,
            ..append("x-kept-empty", "")
        },
        append("x-percent", "50%%"),
    ];
    let added = first_route(&rc).response_headers_to_add;
    let names: Vec<&str> = added.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["x-kept-empty", "x-percent"]);
    assert_eq!(added[1].value, "50%");
}

#[test]
fn weighted_cluster_entries_keep_their_edits_and_host_rewrite() {
    let mut rc = base();
    route_action(&mut rc).cluster_specifier =
        Some(route_action::ClusterSpecifier::WeightedClusters(
            proto::pb::envoy::config::route::v3::WeightedCluster {
                clusters: vec![weighted_cluster::ClusterWeight {
                    name: "outbound|80|v1|httpbin.org".into(),
                    weight: Some(UInt32Value { value: 100 }),
                    request_headers_to_add: vec![append("x-subset", "v1")],
                    request_headers_to_remove: vec!["x-internal".into()],
                    response_headers_to_add: vec![append("x-served-by", "v1")],
                    response_headers_to_remove: vec!["server".into()],
                    host_rewrite_specifier: Some(
                        weighted_cluster::cluster_weight::HostRewriteSpecifier::HostRewriteLiteral(
                            "v1.httpbin.org".into(),
                        ),
                    ),
                    ..Default::default()
                }],
                ..Default::default()
            },
        ));
    let ClusterTarget::Weighted(entries) = forward(&rc).target else {
        panic!("expected weighted clusters");
    };
    let entry = &entries[0];
    assert_eq!(entry.headers.request_headers_to_add[0].name, "x-subset");
    assert_eq!(entry.headers.request_headers_to_remove, ["x-internal"]);
    assert_eq!(entry.headers.response_headers_to_add[0].value, "v1");
    assert_eq!(entry.headers.response_headers_to_remove, ["server"]);
    assert_eq!(entry.host_rewrite.as_deref(), Some("v1.httpbin.org"));
}

#[test]
fn headers_to_add_need_a_valid_name_and_literal_value() {
    assert_route_rejected(
        |r| r.request_headers_to_add = vec![append("bad name", "v")],
        "request_headers_to_add[0]",
        "invalid header name \"bad name\"",
    );
    assert_route_rejected(
        |r| r.response_headers_to_add = vec![append("x-a", "line\nbreak")],
        "response_headers_to_add[0]",
        "invalid value for header \"x-a\"",
    );
    assert_route_rejected(
        |r| r.request_headers_to_add = vec![append("x-peer", "%DOWNSTREAM_REMOTE_ADDRESS%")],
        "request_headers_to_add[0].header.value",
        "substitution commands (%...%) in header values are not supported by the agent",
    );
}

#[allow(deprecated)]
#[test]
fn append_and_append_action_together_are_rejected() {
    assert_route_rejected(
        |r| {
            r.request_headers_to_add = vec![HeaderValueOption {
                append: Some(BoolValue { value: true }),
                ..option(
                    "x-a",
                    "1",
                    header_value_option::HeaderAppendAction::OverwriteIfExistsOrAdd,
                )
            }]
        },
        "request_headers_to_add[0]",
        "append and append_action are both set",
    );
}

#[test]
fn pseudo_headers_and_host_may_not_be_edited() {
    let edit_host = |r: &mut Route| r.request_headers_to_add = vec![append("Host", "x")];
    assert_route_rejected(
        edit_host,
        "request_headers_to_add[0]",
        "\"Host\": ':'-prefixed or host headers may not be modified",
    );
    assert_route_rejected(
        |r| r.request_headers_to_remove = vec![":authority".into()],
        "request_headers_to_remove[0]",
        "\":authority\": ':'-prefixed or host headers may not be modified",
    );
}

#[test]
fn virtual_host_and_route_configuration_edits_are_rejected() {
    let reason = "header edits are supported on routes and weighted clusters only";
    let mut rc = base();
    rc.virtual_hosts[0].response_headers_to_remove = vec!["server".into()];
    assert_rejected(
        route_config_from_proto(&rc),
        "route configuration",
        "80",
        "virtual_hosts[0].response_headers_to_remove",
        reason,
    );
    let mut rc = base();
    rc.request_headers_to_add = vec![append("x-a", "1")];
    let reason_at = rejection(
        route_config_from_proto(&rc),
        "route configuration",
        "80",
        "request_headers_to_add",
    );
    assert_eq!(reason_at, reason);
}
