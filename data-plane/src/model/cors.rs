//! A CORS policy (`envoy.filters.http.cors`'s per-route `CorsPolicy`), its
//! fields already merged from the route and its virtual host as Envoy
//! reads them: the first level that sets a field gives it.

use super::fraction::Fraction;
use super::route::StringMatch;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsPolicy {
    /// Origins allowed: each pattern with its `ignore_case`.
    pub allow_origins: Vec<(StringMatch, bool)>,
    pub allow_methods: Option<String>,
    pub allow_headers: Option<String>,
    pub expose_headers: Option<String>,
    pub max_age: Option<String>,
    pub allow_credentials: Option<bool>,
    pub allow_private_network_access: Option<bool>,
    /// Envoy's default: forward a preflight whose origin is not allowed.
    pub forward_not_matching_preflights: Option<bool>,
    /// Share of requests the policy is enforced on (all when unset).
    pub filter_enabled: Option<Fraction>,
    /// Share of requests whose origin is only checked and counted (none
    /// when unset).
    pub shadow_enabled: Option<Fraction>,
}

impl CorsPolicy {
    /// Whether `origin` is allowed: a pattern matches it, or matches `*`.
    pub fn allows_origin(&self, origin: &str) -> bool {
        self.allow_origins.iter().any(|(pattern, ignore_case)| {
            pattern.matches("*", *ignore_case) || pattern.matches(origin, *ignore_case)
        })
    }

    /// This policy with the fields it leaves unset taken from `outer` (the
    /// virtual host's, or the route configuration's).
    pub fn or(mut self, outer: &CorsPolicy) -> CorsPolicy {
        if self.allow_origins.is_empty() {
            self.allow_origins = outer.allow_origins.clone();
        }
        let fill = |own: &mut Option<String>, outer: &Option<String>| {
            if own.is_none() {
                own.clone_from(outer);
            }
        };
        fill(&mut self.allow_methods, &outer.allow_methods);
        fill(&mut self.allow_headers, &outer.allow_headers);
        fill(&mut self.expose_headers, &outer.expose_headers);
        fill(&mut self.max_age, &outer.max_age);
        self.allow_credentials = self.allow_credentials.or(outer.allow_credentials);
        self.allow_private_network_access = self
            .allow_private_network_access
            .or(outer.allow_private_network_access);
        self.forward_not_matching_preflights = self
            .forward_not_matching_preflights
            .or(outer.forward_not_matching_preflights);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> CorsPolicy {
        CorsPolicy {
            allow_origins: Vec::new(),
            allow_methods: None,
            allow_headers: None,
            expose_headers: None,
            max_age: None,
            allow_credentials: None,
            allow_private_network_access: None,
            forward_not_matching_preflights: None,
            filter_enabled: None,
            shadow_enabled: None,
        }
    }

    #[test]
    fn an_origin_is_allowed_by_a_matching_pattern_or_a_star() {
        let mut p = policy();
        p.allow_origins = vec![(StringMatch::Exact("https://a.test".into()), true)];
        assert!(p.allows_origin("https://A.test"));
        assert!(!p.allows_origin("https://b.test"));
        p.allow_origins = vec![(StringMatch::Exact("*".into()), false)];
        assert!(p.allows_origin("https://b.test"));
        assert!(!policy().allows_origin("https://a.test"));
    }

    #[test]
    fn the_route_s_fields_win_and_the_virtual_host_fills_the_rest() {
        let mut route = policy();
        route.allow_methods = Some("GET".into());
        route.allow_credentials = Some(false);
        let mut vhost = policy();
        vhost.allow_methods = Some("POST".into());
        vhost.max_age = Some("60".into());
        vhost.allow_credentials = Some(true);
        vhost.allow_origins = vec![(StringMatch::Exact("*".into()), false)];
        vhost.filter_enabled = Some(Fraction::ALL);
        let merged = route.or(&vhost);
        assert_eq!(merged.allow_methods.as_deref(), Some("GET"));
        assert_eq!(merged.max_age.as_deref(), Some("60"));
        assert_eq!(merged.allow_credentials, Some(false));
        assert_eq!(merged.allow_origins.len(), 1);
        // Enablement is the most specific level's alone.
        assert_eq!(merged.filter_enabled, None);
    }
}
