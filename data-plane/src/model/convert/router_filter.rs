//! An HTTP connection manager's router filter and its typed config
//! (`envoy.extensions.filters.http.router.v3.Router`): whether it adds its
//! `x-envoy-*` headers (`suppress_envoy_headers`). Router fields the agent
//! cannot honour are rejected.

use proto::pb::envoy::extensions::filters::http::router::v3::Router;
use proto::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, http_filter,
};

use super::listener::ROUTER;
use super::{At, decode};
use crate::model::Error;

/// The router's `suppress_envoy_headers` (false without a typed config).
pub(super) fn suppress_envoy_headers(
    hcm: &HttpConnectionManager,
    at: &At<'_>,
) -> Result<bool, Error> {
    Ok(router(hcm, at)?.is_some_and(|r| r.suppress_envoy_headers))
}

/// The router filter's config, when it has one; its fields the agent
/// cannot honour are rejected.
fn router(hcm: &HttpConnectionManager, at: &At<'_>) -> Result<Option<Router>, Error> {
    for (i, filter) in hcm.http_filters.iter().enumerate() {
        let Some(http_filter::ConfigType::TypedConfig(any)) = &filter.config_type else {
            continue;
        };
        if any.type_url != ROUTER {
            continue;
        }
        let at = at.field(format!("http_filters[{i}].typed_config"));
        let router: Router = decode(any, ROUTER, &at)?;
        let unsupported = [
            (
                router.dynamic_stats.is_some_and(|v| !v.value),
                "dynamic_stats",
            ),
            (!router.upstream_log.is_empty(), "upstream_log"),
            (
                router.upstream_log_options.is_some(),
                "upstream_log_options",
            ),
            (
                !router.strict_check_headers.is_empty(),
                "strict_check_headers",
            ),
            (
                router.respect_expected_rq_timeout,
                "respect_expected_rq_timeout",
            ),
            (
                router.suppress_grpc_request_failure_code_stats,
                "suppress_grpc_request_failure_code_stats",
            ),
            (
                !router.upstream_http_filters.is_empty(),
                "upstream_http_filters",
            ),
        ];
        if let Some((_, field)) = unsupported.iter().find(|(set, _)| *set) {
            return Err(at.field(*field).error("not supported by this agent"));
        }
        return Ok(Some(router));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use prost::Message;
    use proto::pb::envoy::extensions::filters::network::http_connection_manager::v3::HttpFilter;
    use proto::wkt::{Any, BoolValue};

    use super::*;

    fn hcm(router: Option<Router>) -> HttpConnectionManager {
        HttpConnectionManager {
            http_filters: vec![HttpFilter {
                name: "envoy.filters.http.router".into(),
                config_type: router.map(|r| {
                    http_filter::ConfigType::TypedConfig(Any {
                        type_url: ROUTER.into(),
                        value: r.encode_to_vec(),
                    })
                }),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn convert(hcm: &HttpConnectionManager) -> Result<bool, Error> {
        suppress_envoy_headers(hcm, &At::resource("listener", "l"))
    }

    #[test]
    fn envoys_router_adds_its_headers_by_default() {
        assert!(!convert(&hcm(None)).unwrap());
        assert!(!convert(&hcm(Some(Router::default()))).unwrap());
    }

    #[test]
    fn suppress_envoy_headers_is_read_and_unsupported_router_fields_rejected() {
        let suppress = Router {
            suppress_envoy_headers: true,
            ..Default::default()
        };
        assert!(convert(&hcm(Some(suppress))).unwrap());
        let strict = Router {
            strict_check_headers: vec!["x-envoy-upstream-rq-timeout-ms".into()],
            ..Default::default()
        };
        let err = convert(&hcm(Some(strict))).unwrap_err();
        assert_eq!(
            err.field,
            "http_filters[0].typed_config.strict_check_headers"
        );
        let no_stats = Router {
            dynamic_stats: Some(BoolValue { value: false }),
            ..Default::default()
        };
        assert!(convert(&hcm(Some(no_stats))).is_err());
    }
}
