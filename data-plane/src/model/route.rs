//! Route configurations and the pure matching Envoy does on them: virtual
//! host by domain, then the first route whose match fits the request.

use std::sync::Arc;
use std::time::Duration;

use shared::egress::EgressPolicy;

/// A route configuration from RDS.
#[derive(Debug, Clone)]
pub struct RouteConfig {
    pub name: Arc<str>,
    pub virtual_hosts: Vec<VirtualHost>,
}

impl PartialEq for RouteConfig {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.virtual_hosts == other.virtual_hosts
    }
}
impl Eq for RouteConfig {}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualHost {
    pub name: Arc<str>,
    pub domains: Vec<String>,
    pub routes: Vec<Route>,
    /// Send `x-envoy-attempt-count` upstream.
    pub include_attempt_count: bool,
    /// Requests on a connection without TLS are redirected to https
    /// (Envoy's `require_tls: ALL`).
    pub require_tls: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub name: Arc<str>,
    pub matcher: RouteMatch,
    pub action: RouteAction,
    /// `x-envoy-decorator-operation` sent upstream.
    pub decorator: Option<Arc<str>>,
    pub request_headers_to_add: Vec<HeaderToAdd>,
    pub request_headers_to_remove: Vec<String>,
    pub response_headers_to_add: Vec<HeaderToAdd>,
    pub response_headers_to_remove: Vec<String>,
    /// The egress mark of a fall-through route (`block_all`, or `allow_any`
    /// under dry run).
    pub egress_policy: Option<EgressPolicy>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderToAdd {
    pub name: http::HeaderName,
    pub value: http::HeaderValue,
    /// Replace existing values instead of appending.
    pub overwrite: bool,
}

#[derive(Debug, Clone)]
pub enum PathMatch {
    Prefix(String),
    Exact(String),
    Regex(regex::Regex),
}

impl PartialEq for PathMatch {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (PathMatch::Prefix(a), PathMatch::Prefix(b))
            | (PathMatch::Exact(a), PathMatch::Exact(b)) => a == b,
            (PathMatch::Regex(a), PathMatch::Regex(b)) => a.as_str() == b.as_str(),
            _ => false,
        }
    }
}
impl Eq for PathMatch {}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    pub path: PathMatch,
    pub case_sensitive: bool,
    pub headers: Vec<HeaderMatch>,
    pub query: Vec<QueryMatch>,
}

#[derive(Debug, Clone)]
pub enum StringMatch {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Contains(String),
    Regex(regex::Regex),
    /// Header present (any value).
    Present,
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
            (Present, Present) => true,
            _ => false,
        }
    }
}
impl Eq for StringMatch {}

impl StringMatch {
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
            StringMatch::Present => true,
        }
    }
}

