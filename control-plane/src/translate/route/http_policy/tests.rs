//! `fault`, `corsPolicy` and mirrors as istiod writes them (its
//! `TranslateFault`, `TranslateCORSPolicy`, `MirrorPercent`).

use proto::pb::envoy::config::route::v3::route_action::RequestMirrorPolicy;
use proto::pb::envoy::extensions::filters::common::fault::v3::fault_delay::FaultDelaySecifier;
use proto::pb::envoy::extensions::filters::http::cors::v3::CorsPolicy;
use proto::pb::envoy::extensions::filters::http::fault::v3::{HttpFault, fault_abort::ErrorType};
use proto::pb::envoy::r#type::matcher::v3::string_matcher::MatchPattern;
use proto::pb::envoy::r#type::v3::fractional_percent::DenominatorType;
use proto::prost::Message;

use super::{http_fault, mirror_policies, per_filter_config};
use crate::config::model::{Destination, HttpRoute};

fn route(yaml: &str) -> HttpRoute {
    serde_yaml::from_str(yaml).expect("an HTTP route")
}

fn fault_of(yaml: &str) -> HttpFault {
    http_fault(route(yaml).fault.as_ref().expect("fault")).expect("a fault")
}

fn mirrors(yaml: &str) -> Vec<RequestMirrorPolicy> {
    mirror_policies(&route(yaml), |destination: &Destination| {
        format!("outbound|80|{}|{}", destination.subset, destination.host)
    })
}

/// (numerator, denominator) of a fraction.
fn share(percent: Option<&proto::pb::envoy::r#type::v3::FractionalPercent>) -> (u32, i32) {
    let percent = percent.expect("a percentage");
    (percent.numerator, percent.denominator)
}

const MILLION: i32 = DenominatorType::Million as i32;
const HUNDRED: i32 = DenominatorType::Hundred as i32;

#[test]
fn a_delay_is_fixed_with_its_percentage_in_millionths() {
    let fault = fault_of("fault: {delay: {fixedDelay: 5s, percentage: {value: 12.5}}}");
    let delay = fault.delay.expect("delay");
    assert_eq!(share(delay.percentage.as_ref()), (125_000, MILLION));
    let Some(FaultDelaySecifier::FixedDelay(fixed)) = delay.fault_delay_secifier else {
        panic!("a fixed delay")
    };
    assert_eq!((fixed.seconds, fixed.nanos), (5, 0));
    assert!(fault.abort.is_none());
}

#[test]
fn a_delay_without_percentage_takes_the_deprecated_percent_else_zero() {
    let fault = fault_of("fault: {delay: {fixedDelay: 1s, percent: 30}}");
    assert_eq!(
        share(fault.delay.expect("delay").percentage.as_ref()),
        (30, HUNDRED)
    );
    let fault = fault_of("fault: {delay: {fixedDelay: 1s}}");
    assert_eq!(
        share(fault.delay.expect("delay").percentage.as_ref()),
        (0, HUNDRED)
    );
}

#[test]
fn an_abort_has_its_status_and_a_percentage_only_when_written() {
    let fault = fault_of("fault: {abort: {httpStatus: 503, percentage: {value: 100}}}");
    let abort = fault.abort.expect("abort");
    assert_eq!(abort.error_type, Some(ErrorType::HttpStatus(503)));
    assert_eq!(share(abort.percentage.as_ref()), (1_000_000, MILLION));
    let abort = fault_of("fault: {abort: {httpStatus: 418}}")
        .abort
        .expect("abort");
    assert_eq!(abort.percentage, None, "istiod leaves it unset");
}

#[test]
fn a_grpc_abort_is_its_status_code() {
    let abort = fault_of("fault: {abort: {grpcStatus: UNAVAILABLE, percentage: {value: 50}}}")
        .abort
        .expect("abort");
    assert_eq!(abort.error_type, Some(ErrorType::GrpcStatus(14)));
}

#[test]
fn fault_and_cors_are_per_filter_config_of_the_route() {
    let config = per_filter_config(&route(
        "{fault: {abort: {httpStatus: 500}}, corsPolicy: {allowOrigins: [{exact: 'https://a.example.com'}]}}",
    ));
    let fault = &config["envoy.filters.http.fault"];
    assert_eq!(
        fault.type_url,
        "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"
    );
    let cors = &config["envoy.filters.http.cors"];
    assert_eq!(
        cors.type_url,
        "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy"
    );
    assert!(per_filter_config(&route("{name: plain}")).is_empty());
}

fn cors_of(yaml: &str) -> CorsPolicy {
    let config = per_filter_config(&route(yaml));
    CorsPolicy::decode(config["envoy.filters.http.cors"].value.as_slice()).expect("decodes")
}

