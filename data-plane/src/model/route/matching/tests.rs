//! Route matching as Envoy evaluates it: paths, header matchers on headers
//! and pseudo-headers, query parameters.

use super::*;

struct Req {
    headers: http::HeaderMap,
    method: http::Method,
    authority: &'static str,
    path: &'static str,
    scheme: &'static str,
}

fn req(path: &'static str) -> Req {
    Req {
        headers: http::HeaderMap::new(),
        method: http::Method::GET,
        authority: "httpbin.test",
        path,
        scheme: "http",
    }
}

impl Req {
    fn header(mut self, name: &'static str, value: &'static str) -> Self {
        self.headers
            .append(name, http::HeaderValue::from_static(value));
        self
    }

    fn facts(&self) -> RequestFacts<'_> {
        RequestFacts {
            authority: self.authority,
            path: self.path,
            headers: &self.headers,
            method: &self.method,
            scheme: self.scheme,
        }
    }
}

fn on_path(path: PathMatch, case_sensitive: bool) -> RouteMatch {
    RouteMatch {
        path,
        case_sensitive,
        headers: vec![],
        query: vec![],
    }
}

fn on_header(name: &str, rule: HeaderRule, invert: bool, missing_as_empty: bool) -> RouteMatch {
    RouteMatch {
        headers: vec![HeaderMatch {
            name: name.into(),
            rule,
            invert,
            treat_missing_as_empty: missing_as_empty,
        }],
        ..on_path(PathMatch::Prefix("/".into()), true)
    }
}

fn on_query(name: &str, rule: QueryRule) -> RouteMatch {
    RouteMatch {
        query: vec![QueryMatch {
            name: name.into(),
            rule,
        }],
        ..on_path(PathMatch::Prefix("/".into()), true)
    }
}

fn value(pattern: StringMatch) -> ValueMatch {
    ValueMatch {
        pattern,
        ignore_case: false,
    }
}

fn exact(s: &str) -> HeaderRule {
    HeaderRule::Value(value(StringMatch::Exact(s.into())))
}

#[test]
fn paths_match_without_the_query_and_regexes_match_whole() {
    let m = |path| on_path(path, true);
    assert!(m(PathMatch::Prefix("/".into())).matches(&req("/delay/5").facts()));
    assert!(m(PathMatch::Exact("/headers".into())).matches(&req("/headers?x=1").facts()));
    assert!(!m(PathMatch::Exact("/headers".into())).matches(&req("/headers/x").facts()));
    let re = regex::Regex::new("/delay/[0-9]+").unwrap();
    assert!(m(PathMatch::Regex(re.clone())).matches(&req("/delay/5").facts()));
    assert!(!m(PathMatch::Regex(re)).matches(&req("/delay/5/x").facts()));
}

#[test]
fn case_insensitive_paths_fold_prefix_and_exact_but_not_regex() {
    let m = |path| on_path(path, false);
    assert!(m(PathMatch::Prefix("/API".into())).matches(&req("/api/v1").facts()));
    assert!(m(PathMatch::Exact("/Status".into())).matches(&req("/STATUS?x").facts()));
    let re = regex::Regex::new("/api").unwrap();
    assert!(!m(PathMatch::Regex(re)).matches(&req("/API").facts()));
    assert!(!on_path(PathMatch::Prefix("/API".into()), true).matches(&req("/api").facts()));
}

#[test]
fn a_path_separated_prefix_ends_at_a_slash_or_the_path() {
    let m = on_path(PathMatch::SeparatedPrefix("/api".into()), true);
    assert!(m.matches(&req("/api").facts()));
    assert!(m.matches(&req("/api/v1").facts()));
    assert!(m.matches(&req("/api?x=1").facts()));
    assert!(!m.matches(&req("/apis").facts()));
}

#[test]
fn pseudo_headers_come_from_the_request_line() {
    let r = req("/get?a=1");
    assert!(on_header(":path", exact("/get?a=1"), false, false).matches(&r.facts()));
    assert!(on_header(":method", exact("GET"), false, false).matches(&r.facts()));
    assert!(on_header(":authority", exact("httpbin.test"), false, false).matches(&r.facts()));
    assert!(on_header(":scheme", exact("http"), false, false).matches(&r.facts()));
    let tls = Req {
        scheme: "https",
        ..req("/")
    };
    assert!(!on_header(":scheme", exact("http"), false, false).matches(&tls.facts()));
    assert!(on_header(":scheme", exact("https"), false, false).matches(&tls.facts()));
}

