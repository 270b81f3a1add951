//! A route's match as Envoy evaluates it: the path (prefix, exact, regex,
//! path-separated prefix; case-insensitive on request), header matchers
//! (pseudo-headers included) and query parameter matchers.

use std::borrow::Cow;

/// The facts of a request that routing looks at.
pub struct RequestFacts<'a> {
    pub authority: &'a str,
    /// The path with its query, as `:path` carries it.
    pub path: &'a str,
    pub headers: &'a http::HeaderMap,
    pub method: &'a http::Method,
    /// `:scheme` as Envoy's connection manager sets it: the scheme of an
    /// absolute-form (or HTTP/2) request, else `https` over TLS, `http`
    /// otherwise.
    pub scheme: &'a str,
}

#[derive(Debug, Clone)]
pub enum PathMatch {
    Prefix(String),
    Exact(String),
    Regex(regex::Regex),
    /// Envoy's `path_separated_prefix`: the prefix, then the end of the
    /// path or a `/`.
    SeparatedPrefix(String),
}

impl PartialEq for PathMatch {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (PathMatch::Prefix(a), PathMatch::Prefix(b))
            | (PathMatch::Exact(a), PathMatch::Exact(b))
            | (PathMatch::SeparatedPrefix(a), PathMatch::SeparatedPrefix(b)) => a == b,
            (PathMatch::Regex(a), PathMatch::Regex(b)) => a.as_str() == b.as_str(),
            _ => false,
        }
    }
}
impl Eq for PathMatch {}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    pub path: PathMatch,
    /// Whether prefix and exact paths compare case-sensitively (regexes
    /// always do, as in Envoy).
    pub case_sensitive: bool,
    pub headers: Vec<HeaderMatch>,
    pub query: Vec<QueryMatch>,
}

/// Envoy's `StringMatcher` patterns.
#[derive(Debug, Clone)]
pub enum StringMatch {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Contains(String),
    Regex(regex::Regex),
}

impl PartialEq for StringMatch {
    fn eq(&self, other: &Self) -> bool {
        use StringMatch::*;
        match (self, other) {
            (Exact(a), Exact(b))
            | (Prefix(a), Prefix(b))
            | (Suffix(a), Suffix(b))
            | (Contains(a), Contains(b)) => a == b,
            (Regex(a), Regex(b)) => a.as_str() == b.as_str(),
            _ => false,
        }
    }
}
impl Eq for StringMatch {}

impl StringMatch {
    /// Whether `value` matches; `ignore_case` folds ASCII case for every
    /// pattern but a regex (Envoy ignores it there).
    pub fn matches(&self, value: &str, ignore_case: bool) -> bool {
        let eq = |a: &str, b: &str| {
            if ignore_case {
                a.eq_ignore_ascii_case(b)
            } else {
                a == b
            }
        };
        match self {
            StringMatch::Exact(s) => eq(value, s),
            StringMatch::Prefix(s) => {
                value.len() >= s.len()
                    && value.is_char_boundary(s.len())
                    && eq(&value[..s.len()], s)
            }
            StringMatch::Suffix(s) => {
                value.len() >= s.len()
                    && value.is_char_boundary(value.len() - s.len())
                    && eq(&value[value.len() - s.len()..], s)
            }
            StringMatch::Contains(s) => {
                if ignore_case {
                    value.to_ascii_lowercase().contains(&s.to_ascii_lowercase())
                } else {
                    value.contains(s.as_str())
                }
            }
            StringMatch::Regex(re) => full_match(re, value),
        }
    }
}

/// Envoy's safe_regex matches the whole string.
pub(crate) fn full_match(re: &regex::Regex, value: &str) -> bool {
    re.find(value)
        .is_some_and(|m| m.start() == 0 && m.end() == value.len())
}

/// A string pattern with its case rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueMatch {
    pub pattern: StringMatch,
    pub ignore_case: bool,
}

impl ValueMatch {
    pub fn matches(&self, value: &str) -> bool {
        self.pattern.matches(value, self.ignore_case)
    }
}

