//! Route matches: every path specifier, header and query parameter matcher
//! Envoy evaluates is kept as it means; what the agent cannot evaluate is
//! rejected naming the field.

use proto::pb::envoy::config::route::v3::{
    HeaderMatcher, QueryParameterMatcher, Route, RouteMatch, header_matcher,
    query_parameter_matcher, route_match,
};
use proto::pb::envoy::r#type::matcher::v3::{StringMatcher, string_matcher};
use proto::pb::envoy::r#type::v3::Int64Range;
use proto::wkt::BoolValue;

use super::route::{assert_route_rejected, base, exact, first_route, regex};
use crate::model::route::{
    HeaderMatch, HeaderRule, PathMatch, QueryMatch, QueryRule, RouteMatch as Matcher, StringMatch,
    ValueMatch,
};

fn matcher_with(edit: impl FnOnce(&mut RouteMatch)) -> Matcher {
    let mut rc = base();
    edit(rc.virtual_hosts[0].routes[0].r#match.as_mut().unwrap());
    first_route(&rc).matcher
}

fn headers(matchers: Vec<HeaderMatcher>) -> Vec<HeaderMatch> {
    matcher_with(|m| m.headers = matchers).headers
}

fn header(name: &str, spec: Option<header_matcher::HeaderMatchSpecifier>) -> HeaderMatcher {
    HeaderMatcher {
        name: name.into(),
        header_match_specifier: spec,
        ..Default::default()
    }
}

fn strict(pattern: StringMatch) -> HeaderRule {
    HeaderRule::Value(ValueMatch {
        pattern,
        ignore_case: false,
    })
}

#[test]
fn path_specifiers_and_case_sensitivity_are_kept() {
    let separated = matcher_with(|m| {
        m.path_specifier = Some(route_match::PathSpecifier::PathSeparatedPrefix(
            "/api".into(),
        ));
        m.case_sensitive = Some(BoolValue { value: false });
    });
    assert_eq!(separated.path, PathMatch::SeparatedPrefix("/api".into()));
    assert!(!separated.case_sensitive);
    // Envoy's default is case-sensitive.
    assert!(matcher_with(|_| {}).case_sensitive);
}

#[test]
fn header_matchers_keep_name_rule_inversion_and_missing_as_empty() {
    use header_matcher::HeaderMatchSpecifier as S;
    let converted = headers(vec![
        HeaderMatcher {
            invert_match: true,
            treat_missing_header_as_empty: true,
            ..header(
                "X-Version",
                Some(S::StringMatch(StringMatcher {
                    ignore_case: true,
                    ..exact("v2")
                })),
            )
        },
        header(":authority", None),
        header(":scheme", Some(S::StringMatch(exact("https")))),
        header("x-gone", Some(S::PresentMatch(false))),
        header("x-n", Some(S::RangeMatch(Int64Range { start: 1, end: 5 }))),
    ]);
    let expected = |name: &str, rule| HeaderMatch {
        name: name.into(),
        rule,
        invert: false,
        treat_missing_as_empty: false,
    };
    assert_eq!(
        converted,
        [
            HeaderMatch {
                invert: true,
                treat_missing_as_empty: true,
                ..expected(
                    "x-version",
                    HeaderRule::Value(ValueMatch {
                        pattern: StringMatch::Exact("v2".into()),
                        ignore_case: true,
                    })
                )
            },
            expected(":authority", HeaderRule::Present(true)),
            expected(":scheme", strict(StringMatch::Exact("https".into()))),
            expected("x-gone", HeaderRule::Present(false)),
            expected("x-n", HeaderRule::Range { start: 1, end: 5 }),
        ]
    );
}

// The deprecated forms are still Envoy's API.
#[allow(deprecated)]
#[test]
fn deprecated_header_forms_keep_their_meaning() {
    use header_matcher::HeaderMatchSpecifier as S;
    let converted = headers(vec![
        header("a", Some(S::ExactMatch("x".into()))),
        header("b", Some(S::ExactMatch(String::new()))),
        header("c", Some(S::PrefixMatch("p".into()))),
        header("d", Some(S::SuffixMatch("s".into()))),
        header("e", Some(S::ContainsMatch("c".into()))),
    ]);
    let rules: Vec<HeaderRule> = converted.into_iter().map(|h| h.rule).collect();
    assert_eq!(
        rules,
        [
            strict(StringMatch::Exact("x".into())),
            // An empty `exact_match` matches any value of a present header.
            strict(StringMatch::Prefix(String::new())),
            strict(StringMatch::Prefix("p".into())),
            strict(StringMatch::Suffix("s".into())),
            strict(StringMatch::Contains("c".into())),
        ]
    );
}

#[test]
fn query_matchers_keep_values_and_presence() {
    use query_parameter_matcher::QueryParameterMatchSpecifier as Q;
    let query = matcher_with(|m| {
        m.query_parameters = vec![
            QueryParameterMatcher {
                name: "debug".into(),
                query_parameter_match_specifier: Some(Q::StringMatch(exact("1"))),
            },
            QueryParameterMatcher {
                name: "trace".into(),
                query_parameter_match_specifier: Some(Q::PresentMatch(false)),
            },
            QueryParameterMatcher {
                name: "any".into(),
                query_parameter_match_specifier: None,
            },
        ]
    })
    .query;
    assert_eq!(
        query,
        [
            QueryMatch {
                name: "debug".into(),
                rule: QueryRule::Value(ValueMatch {
                    pattern: StringMatch::Exact("1".into()),
                    ignore_case: false,
                }),
            },
            QueryMatch {
                name: "trace".into(),
                rule: QueryRule::Present(false),
            },
            QueryMatch {
                name: "any".into(),
                rule: QueryRule::Present(true),
            },
        ]
    );
}

#[test]
fn a_match_needs_a_supported_path_specifier() {
    let reason = "only prefix, path, safe_regex and path_separated_prefix matches are supported";
    assert_route_rejected(|r| r.r#match = None, "match", reason);
    assert_route_rejected(
        |r| {
            r.r#match = Some(RouteMatch {
                path_specifier: Some(route_match::PathSpecifier::ConnectMatcher(
                    route_match::ConnectMatcher {},
                )),
                ..Default::default()
            })
        },
        "match",
        reason,
    );
}

