//! HTTP filters before the router (fault, CORS) and their per-route
//! configs, as istiod writes them: what each becomes, and every field the
//! agent cannot run rejected.

use std::collections::HashMap;

use proto::pb::envoy::config::core::v3::RuntimeFractionalPercent;
use proto::pb::envoy::config::listener::v3::{Filter, FilterChain, Listener, filter};
use proto::pb::envoy::config::route::v3::{
    Route, RouteAction, RouteConfiguration, RouteMatch, VirtualHost, route, route_action,
    route_match,
};
use proto::pb::envoy::extensions::filters::common::fault::v3::{FaultDelay, fault_delay};
use proto::pb::envoy::extensions::filters::http::cors::v3::CorsPolicy;
use proto::pb::envoy::extensions::filters::http::fault::v3::{FaultAbort, HttpFault, fault_abort};
use proto::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, HttpFilter, Rds, http_connection_manager, http_filter,
};
use proto::pb::envoy::r#type::matcher::v3::{StringMatcher, string_matcher};
use proto::pb::envoy::r#type::v3::{FractionalPercent, fractional_percent::DenominatorType};
use proto::wkt::{Any, BoolValue, Duration, UInt32Value};

use super::{assert_rejected, pack, socket_address};
use crate::model::convert::cors::{CORS, CORS_POLICY};
use crate::model::convert::fault::HTTP_FAULT;
use crate::model::convert::listener::{HCM, ROUTER};
use crate::model::cors::CorsPolicy as ModelCors;
use crate::model::fault::{Abort, AbortStatus, Delay, Fault};
use crate::model::fraction::Fraction;
use crate::model::http_filters::{FilterConfig, FilterKind};
use crate::model::listener::ChainAction;
use crate::model::route::StringMatch;
use crate::model::secret::SecretSources;
use crate::model::{Error, listener_from_proto, route_config_from_proto};

const FAULT_NAME: &str = "envoy.filters.http.fault";
const CORS_NAME: &str = "envoy.filters.http.cors";

fn http_filter(name: &str, any: Any) -> HttpFilter {
    HttpFilter {
        name: name.into(),
        config_type: Some(http_filter::ConfigType::TypedConfig(any)),
        ..Default::default()
    }
}

/// istiod's filters: fault and CORS with empty configs, then the router.
fn istiod_filters() -> Vec<HttpFilter> {
    vec![
        http_filter(FAULT_NAME, pack(HTTP_FAULT, &HttpFault::default())),
        http_filter(CORS_NAME, pack(CORS, &proto::wkt::Empty {})),
        http_filter(
            "envoy.filters.http.router",
            pack(ROUTER, &proto::wkt::Empty {}),
        ),
    ]
}