/// Envoy's safe_regex matches the whole string.
fn full_match(re: &regex::Regex, value: &str) -> bool {
    re.find(value)
        .is_some_and(|m| m.start() == 0 && m.end() == value.len())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderMatch {
    /// Lowercase; pseudo-headers (`:authority`, `:path`, `:method`) included.
    pub name: String,
    pub pattern: StringMatch,
    pub ignore_case: bool,
    pub invert: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryMatch {
    pub name: String,
    pub pattern: StringMatch,
    pub ignore_case: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteAction {
    Forward(Forward),
    Redirect(Redirect),
    Direct { status: u16, body: Option<String> },
}

/// Send to a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    pub target: ClusterTarget,
    /// `None` disables the timeout (Envoy's `0s`).
    pub timeout: Option<Duration>,
    pub retry: Option<RetryPolicy>,
    pub prefix_rewrite: Option<String>,
    pub host_rewrite: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterTarget {
    Cluster(Arc<str>),
    Weighted(Vec<(Arc<str>, u32)>),
}

impl ClusterTarget {
    /// Picks a cluster; `roll` is a uniform random number.
    pub fn pick(&self, roll: u64) -> Option<&Arc<str>> {
        match self {
            ClusterTarget::Cluster(name) => Some(name),
            ClusterTarget::Weighted(clusters) => {
                let total: u64 = clusters.iter().map(|(_, w)| u64::from(*w)).sum();
                if total == 0 {
                    return None;
                }
                let mut point = roll % total;
                for (name, weight) in clusters {
                    let weight = u64::from(*weight);
                    if point < weight {
                        return Some(name);
                    }
                    point -= weight;
                }
                None
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    pub num_retries: u32,
    pub per_try_timeout: Option<Duration>,
    pub on_connect_failure: bool,
    pub on_5xx: bool,
    pub on_gateway_error: bool,
    pub on_reset: bool,
    pub retriable_status_codes: Vec<u16>,
}

impl RetryPolicy {
    /// Whether a response with `status` should be retried.
    pub fn retries_status(&self, status: u16) -> bool {
        (self.on_5xx && status >= 500)
            || (self.on_gateway_error && matches!(status, 502..=504))
            || self.retriable_status_codes.contains(&status)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    pub status: u16,
    pub scheme: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub path: Option<String>,
}

/// The facts of a request that routing looks at.
pub struct RequestFacts<'a> {
    pub authority: &'a str,
    pub path: &'a str,
    pub headers: &'a http::HeaderMap,
    pub method: &'a http::Method,
}

impl RouteConfig {
    /// The virtual host for `authority`, as Envoy picks: exact domain, then
    /// the longest suffix wildcard (`*.foo.com`), then the longest prefix
    /// wildcard (`foo.*`), then `*`. The authority is matched as sent,
    /// port included (which is why Istio lists `host` and `host:port`).
    pub fn virtual_host(&self, authority: &str) -> Option<&VirtualHost> {
        self.best_host(&authority.to_ascii_lowercase())
    }

    fn best_host(&self, authority: &str) -> Option<&VirtualHost> {
        let mut best: Option<(u8, usize, &VirtualHost)> = None;
        for vh in &self.virtual_hosts {
            for domain in &vh.domains {
                let Some(rank) = domain_rank(domain, authority) else {
                    continue;
                };
                if best.is_none_or(|(c, l, _)| rank > (c, l)) {
                    best = Some((rank.0, rank.1, vh));
                }
            }
        }
        best.map(|(_, _, vh)| vh)
    }

    /// The virtual host and first matching route for a request.
    pub fn route(&self, req: &RequestFacts<'_>) -> Option<(&VirtualHost, &Route)> {
        let vh = self.virtual_host(req.authority)?;
        vh.routes
            .iter()
            .find(|r| r.matcher.matches(req))
            .map(|r| (vh, r))
    }
}

/// `(class, length)`: exact 3, suffix wildcard 2, prefix wildcard 1, `*` 0.
fn domain_rank(domain: &str, authority: &str) -> Option<(u8, usize)> {
    let domain = domain.to_ascii_lowercase();
    if domain == "*" {
        return Some((0, 0));
    }
    if domain == authority {
        return Some((3, domain.len()));
    }
    if let Some(suffix) = domain.strip_prefix('*') {
        return (authority.len() > suffix.len() && authority.ends_with(suffix))
            .then_some((2, suffix.len()));
    }
    if let Some(prefix) = domain.strip_suffix('*') {
        return (authority.len() > prefix.len() && authority.starts_with(prefix))
            .then_some((1, prefix.len()));
    }
    None
}

impl RouteMatch {
    pub fn matches(&self, req: &RequestFacts<'_>) -> bool {
        let (path, query) = req.path.split_once('?').unwrap_or((req.path, ""));
        let path_ok = match &self.path {
            PathMatch::Prefix(prefix) => {
                StringMatch::Prefix(prefix.clone()).matches(path, !self.case_sensitive)
            }
            PathMatch::Exact(exact) => {
                StringMatch::Exact(exact.clone()).matches(path, !self.case_sensitive)
            }
            PathMatch::Regex(re) => full_match(re, path),
        };
        path_ok
            && self.headers.iter().all(|h| h.matches(req))
            && self.query.iter().all(|q| {
                query
                    .split('&')
                    .filter_map(|pair| {
                        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                        (k == q.name).then_some(v)
                    })
                    .any(|v| q.pattern.matches(v, q.ignore_case))
            })
    }
}

impl HeaderMatch {
    fn matches(&self, req: &RequestFacts<'_>) -> bool {
        let value: Option<String> = match self.name.as_str() {
            ":authority" => Some(req.authority.to_string()),
            ":path" => Some(req.path.to_string()),
            ":method" => Some(req.method.as_str().to_string()),
            name => {
                let values: Vec<&str> = req
                    .headers
                    .get_all(name)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .collect();
                (!values.is_empty()).then(|| values.join(","))
            }
        };
        let matched = value.is_some_and(|v| self.pattern.matches(&v, self.ignore_case));
        matched != self.invert
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vh(name: &str, domains: &[&str]) -> VirtualHost {
        VirtualHost {
            name: name.into(),
            domains: domains.iter().map(|d| d.to_string()).collect(),
            routes: vec![],
            include_attempt_count: false,
            require_tls: false,
        }
    }

    fn config() -> RouteConfig {
        RouteConfig {
            name: "80".into(),
            virtual_hosts: vec![
                vh("httpbin.org:80", &["httpbin.org", "httpbin.org:80"]),
                vh("wild", &["*.cnn.com"]),
                vh("wilder", &["*.com"]),
                vh("prefix", &["api.*"]),
                vh("allow_any", &["*"]),
            ],
        }
    }

    #[test]
    fn virtual_host_selection_follows_envoy_order() {
        let c = config();
        assert_eq!(
            &*c.virtual_host("httpbin.org").unwrap().name,
            "httpbin.org:80"
        );
        assert_eq!(
            &*c.virtual_host("HTTPBIN.org:80").unwrap().name,
            "httpbin.org:80"
        );
        assert_eq!(&*c.virtual_host("edition.cnn.com").unwrap().name, "wild");
        assert_eq!(
            &*c.virtual_host("edition.cnn.com:80").unwrap().name,
            "allow_any"
        );
        assert_eq!(&*c.virtual_host("example.com").unwrap().name, "wilder");
        assert_eq!(&*c.virtual_host("api.internal").unwrap().name, "prefix");
        assert_eq!(&*c.virtual_host("unknown.org").unwrap().name, "allow_any");
    }

    #[test]
    fn route_matching() {
        let headers = http::HeaderMap::new();
        let get = http::Method::GET;
        let facts = |path: &'static str| RequestFacts {
            authority: "a",
            path,
            headers: &headers,
            method: &get,
        };
        let m = |path: PathMatch| RouteMatch {
            path,
            case_sensitive: true,
            headers: vec![],
            query: vec![],
        };
        assert!(m(PathMatch::Prefix("/".into())).matches(&facts("/delay/5")));
        assert!(m(PathMatch::Exact("/headers".into())).matches(&facts("/headers?x=1")));
        assert!(!m(PathMatch::Exact("/headers".into())).matches(&facts("/headers/x")));
        let re = regex::Regex::new("/delay/[0-9]+").unwrap();
        assert!(m(PathMatch::Regex(re.clone())).matches(&facts("/delay/5")));
        assert!(!m(PathMatch::Regex(re)).matches(&facts("/delay/5/x")));
    }

    #[test]
    fn weighted_pick_respects_weights() {
        let target = ClusterTarget::Weighted(vec![("a".into(), 25), ("b".into(), 75)]);
        let picks: Vec<&str> = (0..100).map(|roll| &**target.pick(roll).unwrap()).collect();
        assert_eq!(picks.iter().filter(|p| **p == "a").count(), 25);
    }
}
