//! Route configurations and the pure matching Envoy does on them: virtual
//! host by domain, then the first route whose match fits the request.

use std::sync::Arc;
use std::time::Duration;

use shared::egress::EgressPolicy;

mod headers;
mod matching;
mod retry;

pub use headers::{AppendAction, HeaderEdits, HeaderToAdd};
pub use matching::{
    HeaderMatch, HeaderRule, PathMatch, QueryMatch, QueryRule, RequestFacts, RouteMatch,
    StringMatch, ValueMatch,
};
pub use retry::{AttemptFailure, Backoff, RetryOn, RetryPolicy};

use crate::model::hash_policy::HashPolicy;

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
    /// The configs of the HTTP filters before the router (fault, CORS),
    /// resolved from the route, its virtual host and route configuration.
    pub filter_configs: super::http_filters::FilterConfigs,
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
    /// Clusters a copy of the request goes to (empty: none).
    pub mirrors: Vec<super::mirror::MirrorPolicy>,
    /// How a RING_HASH or MAGLEV cluster hashes the request.
    pub hash_policy: Vec<HashPolicy>,
    /// The route's own upgrade settings (`upgrade_configs`), which override
    /// its connection manager's.
    pub upgrades: Vec<super::upgrade::UpgradeType>,
    /// The status answered when the picked cluster is not in the config
    /// (`cluster_not_found_response_code`: 503 unless told).
    pub cluster_not_found: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterTarget {
    Cluster(Arc<str>),
    Weighted(Vec<WeightedCluster>),
}

/// One entry of Envoy's `weighted_clusters`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightedCluster {
    pub name: Arc<str>,
    pub weight: u32,
    /// The entry's own header edits, applied before the route's.
    pub headers: HeaderEdits,
    /// The entry's `host_rewrite_literal` (the route's wins over it).
    pub host_rewrite: Option<String>,
}

/// The cluster a request goes to, with what its weighted entry adds.
#[derive(Debug, Clone, Copy)]
pub struct PickedCluster<'r> {
    pub name: &'r Arc<str>,
    pub entry: Option<&'r WeightedCluster>,
}

impl WeightedCluster {
    /// An entry with no edits of its own (TCP proxy entries).
    pub fn new(name: &str, weight: u32) -> Self {
        Self {
            name: name.into(),
            weight,
            headers: HeaderEdits::default(),
            host_rewrite: None,
        }
    }
}

impl ClusterTarget {
    /// The name of the cluster [`Self::pick`] picks.
    pub fn pick_name(&self, roll: u64) -> Option<&Arc<str>> {
        self.pick(roll).map(|picked| picked.name)
    }

    /// Picks a cluster; `roll` is a uniform random number.
    pub fn pick(&self, roll: u64) -> Option<PickedCluster<'_>> {
        match self {
            ClusterTarget::Cluster(name) => Some(PickedCluster { name, entry: None }),
            ClusterTarget::Weighted(clusters) => {
                let total: u64 = clusters.iter().map(|c| u64::from(c.weight)).sum();
                if total == 0 {
                    return None;
                }
                let mut point = roll % total;
                for entry in clusters {
                    let weight = u64::from(entry.weight);
                    if point < weight {
                        return Some(PickedCluster {
                            name: &entry.name,
                            entry: Some(entry),
                        });
                    }
                    point -= weight;
                }
                None
            }
        }
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
    fn weighted_pick_respects_weights() {
        let target = ClusterTarget::Weighted(vec![
            WeightedCluster::new("a", 25),
            WeightedCluster::new("b", 75),
        ]);
        let picks: Vec<&str> = (0..100)
            .map(|roll| &**target.pick(roll).unwrap().name)
            .collect();
        assert_eq!(picks.iter().filter(|p| **p == "a").count(), 25);
    }
}
