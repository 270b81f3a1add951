//! An HTTP connection manager's path settings and request id extension,
//! as the agent reads them.

use proto::pb::envoy::config::listener::v3::{Filter, FilterChain, Listener, filter};
use proto::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, HttpFilter, Rds, RequestIdExtension, http_connection_manager,
    http_filter,
};
use proto::pb::envoy::extensions::request_id::uuid::v3::UuidRequestIdConfig;
use proto::wkt::BoolValue;

use super::{assert_rejected, pack, socket_address};
use crate::model::convert::listener::{HCM, ROUTER};
use crate::model::listener::ChainAction;
use crate::model::path_normalization::{EscapedSlashes, PathNormalization};
use crate::model::secret::SecretSources;
use crate::model::{Error, listener_from_proto};

use http_connection_manager::PathWithEscapedSlashesAction as Action;

/// A listener whose one connection manager is `hcm` with a router and RDS.
fn convert(hcm: HttpConnectionManager) -> Result<crate::model::Listener, Error> {
    let hcm = HttpConnectionManager {
        stat_prefix: "outbound_0.0.0.0_80".into(),
        http_filters: vec![HttpFilter {
            name: "envoy.filters.http.router".into(),
            config_type: Some(http_filter::ConfigType::TypedConfig(pack(
                ROUTER,
                &proto::wkt::Empty {},
            ))),
            ..Default::default()
        }],
        route_specifier: Some(http_connection_manager::RouteSpecifier::Rds(Rds {
            route_config_name: "80".into(),
            ..Default::default()
        })),
        ..hcm
    };
    let listener = Listener {
        name: "0.0.0.0_80".into(),
        address: Some(socket_address("0.0.0.0", 80)),
        filter_chains: vec![FilterChain {
            name: "chain".into(),
            filters: vec![Filter {
                name: "envoy.filters.network.http_connection_manager".into(),
                config_type: Some(filter::ConfigType::TypedConfig(pack(HCM, &hcm))),
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    listener_from_proto(&listener, &SecretSources::default())
}

fn normalization(hcm: HttpConnectionManager) -> PathNormalization {
    match convert(hcm).unwrap().filter_chains.remove(0).action {
        ChainAction::Http(manager) => manager.path_normalization,
        other => panic!("expected an HTTP connection manager, got {other:?}"),
    }
}

#[test]
fn istiods_settings_normalize_and_keep_escaped_slashes() {
    let istiod = HttpConnectionManager {
        normalize_path: Some(BoolValue { value: true }),
        path_with_escaped_slashes_action: Action::KeepUnchanged as i32,
        request_id_extension: Some(RequestIdExtension {
            typed_config: Some(pack(
                "type.googleapis.com/envoy.extensions.request_id.uuid.v3.UuidRequestIdConfig",
                &UuidRequestIdConfig {
                    use_request_id_for_trace_sampling: Some(BoolValue { value: true }),
                    ..Default::default()
                },
            )),
        }),
        ..Default::default()
    };
    assert_eq!(
        normalization(istiod),
        PathNormalization {
            normalize: true,
            merge_slashes: false,
            escaped_slashes: EscapedSlashes::Keep,
        }
    );
}

#[test]
fn envoys_defaults_leave_paths_alone() {
    assert_eq!(
        normalization(HttpConnectionManager::default()),
        PathNormalization::default()
    );
}

#[test]
fn merge_slashes_and_unescaped_slashes_are_read() {
    let hcm = HttpConnectionManager {
        merge_slashes: true,
        path_with_escaped_slashes_action: Action::UnescapeAndForward as i32,
        ..Default::default()
    };
    assert_eq!(
        normalization(hcm),
        PathNormalization {
            normalize: false,
            merge_slashes: true,
            escaped_slashes: EscapedSlashes::Unescape,
        }
    );
}

#[test]
fn redirecting_or_rejecting_escaped_slashes_is_refused() {
    for action in [Action::RejectRequest, Action::UnescapeAndRedirect] {
        let hcm = HttpConnectionManager {
            path_with_escaped_slashes_action: action as i32,
            ..Default::default()
        };
        assert_rejected(
            convert(hcm),
            "listener",
            "0.0.0.0_80",
            "filter_chains[0].http_connection_manager.path_with_escaped_slashes_action",
            "only KEEP_UNCHANGED and UNESCAPE_AND_FORWARD are supported (no redirect or rejection of escaped slashes)",
        );
    }
}

#[test]
fn a_request_id_extension_other_than_uuid_is_refused() {
    let hcm = HttpConnectionManager {
        request_id_extension: Some(RequestIdExtension {
            typed_config: Some(pack(
                "type.googleapis.com/envoy.extensions.request_id.xray.v3.XRayRequestIdConfig",
                &proto::wkt::Empty {},
            )),
        }),
        ..Default::default()
    };
    let error = convert(hcm).expect_err("refused").to_string();
    assert!(
        error.contains("request_id_extension.typed_config"),
        "{error}"
    );
}
