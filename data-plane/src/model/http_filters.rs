//! The HTTP filters an HTTP connection manager runs before its router, in
//! its order (fault injection, CORS), and the configs a route gives them
//! (`typed_per_filter_config`, keyed by filter name), resolved at
//! conversion: the route's, else its virtual host's, else its route
//! configuration's.

use std::sync::Arc;

use super::cors::CorsPolicy;
use super::fault::Fault;

/// One HTTP filter before the router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpFilter {
    /// The filter's name, which per-route configs are keyed by.
    pub name: Arc<str>,
    pub kind: FilterKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterKind {
    /// `envoy.filters.http.fault`, with the filter's own faults, which
    /// apply where a route has none (istiod sends none).
    Fault(Option<Arc<Fault>>),
    /// `envoy.filters.http.cors`: only routes' policies.
    Cors,
}

/// A filter's config on one route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterConfig {
    Fault(Arc<Fault>),
    Cors(Arc<CorsPolicy>),
}

/// The filter configs of a route, by filter name. Empty (no allocation)
/// on routes that configure no filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilterConfigs(Vec<(Arc<str>, FilterConfig)>);

impl FilterConfigs {
    pub fn new(configs: Vec<(Arc<str>, FilterConfig)>) -> Self {
        Self(configs)
    }

    /// The config of the filter named `name`.
    pub fn get(&self, name: &str) -> Option<&FilterConfig> {
        self.0
            .iter()
            .find(|(filter, _)| &**filter == name)
            .map(|(_, config)| config)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &(Arc<str>, FilterConfig)> {
        self.0.iter()
    }
}