fn listener(filters: Vec<HttpFilter>) -> Listener {
    let manager = HttpConnectionManager {
        stat_prefix: "outbound_0.0.0.0_80".into(),
        http_filters: filters,
        route_specifier: Some(http_connection_manager::RouteSpecifier::Rds(Rds {
            route_config_name: "80".into(),
            ..Default::default()
        })),
        ..Default::default()
    };
    Listener {
        name: "0.0.0.0_80".into(),
        address: Some(socket_address("0.0.0.0", 80)),
        filter_chains: vec![FilterChain {
            name: "http".into(),
            filters: vec![Filter {
                name: "envoy.filters.network.http_connection_manager".into(),
                config_type: Some(filter::ConfigType::TypedConfig(pack(HCM, &manager))),
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn convert_listener(filters: Vec<HttpFilter>) -> Result<crate::model::Listener, Error> {
    listener_from_proto(&listener(filters), &SecretSources::default())
}

#[test]
fn istiod_s_fault_and_cors_filters_are_run_in_order_before_the_router() {
    let l = convert_listener(istiod_filters()).unwrap();
    let ChainAction::Http(hcm) = &l.filter_chains[0].action else {
        panic!("an HTTP chain");
    };
    let filters: Vec<(&str, &FilterKind)> = hcm
        .http_filters
        .iter()
        .map(|f| (&*f.name, &f.kind))
        .collect();
    assert_eq!(
        filters,
        [
            (FAULT_NAME, &FilterKind::Fault(None)),
            (CORS_NAME, &FilterKind::Cors)
        ]
    );
}

#[test]
fn a_fault_filter_with_faults_of_its_own_keeps_them() {
    let mut filters = istiod_filters();
    filters[0] = http_filter(
        FAULT_NAME,
        pack(
            HTTP_FAULT,
            &HttpFault {
                abort: Some(http_abort(
                    503,
                    Some(percent(100, DenominatorType::Hundred)),
                )),
                ..Default::default()
            },
        ),
    );
    let l = convert_listener(filters).unwrap();
    let ChainAction::Http(hcm) = &l.filter_chains[0].action else {
        panic!("an HTTP chain");
    };
    let FilterKind::Fault(Some(own)) = &hcm.http_filters[0].kind else {
        panic!("the filter's own fault");
    };
    assert_eq!(own.abort.as_ref().unwrap().status, AbortStatus::Http(503));
}

#[test]
fn a_disabled_fault_filter_is_rejected() {
    let mut filters = istiod_filters();
    filters[0].disabled = true;
    assert_rejected(
        convert_listener(filters),
        "listener",
        "0.0.0.0_80",
        "filter_chains[0].http_connection_manager.http_filters[0].disabled",
        "filters disabled until a route enables them are not supported",
    );
}

fn percent(numerator: u32, denominator: DenominatorType) -> FractionalPercent {
    FractionalPercent {
        numerator,
        denominator: denominator as i32,
    }
}

fn http_abort(status: u32, percentage: Option<FractionalPercent>) -> FaultAbort {
    FaultAbort {
        percentage,
        error_type: Some(fault_abort::ErrorType::HttpStatus(status)),
        ..Default::default()
    }
}

/// Route configuration `80` whose one route carries `configs`.
fn routes(configs: HashMap<String, Any>) -> RouteConfiguration {
    RouteConfiguration {
        name: "80".into(),
        virtual_hosts: vec![VirtualHost {
            name: "api.test:80".into(),
            domains: vec!["api.test".into()],
            routes: vec![Route {
                name: "api".into(),
                r#match: Some(RouteMatch {
                    path_specifier: Some(route_match::PathSpecifier::Prefix("/".into())),
                    ..Default::default()
                }),
                action: Some(route::Action::Route(RouteAction {
                    cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(
                        "outbound|80||api.test".into(),
                    )),
                    ..Default::default()
                })),
                typed_per_filter_config: configs,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn route_fault(fault: &HttpFault) -> Result<Option<FilterConfig>, Error> {
    let rc = routes(HashMap::from([(
        FAULT_NAME.to_string(),
        pack(HTTP_FAULT, fault),
    )]));
    let converted = route_config_from_proto(&rc)?;
    Ok(converted.virtual_hosts[0].routes[0]
        .filter_configs
        .get(FAULT_NAME)
        .cloned())
}

#[test]
fn istiod_s_fault_on_a_route_becomes_its_delay_and_abort() {
    // istiod: percentage.value * 10000 per MILLION; fixed_delay as given.
    let fault = HttpFault {
        delay: Some(FaultDelay {
            percentage: Some(percent(505_000, DenominatorType::Million)),
            fault_delay_secifier: Some(fault_delay::FaultDelaySecifier::FixedDelay(Duration {
                seconds: 2,
                nanos: 500_000_000,
            })),
        }),
        abort: Some(http_abort(
            418,
            Some(percent(1_000_000, DenominatorType::Million)),
        )),
        ..Default::default()
    };
    let Some(FilterConfig::Fault(converted)) = route_fault(&fault).unwrap() else {
        panic!("a fault");
    };
    assert_eq!(
        *converted,
        Fault {
            delay: Some(Delay {
                duration: std::time::Duration::from_millis(2500),
                percentage: Fraction {
                    numerator: 505_000,
                    denominator: 1_000_000
                },
            }),
            abort: Some(Abort {
                status: AbortStatus::Http(418),
                percentage: Fraction {
                    numerator: 1_000_000,
                    denominator: 1_000_000
                },
                body: "fault filter abort".into(),
            }),
        }
    );
}

#[test]
fn an_abort_without_percentage_never_fires_and_a_grpc_abort_keeps_its_code() {
    let fault = HttpFault {
        abort: Some(FaultAbort {
            error_type: Some(fault_abort::ErrorType::GrpcStatus(14)),
            response_body: "down for tests".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let Some(FilterConfig::Fault(converted)) = route_fault(&fault).unwrap() else {
        panic!("a fault");
    };
    let abort = converted.abort.as_ref().unwrap();
    assert_eq!(abort.status, AbortStatus::Grpc(14));
    assert_eq!(&*abort.body, "down for tests");
    assert!(!abort.percentage.hits(0));
}

#[track_caller]
fn assert_fault_rejected(fault: HttpFault, field: &str, reason: &str) {
    assert_rejected(
        route_fault(&fault),
        "route configuration",
        "80",
        &format!("virtual_hosts[0].routes[0].typed_per_filter_config[\"{FAULT_NAME}\"].{field}"),
        reason,
    );
}

#[test]
fn fault_fields_the_agent_cannot_run_are_rejected() {
    assert_fault_rejected(
        HttpFault {
            abort: Some(http_abort(700, None)),
            ..Default::default()
        },
        "abort.http_status",
        "700 is not in [200, 600)",
    );
    assert_fault_rejected(
        HttpFault {
            abort: Some(FaultAbort {
                error_type: Some(fault_abort::ErrorType::HeaderAbort(
                    fault_abort::HeaderAbort {},
                )),
                ..Default::default()
            }),
            ..Default::default()
        },
        "abort.header_abort",
        "header-controlled aborts are not supported by this agent",
    );
    assert_fault_rejected(
        HttpFault {
            delay: Some(FaultDelay::default()),
            ..Default::default()
        },
        "delay",
        "fixed_delay is required",
    );
    assert_fault_rejected(
        HttpFault {
            max_active_faults: Some(UInt32Value { value: 1 }),
            ..Default::default()
        },
        "max_active_faults",
        "not supported by this agent (fault injection takes delay and abort only)",
    );
    assert_fault_rejected(
        HttpFault {
            upstream_cluster: "outbound|80||api.test".into(),
            ..Default::default()
        },
        "upstream_cluster",
        "not supported by this agent (fault injection takes delay and abort only)",
    );
}

#[test]
fn an_unknown_per_filter_config_is_rejected_not_ignored() {
    let rc = routes(HashMap::from([(
        "envoy.filters.http.ext_authz".to_string(),
        pack(
            "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute",
            &proto::wkt::Empty {},
        ),
    )]));
    assert_rejected(
        route_config_from_proto(&rc),
        "route configuration",
        "80",
        "virtual_hosts[0].routes[0].typed_per_filter_config[\"envoy.filters.http.ext_authz\"]",
        "unsupported per-filter config type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute (the agent runs fault and CORS filters only)",
    );
}

fn exact(origin: &str) -> StringMatcher {
    StringMatcher {
        match_pattern: Some(string_matcher::MatchPattern::Exact(origin.into())),
        ..Default::default()
    }
}

/// istiod's CORS policy: origins, comma-joined lists, max age in seconds,
/// filter enabled at 100%, preflights not matching forwarded.
fn istiod_cors() -> CorsPolicy {
    CorsPolicy {
        allow_origin_string_match: vec![exact("https://app.test")],
        allow_methods: "GET,POST".into(),
        allow_headers: "x-token".into(),
        expose_headers: "x-trace".into(),
        max_age: "86400".into(),
        allow_credentials: Some(BoolValue { value: true }),
        filter_enabled: Some(RuntimeFractionalPercent {
            default_value: Some(percent(100, DenominatorType::Hundred)),
            runtime_key: String::new(),
        }),
        forward_not_matching_preflights: Some(BoolValue { value: true }),
        ..Default::default()
    }
}

#[test]
fn istiod_s_cors_policy_on_a_route_is_kept_field_by_field() {
    let rc = routes(HashMap::from([(
        CORS_NAME.to_string(),
        pack(CORS_POLICY, &istiod_cors()),
    )]));
    let converted = route_config_from_proto(&rc).unwrap();
    let Some(FilterConfig::Cors(policy)) = converted.virtual_hosts[0].routes[0]
        .filter_configs
        .get(CORS_NAME)
    else {
        panic!("a CORS policy");
    };
    assert_eq!(
        **policy,
        ModelCors {
            allow_origins: vec![(StringMatch::Exact("https://app.test".into()), false)],
            allow_methods: Some("GET,POST".into()),
            allow_headers: Some("x-token".into()),
            expose_headers: Some("x-trace".into()),
            max_age: Some("86400".into()),
            allow_credentials: Some(true),
            allow_private_network_access: None,
            forward_not_matching_preflights: Some(true),
            filter_enabled: Some(Fraction::ALL),
            shadow_enabled: None,
        }
    );
}

#[test]
fn a_virtual_host_s_policy_fills_what_the_route_s_leaves_unset() {
    let mut rc = routes(HashMap::from([(
        CORS_NAME.to_string(),
        pack(
            CORS_POLICY,
            &CorsPolicy {
                allow_methods: "PUT".into(),
                ..Default::default()
            },
        ),
    )]));
    rc.virtual_hosts[0].typed_per_filter_config =
        HashMap::from([(CORS_NAME.to_string(), pack(CORS_POLICY, &istiod_cors()))]);
    let converted = route_config_from_proto(&rc).unwrap();
    let Some(FilterConfig::Cors(policy)) = converted.virtual_hosts[0].routes[0]
        .filter_configs
        .get(CORS_NAME)
    else {
        panic!("a CORS policy");
    };
    assert_eq!(policy.allow_methods.as_deref(), Some("PUT"));
    assert_eq!(policy.allow_headers.as_deref(), Some("x-token"));
    assert!(policy.allows_origin("https://app.test"));
}

#[test]
fn a_route_without_filter_configs_has_none() {
    let converted = route_config_from_proto(&routes(HashMap::new())).unwrap();
    assert!(
        converted.virtual_hosts[0].routes[0]
            .filter_configs
            .is_empty()
    );
}

#[test]
fn a_weighted_cluster_entry_s_filter_configs_are_rejected_not_ignored() {
    use proto::pb::envoy::config::route::v3::{WeightedCluster, weighted_cluster::ClusterWeight};
    let mut rc = routes(HashMap::new());
    let Some(route::Action::Route(action)) = &mut rc.virtual_hosts[0].routes[0].action else {
        panic!("a route action");
    };
    action.cluster_specifier = Some(route_action::ClusterSpecifier::WeightedClusters(
        WeightedCluster {
            clusters: vec![ClusterWeight {
                name: "outbound|80||api.test".into(),
                weight: Some(UInt32Value { value: 100 }),
                typed_per_filter_config: HashMap::from([(
                    FAULT_NAME.to_string(),
                    pack(HTTP_FAULT, &HttpFault::default()),
                )]),
                ..Default::default()
            }],
            ..Default::default()
        },
    ));
    assert_rejected(
        route_config_from_proto(&rc),
        "route configuration",
        "80",
        "virtual_hosts[0].routes[0].route.weighted_clusters.clusters[0].typed_per_filter_config",
        "not supported by the agent (filter configs go on the route)",
    );
}