#[test]
fn host_is_only_matched_as_the_authority() {
    let r = req("/").header("host", "httpbin.test");
    assert!(!on_header("host", HeaderRule::Present(true), false, false).matches(&r.facts()));
}

#[test]
fn repeated_headers_are_matched_joined_with_commas() {
    let r = req("/").header("x-a", "1").header("x-a", "2");
    assert!(on_header("x-a", exact("1,2"), false, false).matches(&r.facts()));
}

#[test]
fn present_match_true_wants_the_header_and_false_its_absence() {
    let with = req("/").header("x-user", "jason");
    let without = req("/");
    let present = |p, invert| on_header("x-user", HeaderRule::Present(p), invert, false);
    assert!(present(true, false).matches(&with.facts()));
    assert!(!present(true, false).matches(&without.facts()));
    assert!(!present(false, false).matches(&with.facts()));
    assert!(present(false, false).matches(&without.facts()));
    // Inverted: `present_match: true` with `invert_match` is Istio's
    // `withoutHeaders` with an empty match.
    assert!(!present(true, true).matches(&with.facts()));
    assert!(present(true, true).matches(&without.facts()));
}

#[test]
fn an_absent_header_fails_a_value_match_even_inverted() {
    let without = req("/");
    assert!(!on_header("x-user", exact("jason"), false, false).matches(&without.facts()));
    assert!(!on_header("x-user", exact("jason"), true, false).matches(&without.facts()));
}

#[test]
fn treat_missing_as_empty_makes_an_inverted_match_hold_without_the_header() {
    // Istio's `withoutHeaders: {x-user: {exact: jason}}`.
    let m = on_header("x-user", exact("jason"), true, true);
    assert!(m.matches(&req("/").facts()));
    assert!(m.matches(&req("/").header("x-user", "mary").facts()));
    assert!(!m.matches(&req("/").header("x-user", "jason").facts()));
}

#[test]
fn string_matches_fold_case_when_asked() {
    let folded = HeaderRule::Value(ValueMatch {
        pattern: StringMatch::Prefix("Bear".into()),
        ignore_case: true,
    });
    let r = req("/").header("authorization", "bearer x");
    assert!(on_header("authorization", folded, false, false).matches(&r.facts()));
    let strict = HeaderRule::Value(value(StringMatch::Prefix("Bear".into())));
    assert!(!on_header("authorization", strict, false, false).matches(&r.facts()));
}

#[test]
fn a_range_match_is_half_open_on_integers() {
    let range = || on_header("x-n", HeaderRule::Range { start: 1, end: 10 }, false, false);
    assert!(range().matches(&req("/").header("x-n", "1").facts()));
    assert!(range().matches(&req("/").header("x-n", "9").facts()));
    assert!(!range().matches(&req("/").header("x-n", "10").facts()));
    assert!(!range().matches(&req("/").header("x-n", "x").facts()));
}

#[test]
fn query_parameters_match_their_first_decoded_value() {
    let m = on_query(
        "user",
        QueryRule::Value(value(StringMatch::Exact("a b/c".into()))),
    );
    assert!(m.matches(&req("/?user=a+b%2Fc&user=x").facts()));
    assert!(!m.matches(&req("/?user=x&user=a+b%2Fc").facts()));
    assert!(!m.matches(&req("/?other=a+b%2Fc").facts()));
}

#[test]
fn query_present_match_wants_the_parameter_or_its_absence() {
    let present = on_query("debug", QueryRule::Present(true));
    let absent = on_query("debug", QueryRule::Present(false));
    assert!(present.matches(&req("/?debug").facts()));
    assert!(present.matches(&req("/?a=1&debug=").facts()));
    assert!(!present.matches(&req("/?a=1").facts()));
    assert!(absent.matches(&req("/?a=1").facts()));
    assert!(!absent.matches(&req("/?debug=1").facts()));
}