/// What a header matcher asks of the header's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderRule {
    /// `present_match`: present (true) or absent (false).
    Present(bool),
    Value(ValueMatch),
    /// `range_match`: an integer in `[start, end)`.
    Range {
        start: i64,
        end: i64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderMatch {
    /// Lowercase; pseudo-headers (`:authority`, `:path`, `:method`,
    /// `:scheme`) included.
    pub name: String,
    pub rule: HeaderRule,
    pub invert: bool,
    /// Envoy's `treat_missing_header_as_empty`: an absent header is
    /// matched as the empty value.
    pub treat_missing_as_empty: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryMatch {
    pub name: String,
    pub rule: QueryRule,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryRule {
    /// `present_match`: present (true) or absent (false).
    Present(bool),
    Value(ValueMatch),
}

impl RouteMatch {
    pub fn matches(&self, req: &RequestFacts<'_>) -> bool {
        let (path, query) = req.path.split_once('?').unwrap_or((req.path, ""));
        let path = path.split_once('#').map_or(path, |(path, _)| path);
        self.path_matches(path)
            && self.headers.iter().all(|h| h.matches(req))
            && self.query.iter().all(|q| q.matches(query))
    }

    fn path_matches(&self, path: &str) -> bool {
        let ignore_case = !self.case_sensitive;
        match &self.path {
            PathMatch::Prefix(prefix) => {
                StringMatch::Prefix(prefix.clone()).matches(path, ignore_case)
            }
            PathMatch::Exact(exact) => StringMatch::Exact(exact.clone()).matches(path, ignore_case),
            PathMatch::Regex(re) => full_match(re, path),
            PathMatch::SeparatedPrefix(prefix) => {
                StringMatch::Prefix(prefix.clone()).matches(path, ignore_case)
                    && matches!(path.as_bytes().get(prefix.len()), None | Some(b'/'))
            }
        }
    }
}

impl HeaderMatch {
    /// Envoy's header matching: every value of the header joined with `,`;
    /// an absent header matches only `present_match: false` (or, inverted,
    /// `present_match: true`), unless it is treated as empty.
    fn matches(&self, req: &RequestFacts<'_>) -> bool {
        let value = header_value(req, &self.name);
        let value = match value {
            Some(value) => value,
            None if self.treat_missing_as_empty => Cow::Borrowed(""),
            None => return self.rule == HeaderRule::Present(self.invert),
        };
        let matched = match &self.rule {
            HeaderRule::Present(present) => *present,
            HeaderRule::Value(pattern) => pattern.matches(&value),
            HeaderRule::Range { start, end } => value
                .parse::<i64>()
                .is_ok_and(|n| (*start..*end).contains(&n)),
        };
        matched != self.invert
    }
}

/// A request header's value as Envoy's header map holds it: pseudo-headers
/// from the request line, `host` only as `:authority` (HTTP/1's Host is
/// stored under that name), others joined with `,`.
fn header_value<'r>(req: &RequestFacts<'r>, name: &str) -> Option<Cow<'r, str>> {
    match name {
        ":authority" => Some(Cow::Borrowed(req.authority)),
        ":path" => Some(Cow::Borrowed(req.path)),
        ":method" => Some(Cow::Borrowed(req.method.as_str())),
        ":scheme" => Some(Cow::Borrowed(req.scheme)),
        "host" => None,
        name if name.starts_with(':') => None,
        name => {
            let mut values = req
                .headers
                .get_all(name)
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()));
            let first = values.next()?;
            Some(values.fold(first, |joined, v| Cow::Owned(format!("{joined},{v}"))))
        }
    }
}

impl QueryMatch {
    /// Envoy's query parameter matching: the first value of the parameter,
    /// percent-decoded.
    fn matches(&self, query: &str) -> bool {
        let value = first_query_value(query, &self.name);
        match &self.rule {
            QueryRule::Present(present) => value.is_some() == *present,
            QueryRule::Value(pattern) => value.is_some_and(|v| pattern.matches(&v)),
        }
    }
}

/// The decoded value of the first `name` parameter in `query`.
fn first_query_value(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        .find(|(key, _)| decode_query_component(key) == name)
        .map(|(_, value)| decode_query_component(value))
}

/// Decodes `%XX` escapes and `+` (a space), as a form-encoded query is read.
fn decode_query_component(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => decoded.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                {
                    Some(byte) => {
                        decoded.push(byte);
                        i += 2;
                    }
                    None => decoded.push(b'%'),
                }
            }
            byte => decoded.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

#[cfg(test)]
mod tests;
