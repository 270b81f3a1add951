//! A route's match → model: the path specifier, header matchers (every
//! form Envoy has but a custom string matcher) and query parameter
//! matchers; a condition the agent cannot evaluate is rejected.

use proto::pb::envoy::config::route::v3 as pb_route;
use proto::pb::envoy::r#type::matcher::v3::{StringMatcher, string_matcher};

use super::super::At;
use crate::model::Error;
use crate::model::route::{
    HeaderMatch, HeaderRule, PathMatch, QueryMatch, QueryRule, RouteMatch, StringMatch, ValueMatch,
};

pub(super) fn route_match(m: &pb_route::RouteMatch, at: &At<'_>) -> Result<RouteMatch, Error> {
    use pb_route::route_match::PathSpecifier;
    let path = match &m.path_specifier {
        Some(PathSpecifier::Prefix(p)) => PathMatch::Prefix(p.clone()),
        Some(PathSpecifier::Path(p)) => PathMatch::Exact(p.clone()),
        Some(PathSpecifier::SafeRegex(re)) => {
            PathMatch::Regex(regex(&re.regex, &at.field("safe_regex"))?)
        }
        Some(PathSpecifier::PathSeparatedPrefix(p)) => PathMatch::SeparatedPrefix(p.clone()),
        _ => {
            return Err(at.error(
                "only prefix, path, safe_regex and path_separated_prefix matches are supported",
            ));
        }
    };
    unsupported_conditions(m, at)?;
    let headers = m
        .headers
        .iter()
        .enumerate()
        .map(|(i, h)| header_match(h, &at.field(format!("headers[{i}]"))))
        .collect::<Result<_, _>>()?;
    let query = m
        .query_parameters
        .iter()
        .enumerate()
        .map(|(i, q)| query_match(q, &at.field(format!("query_parameters[{i}]"))))
        .collect::<Result<_, _>>()?;
    Ok(RouteMatch {
        path,
        case_sensitive: m.case_sensitive.as_ref().is_none_or(|b| b.value),
        headers,
        query,
    })
}

/// The match conditions the agent has nothing to evaluate against.
fn unsupported_conditions(m: &pb_route::RouteMatch, at: &At<'_>) -> Result<(), Error> {
    let unsupported = [
        ("runtime_fraction", m.runtime_fraction.is_some()),
        ("cookies", !m.cookies.is_empty()),
        ("grpc", m.grpc.is_some()),
        ("tls_context", m.tls_context.is_some()),
        ("dynamic_metadata", !m.dynamic_metadata.is_empty()),
        ("filter_state", !m.filter_state.is_empty()),
    ];
    match unsupported.iter().find(|(_, set)| *set) {
        Some((field, _)) => Err(at
            .field(field)
            .error("this match condition is not supported by the agent")),
        None => Ok(()),
    }
}

// Envoy still accepts the deprecated header match fields; so do we.
#[allow(deprecated)]
fn header_match(h: &pb_route::HeaderMatcher, at: &At<'_>) -> Result<HeaderMatch, Error> {
    use pb_route::header_matcher::HeaderMatchSpecifier as S;
    let name = h.name.to_ascii_lowercase();
    if !name.starts_with(':') && http::HeaderName::from_bytes(name.as_bytes()).is_err() {
        return Err(at.error(format!("invalid header name {:?}", h.name)));
    }
    let exact = |s: &str| ValueMatch {
        pattern: StringMatch::Exact(s.to_string()),
        ignore_case: false,
    };
    let strict = |pattern| ValueMatch {
        pattern,
        ignore_case: false,
    };
    let rule = match &h.header_match_specifier {
        Some(S::StringMatch(sm)) => HeaderRule::Value(value_match(sm, &at.field("string_match"))?),
        // The deprecated `exact_match` with an empty value matches any value.
        Some(S::ExactMatch(s)) if s.is_empty() => {
            HeaderRule::Value(strict(StringMatch::Prefix(String::new())))
        }
        Some(S::ExactMatch(s)) => HeaderRule::Value(exact(s)),
        Some(S::PrefixMatch(s)) => HeaderRule::Value(strict(StringMatch::Prefix(s.clone()))),
        Some(S::SuffixMatch(s)) => HeaderRule::Value(strict(StringMatch::Suffix(s.clone()))),
        Some(S::ContainsMatch(s)) => HeaderRule::Value(strict(StringMatch::Contains(s.clone()))),
        Some(S::SafeRegexMatch(re)) => HeaderRule::Value(strict(StringMatch::Regex(regex(
            &re.regex,
            &at.field("safe_regex_match"),
        )?))),
        Some(S::RangeMatch(range)) => HeaderRule::Range {
            start: range.start,
            end: range.end,
        },
        Some(S::PresentMatch(present)) => HeaderRule::Present(*present),
        None => HeaderRule::Present(true),
    };
    Ok(HeaderMatch {
        name,
        rule,
        invert: h.invert_match,
        treat_missing_as_empty: h.treat_missing_header_as_empty,
    })
}

fn query_match(q: &pb_route::QueryParameterMatcher, at: &At<'_>) -> Result<QueryMatch, Error> {
    use pb_route::query_parameter_matcher::QueryParameterMatchSpecifier as Q;
    let rule = match &q.query_parameter_match_specifier {
        Some(Q::StringMatch(sm)) => QueryRule::Value(value_match(sm, &at.field("string_match"))?),
        Some(Q::PresentMatch(present)) => QueryRule::Present(*present),
        None => QueryRule::Present(true),
    };
    Ok(QueryMatch {
        name: q.name.clone(),
        rule,
    })
}

fn value_match(m: &StringMatcher, at: &At<'_>) -> Result<ValueMatch, Error> {
    Ok(ValueMatch {
        pattern: string_match(m, at)?,
        ignore_case: m.ignore_case,
    })
}

/// A `StringMatcher`'s pattern (its `ignore_case` is the caller's).
pub(in crate::model::convert) fn string_match(
    m: &StringMatcher,
    at: &At<'_>,
) -> Result<StringMatch, Error> {
    use string_matcher::MatchPattern;
    Ok(match &m.match_pattern {
        Some(MatchPattern::Exact(s)) => StringMatch::Exact(s.clone()),
        Some(MatchPattern::Prefix(s)) => StringMatch::Prefix(s.clone()),
        Some(MatchPattern::Suffix(s)) => StringMatch::Suffix(s.clone()),
        Some(MatchPattern::Contains(s)) => StringMatch::Contains(s.clone()),
        Some(MatchPattern::SafeRegex(re)) => StringMatch::Regex(regex(&re.regex, at)?),
        _ => return Err(at.error("unsupported string matcher")),
    })
}

/// A regex anchored at both ends, matching the whole value as Envoy's
/// safe_regex does, within the size limits both sides share (Envoy's RE2
/// program size limit, `shared::regex_limit`). A syntax error is reported
/// by its last line, so the NACK stays on one line; a regex too large is
/// named by its start.
fn regex(pattern: &str, at: &At<'_>) -> Result<regex::Regex, Error> {
    use shared::regex_limit::{RegexError, compile_whole};
    compile_whole(pattern).map_err(|error| match error {
        RegexError::Syntax(detail) => at.error(format!("invalid regex {pattern:?}: {detail}")),
        too_large => {
            let start: String = pattern.chars().take(32).collect();
            at.error(format!("regex {start:?}... refused: {too_large}"))
        }
    })
}