#[test]
fn match_conditions_the_agent_cannot_evaluate_are_rejected() {
    let reason = "this match condition is not supported by the agent";
    assert_route_rejected(
        |r| r.r#match.as_mut().unwrap().grpc = Some(route_match::GrpcRouteMatchOptions {}),
        "match.grpc",
        reason,
    );
    assert_route_rejected(
        |r| {
            r.r#match.as_mut().unwrap().tls_context =
                Some(route_match::TlsContextMatchOptions::default())
        },
        "match.tls_context",
        reason,
    );
    assert_route_rejected(
        |r| r.r#match.as_mut().unwrap().dynamic_metadata = vec![Default::default()],
        "match.dynamic_metadata",
        reason,
    );
}

#[test]
fn a_regex_past_envoys_program_size_limit_is_rejected() {
    // Unicode letters \pL{1000}: past the program size limit, in RE2's
    // program as in the regex crate's.
    assert_route_rejected(
        |r| {
            r.r#match = Some(RouteMatch {
                path_specifier: Some(route_match::PathSpecifier::SafeRegex(regex(r"/\pL{1000}"))),
                ..Default::default()
            })
        },
        "match.safe_regex",
        "regex \"/\\\\pL{1000}\"... refused: regex compiles to more than 1048576 bytes, past the program size limit (Envoy's re2.max_program_size); use fewer or smaller repetitions, or ASCII classes instead of Unicode ones",
    );
    let long = format!("/{}", "a".repeat(1100));
    assert_route_rejected(
        |r| {
            r.r#match = Some(RouteMatch {
                path_specifier: Some(route_match::PathSpecifier::SafeRegex(regex(&long))),
                ..Default::default()
            })
        },
        "match.safe_regex",
        "regex \"/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"... refused: regex is 1101 bytes long, over the limit of 1024 (as istiod's)",
    );
}

#[test]
fn an_invalid_regex_is_rejected_on_one_line() {
    assert_route_rejected(
        |r| {
            r.r#match = Some(RouteMatch {
                path_specifier: Some(route_match::PathSpecifier::SafeRegex(regex("/(a"))),
                ..Default::default()
            })
        },
        "match.safe_regex",
        "invalid regex \"/(a\": unclosed group",
    );
}

#[test]
fn header_matchers_the_agent_cannot_evaluate_are_rejected() {
    let with_header =
        |h: HeaderMatcher| move |r: &mut Route| r.r#match.as_mut().unwrap().headers = vec![h];
    assert_route_rejected(
        with_header(header("bad header", None)),
        "match.headers[0]",
        "invalid header name \"bad header\"",
    );
    assert_route_rejected(
        with_header(header(
            "x-a",
            Some(header_matcher::HeaderMatchSpecifier::StringMatch(
                StringMatcher::default(),
            )),
        )),
        "match.headers[0].string_match",
        "unsupported string matcher",
    );
    assert_route_rejected(
        with_header(header(
            "x-a",
            Some(header_matcher::HeaderMatchSpecifier::StringMatch(
                StringMatcher {
                    match_pattern: Some(string_matcher::MatchPattern::SafeRegex(regex("["))),
                    ..Default::default()
                },
            )),
        )),
        "match.headers[0].string_match",
        "invalid regex \"[\": unclosed character class",
    );
}

#[test]
fn a_query_matcher_the_agent_cannot_evaluate_is_rejected() {
    assert_route_rejected(
        |r| {
            r.r#match.as_mut().unwrap().query_parameters = vec![QueryParameterMatcher {
                name: "q".into(),
                query_parameter_match_specifier: Some(
                    query_parameter_matcher::QueryParameterMatchSpecifier::StringMatch(
                        StringMatcher::default(),
                    ),
                ),
            }]
        },
        "match.query_parameters[0].string_match",
        "unsupported string matcher",
    );
}

#[test]
fn a_regex_match_covers_the_whole_path_as_re2s_full_match() {
    let matcher = matcher_with(|m| {
        m.path_specifier = Some(route_match::PathSpecifier::SafeRegex(regex("/a|/ab")));
    });
    let PathMatch::Regex(re) = matcher.path else {
        panic!("expected a regex path match");
    };
    // An unanchored leftmost match stops at `/a` and misses the whole
    // value; RE2's FullMatch takes the alternative that covers it.
    assert_eq!(re.find("/ab").map(|m| m.as_str()), Some("/ab"));
    assert!(re.find("/abc").is_none());
}
