//! Host names as Istio compares them: wildcards, short names resolved in a
//! namespace, `exportTo` visibility and Sidecar `egress.hosts` scoping.

use shared::node::DOMAIN_SUFFIX;

/// Resolves a short name (`reviews`) in `namespace` to its FQDN
/// (`reviews.<namespace>.svc.cluster.local`); names with a dot and
/// wildcards are returned unchanged.
pub fn resolve(host: &str, namespace: &str) -> String {
    if host.contains('.') || host.starts_with('*') {
        host.to_string()
    } else {
        format!("{host}.{namespace}.{DOMAIN_SUFFIX}")
    }
}

/// Whether `pattern` (possibly `*` or `*.example.com`) matches `host`
/// (possibly a wildcard itself, matched when it is at least as specific).
pub fn matches(pattern: &str, host: &str) -> bool {
    if pattern == "*" || pattern == host {
        return true;
    }
    match pattern.strip_prefix('*') {
        Some(suffix) => match host.strip_prefix('*') {
            Some(host_suffix) => host_suffix.ends_with(suffix),
            None => host.ends_with(suffix),
        },
        None => false,
    }
}

/// Specificity for picking the closest wildcard: longer without `*` wins.
pub fn specificity(pattern: &str) -> usize {
    if pattern.starts_with('*') {
        pattern.len() - 1
    } else {
        usize::MAX
    }
}

/// Whether a resource in `owner_ns` with `export_to` is visible to a proxy
/// in `proxy_ns` (empty or `*`: everywhere; `.`: its own namespace).
pub fn exported_to(export_to: &[String], owner_ns: &str, proxy_ns: &str) -> bool {
    export_to.is_empty()
        || export_to.iter().any(|target| match target.as_str() {
            "*" => true,
            "." => owner_ns == proxy_ns,
            "~" => false,
            ns => ns == proxy_ns,
        })
}

/// Whether a Sidecar `egress.hosts` entry (`ns/host`, with `*`, `.` and `~`
/// for the namespace part) admits `host` from `host_ns` for a proxy in
/// `proxy_ns`.
pub fn egress_host_admits(entry: &str, host: &str, host_ns: &str, proxy_ns: &str) -> bool {
    let (ns, pattern) = entry.split_once('/').unwrap_or(("*", entry));
    let ns_ok = match ns {
        "*" => true,
        "." => host_ns == proxy_ns,
        "~" => false,
        ns => ns == host_ns,
    };
    ns_ok && matches(pattern, host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_short_names() {
        assert_eq!(
            resolve("reviews", "bookinfo"),
            "reviews.bookinfo.svc.cluster.local"
        );
        assert_eq!(resolve("httpbin.org", "default"), "httpbin.org");
        assert_eq!(resolve("*.wikipedia.org", "default"), "*.wikipedia.org");
    }

    #[test]
    fn wildcard_matching() {
        assert!(matches("*", "anything.com"));
        assert!(matches("*.cnn.com", "edition.cnn.com"));
        assert!(!matches("*.cnn.com", "cnn.com"));
        assert!(matches("*.com", "*.cnn.com"));
        assert!(!matches("*.cnn.com", "*.com"));
        assert!(!matches("edition.cnn.com", "*.cnn.com"));
        assert!(specificity("*.cnn.com") > specificity("*.com"));
        assert!(specificity("edition.cnn.com") > specificity("*.cnn.com"));
    }

    #[test]
    fn export_to_visibility() {
        assert!(exported_to(&[], "a", "b"));
        assert!(exported_to(&[".".into()], "a", "a"));
        assert!(!exported_to(&[".".into()], "a", "b"));
        assert!(exported_to(&["b".into()], "a", "b"));
        assert!(!exported_to(&["~".into()], "a", "a"));
    }

    #[test]
    fn sidecar_egress_hosts() {
        assert!(egress_host_admits("./*", "x.com", "default", "default"));
        assert!(!egress_host_admits("./*", "x.com", "other", "default"));
        assert!(egress_host_admits(
            "istio-system/*",
            "gw.istio-system.svc.cluster.local",
            "istio-system",
            "default"
        ));
        assert!(egress_host_admits(
            "*/httpbin.org",
            "httpbin.org",
            "x",
            "default"
        ));
    }
}
