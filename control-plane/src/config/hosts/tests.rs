//! Istio's host rules as its reference states them: short names, wildcards,
//! `exportTo` and Sidecar `egress.hosts`.

use super::*;

fn export(entries: &[&str]) -> Vec<String> {
    entries.iter().map(ToString::to_string).collect()
}

#[test]
fn short_names_resolve_in_the_resource_namespace() {
    assert_eq!(
        resolve("reviews", "bookinfo"),
        "reviews.bookinfo.svc.cluster.local"
    );
    assert_eq!(
        resolve("reviews", "default"),
        "reviews.default.svc.cluster.local"
    );
}

#[test]
fn names_with_a_dot_wildcards_and_addresses_stay_as_written() {
    assert_eq!(resolve("httpbin.org", "default"), "httpbin.org");
    assert_eq!(
        resolve("reviews.other.svc.cluster.local", "default"),
        "reviews.other.svc.cluster.local"
    );
    assert_eq!(resolve("*.wikipedia.org", "default"), "*.wikipedia.org");
    assert_eq!(resolve("*", "default"), "*");
    assert_eq!(resolve("10.0.0.1", "default"), "10.0.0.1");
    assert_eq!(resolve("2001:db8::1", "default"), "2001:db8::1");
}

#[test]
fn resolving_keeps_case() {
    assert_eq!(
        resolve("Reviews", "default"),
        "Reviews.default.svc.cluster.local"
    );
}

#[test]
fn a_wildcard_covers_subdomains_but_not_its_own_suffix() {
    assert!(matches("*.example.com", "api.example.com"));
    assert!(matches("*.example.com", "a.b.example.com"));
    assert!(!matches("*.example.com", "example.com"));
    assert!(!matches("*.example.com", "badexample.com"));
}

#[test]
fn an_exact_name_covers_only_itself() {
    assert!(matches("example.com", "example.com"));
    assert!(!matches("example.com", "api.example.com"));
    assert!(!matches("api.example.com", "example.com"));
    assert!(!matches("api.example.com", "*.example.com"));
}

#[test]
fn star_covers_every_host() {
    assert!(matches("*", "example.com"));
    assert!(matches("*", "reviews.default.svc.cluster.local"));
    assert!(matches("*", "*.example.com"));
    assert!(!matches("*.example.com", "*"));
}

#[test]
fn a_wildcard_host_is_covered_by_a_wildcard_at_most_as_specific() {
    assert!(matches("*.example.com", "*.example.com"));
    assert!(matches("*.com", "*.example.com"));
    assert!(!matches("*.example.com", "*.com"));
}

#[test]
fn the_closest_pattern_is_the_most_specific() {
    assert!(specificity("api.example.com") > specificity("*.api.example.com"));
    assert!(specificity("*.api.example.com") > specificity("*.example.com"));
    assert!(specificity("*.example.com") > specificity("*.com"));
    assert!(specificity("*.com") > specificity("*"));
}

#[test]
fn no_export_to_is_the_mesh_default_every_namespace() {
    assert!(exported_to(&[], "owner", "owner"));
    assert!(exported_to(&[], "owner", "other"));
}

#[test]
fn export_to_star_is_every_namespace() {
    assert!(exported_to(&export(&["*"]), "owner", "owner"));
    assert!(exported_to(&export(&["*"]), "owner", "other"));
}

#[test]
fn export_to_dot_is_the_owner_namespace_only() {
    assert!(exported_to(&export(&["."]), "owner", "owner"));
    assert!(!exported_to(&export(&["."]), "owner", "other"));
}

#[test]
fn export_to_tilde_is_no_namespace_not_even_the_owner() {
    assert!(!exported_to(&export(&["~"]), "owner", "owner"));
    assert!(!exported_to(&export(&["~"]), "owner", "other"));
}

#[test]
fn export_to_named_namespaces_is_those_only() {
    let to = export(&["a", "b"]);
    assert!(exported_to(&to, "owner", "a"));
    assert!(exported_to(&to, "owner", "b"));
    assert!(!exported_to(&to, "owner", "c"));
    assert!(!exported_to(&to, "owner", "owner"));
    let with_own = export(&[".", "a"]);
    assert!(exported_to(&with_own, "owner", "owner"));
    assert!(exported_to(&with_own, "owner", "a"));
    assert!(!exported_to(&with_own, "owner", "c"));
}

#[test]
fn star_outweighs_other_entries_and_tilde_outweighs_names() {
    assert!(exported_to(&export(&["~", "*"]), "owner", "other"));
    assert!(!exported_to(&export(&["~", "a"]), "owner", "a"));
    assert!(!exported_to(&export(&["~", "."]), "owner", "owner"));
}

#[test]
fn entries_split_into_namespace_and_name() {
    assert_eq!(
        split_namespace("prod/*.example.com"),
        (Some("prod"), "*.example.com")
    );
    assert_eq!(split_namespace("./*"), (Some("."), "*"));
    assert_eq!(split_namespace("example.com"), (None, "example.com"));
}

#[test]
fn egress_dot_is_the_proxy_namespace() {
    assert!(egress_host_admits("./*", "x.com", "default", "default"));
    assert!(!egress_host_admits("./*", "x.com", "other", "default"));
}

#[test]
fn egress_star_is_any_namespace() {
    assert!(egress_host_admits(
        "*/httpbin.org",
        "httpbin.org",
        "x",
        "default"
    ));
    assert!(!egress_host_admits(
        "*/httpbin.org",
        "example.com",
        "x",
        "default"
    ));
}

#[test]
fn egress_tilde_is_no_namespace() {
    assert!(!egress_host_admits("~/*", "x.com", "default", "default"));
    assert!(!egress_host_admits("~/*", "x.com", "other", "default"));
}

#[test]
fn egress_named_namespace_and_wildcard_name() {
    assert!(egress_host_admits(
        "istio-system/*",
        "gw.istio-system.svc.cluster.local",
        "istio-system",
        "default"
    ));
    assert!(!egress_host_admits(
        "istio-system/*",
        "gw.istio-system.svc.cluster.local",
        "other",
        "default"
    ));
    assert!(egress_host_admits(
        "prod/*.example.com",
        "api.example.com",
        "prod",
        "default"
    ));
    assert!(!egress_host_admits(
        "prod/*.example.com",
        "example.com",
        "prod",
        "default"
    ));
}

#[test]
fn gateway_server_dot_is_the_gateway_namespace() {
    assert!(namespace_selects(Some("."), "istio-system", "istio-system"));
    assert!(!namespace_selects(Some("."), "default", "istio-system"));
    assert!(namespace_selects(None, "default", "istio-system"));
    assert!(namespace_selects(
        Some("default"),
        "default",
        "istio-system"
    ));
    assert!(!namespace_selects(Some("prod"), "default", "istio-system"));
}
