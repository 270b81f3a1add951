//! Request mirror policies as istiod writes them: cluster and runtime
//! fraction kept, a missing fraction mirrors everything, the fields the
//! agent cannot honour rejected.

use proto::pb::envoy::config::core::v3::RuntimeFractionalPercent;
use proto::pb::envoy::config::route::v3::route_action::RequestMirrorPolicy;
use proto::pb::envoy::config::route::v3::{
    Route, RouteAction, RouteConfiguration, RouteMatch, VirtualHost, route, route_action,
    route_match,
};
use proto::pb::envoy::r#type::v3::FractionalPercent;
use proto::wkt::BoolValue;

use super::assert_rejected;
use crate::model::fraction::Fraction;
use crate::model::mirror::MirrorPolicy;
use crate::model::route::RouteAction as Action;
use crate::model::{Error, route_config_from_proto};

fn mirrored(policies: Vec<RequestMirrorPolicy>) -> Result<Vec<MirrorPolicy>, Error> {
    let rc = RouteConfiguration {
        name: "80".into(),
        virtual_hosts: vec![VirtualHost {
            name: "api.test:80".into(),
            domains: vec!["api.test".into()],
            routes: vec![Route {
                r#match: Some(RouteMatch {
                    path_specifier: Some(route_match::PathSpecifier::Prefix("/".into())),
                    ..Default::default()
                }),
                action: Some(route::Action::Route(RouteAction {
                    cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(
                        "outbound|80||api.test".into(),
                    )),
                    request_mirror_policies: policies,
                    ..Default::default()
                })),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let converted = route_config_from_proto(&rc)?;
    match &converted.virtual_hosts[0].routes[0].action {
        Action::Forward(forward) => Ok(forward.mirrors.clone()),
        other => panic!("a forward, got {other:?}"),
    }
}

fn istiod_mirror(cluster: &str, fraction: Option<(u32, i32)>) -> RequestMirrorPolicy {
    RequestMirrorPolicy {
        cluster: cluster.into(),
        runtime_fraction: fraction.map(|(numerator, denominator)| RuntimeFractionalPercent {
            default_value: Some(FractionalPercent {
                numerator,
                denominator,
            }),
            runtime_key: String::new(),
        }),
        trace_sampled: Some(BoolValue { value: false }),
        ..Default::default()
    }
}

#[test]
fn istiod_s_mirrors_are_kept_in_order_with_their_shares() {
    let mirrors = mirrored(vec![
        istiod_mirror("outbound|80||mirror.test", Some((100, 0))),
        istiod_mirror("outbound|80||other.test", Some((250_000, 2))),
        istiod_mirror("outbound|80||all.test", None),
    ])
    .unwrap();
    assert_eq!(
        mirrors,
        [
            MirrorPolicy {
                cluster: "outbound|80||mirror.test".into(),
                fraction: Fraction::ALL,
                host_suffix: true,
            },
            MirrorPolicy {
                cluster: "outbound|80||other.test".into(),
                fraction: Fraction {
                    numerator: 250_000,
                    denominator: 1_000_000
                },
                host_suffix: true,
            },
            MirrorPolicy {
                cluster: "outbound|80||all.test".into(),
                fraction: Fraction::ALL,
                host_suffix: true,
            },
        ]
    );
    let mut unsuffixed = istiod_mirror("outbound|80||mirror.test", None);
    unsuffixed.disable_shadow_host_suffix_append = true;
    assert!(!mirrored(vec![unsuffixed]).unwrap()[0].host_suffix);
}

#[test]
fn a_mirror_named_by_a_header_or_rewriting_its_host_is_rejected() {
    let mut by_header = istiod_mirror("", None);
    by_header.cluster_header = "x-mirror".into();
    assert_rejected(
        mirrored(vec![by_header]),
        "route configuration",
        "80",
        "virtual_hosts[0].routes[0].route.request_mirror_policies[0].cluster_header",
        "not supported by this agent (mirrors name their cluster)",
    );
    let mut rewrite = istiod_mirror("outbound|80||mirror.test", None);
    rewrite.host_rewrite_literal = "other.test".into();
    assert_rejected(
        mirrored(vec![rewrite]),
        "route configuration",
        "80",
        "virtual_hosts[0].routes[0].route.request_mirror_policies[0].host_rewrite_literal",
        "not supported by this agent (mirrors name their cluster)",
    );
}