#[test]
fn cors_is_translated_field_by_field() {
    let cors = cors_of(
        "corsPolicy:
  allowOrigins: [{exact: 'https://a.example.com'}, {prefix: 'https://b.'}, {regex: '.*\\.c\\.com'}]
  allowMethods: [GET, POST]
  allowHeaders: [x-a, x-b]
  exposeHeaders: [x-c]
  maxAge: 24h
  allowCredentials: true",
    );
    let patterns: Vec<_> = cors
        .allow_origin_string_match
        .iter()
        .map(|m| m.match_pattern.clone().expect("a pattern"))
        .collect();
    assert!(matches!(&patterns[0], MatchPattern::Exact(o) if o == "https://a.example.com"));
    assert!(matches!(&patterns[1], MatchPattern::Prefix(o) if o == "https://b."));
    assert!(matches!(&patterns[2], MatchPattern::SafeRegex(r) if r.regex == ".*\\.c\\.com"));
    assert_eq!(cors.allow_methods, "GET,POST");
    assert_eq!(cors.allow_headers, "x-a,x-b");
    assert_eq!(cors.expose_headers, "x-c");
    assert_eq!(cors.max_age, "86400");
    assert_eq!(cors.allow_credentials.map(|b| b.value), Some(true));
    let enabled = cors.filter_enabled.expect("filter enabled");
    assert_eq!(share(enabled.default_value.as_ref()), (100, HUNDRED));
    assert_eq!(
        cors.forward_not_matching_preflights.map(|b| b.value),
        Some(true)
    );
}

#[test]
fn cors_deprecated_origins_are_exact_and_ignore_stops_forwarding_preflights() {
    let cors = cors_of(
        "corsPolicy: {allowOrigin: ['https://a.example.com'], unmatchedPreflights: IGNORE}",
    );
    assert!(matches!(
        cors.allow_origin_string_match[0].match_pattern.as_ref(),
        Some(MatchPattern::Exact(o)) if o == "https://a.example.com"
    ));
    assert_eq!(
        cors.forward_not_matching_preflights.map(|b| b.value),
        Some(false)
    );
    assert_eq!(cors.allow_credentials, None, "unset when not written");
    assert_eq!(cors.max_age, "");
}

#[test]
fn a_mirror_takes_all_requests_unless_a_percentage_says_otherwise() {
    let all = mirrors("mirror: {host: shadow.example.com}");
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].cluster, "outbound|80||shadow.example.com");
    let fraction = all[0].runtime_fraction.as_ref().expect("fraction");
    assert_eq!(share(fraction.default_value.as_ref()), (100, HUNDRED));
    assert_eq!(all[0].trace_sampled.map(|b| b.value), Some(false));

    let half = mirrors("{mirror: {host: shadow.example.com}, mirrorPercentage: {value: 50}}");
    let fraction = half[0].runtime_fraction.as_ref().expect("fraction");
    assert_eq!(share(fraction.default_value.as_ref()), (500_000, MILLION));

    let deprecated = mirrors("{mirror: {host: shadow.example.com}, mirrorPercent: 25}");
    let fraction = deprecated[0].runtime_fraction.as_ref().expect("fraction");
    assert_eq!(share(fraction.default_value.as_ref()), (25, HUNDRED));
}

#[test]
fn a_zero_percentage_mirrors_nothing() {
    assert!(
        mirrors("{mirror: {host: shadow.example.com}, mirrorPercentage: {value: 0}}").is_empty()
    );
    assert!(mirrors("{mirror: {host: shadow.example.com}, mirrorPercent: 0}").is_empty());
    assert!(
        mirrors("mirrors: [{destination: {host: a.example.com}, percentage: {value: 0}}]")
            .is_empty()
    );
}

#[test]
fn mirror_comes_before_mirrors_each_with_its_own_share() {
    let policies = mirrors(
        "mirror: {host: first.example.com}
mirrors:
- destination: {host: second.example.com, subset: v2}
  percentage: {value: 10}
- destination: {host: third.example.com}",
    );
    let clusters: Vec<&str> = policies.iter().map(|p| p.cluster.as_str()).collect();
    assert_eq!(
        clusters,
        [
            "outbound|80||first.example.com",
            "outbound|80|v2|second.example.com",
            "outbound|80||third.example.com"
        ]
    );
    let second = policies[1].runtime_fraction.as_ref().expect("fraction");
    assert_eq!(share(second.default_value.as_ref()), (100_000, MILLION));
    let third = policies[2].runtime_fraction.as_ref().expect("fraction");
    assert_eq!(share(third.default_value.as_ref()), (100, HUNDRED));
}
