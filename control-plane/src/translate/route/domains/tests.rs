//! Virtual host domains as istiod generates them for a sidecar.

use super::short_forms;

#[test]
fn a_kubernetes_host_has_its_bare_name_only_in_its_own_namespace() {
    let host = "reviews.bookinfo.svc.cluster.local";
    assert_eq!(
        short_forms(host, "bookinfo"),
        ["reviews", "reviews.bookinfo.svc", "reviews.bookinfo"]
    );
    assert_eq!(
        short_forms(host, "default"),
        ["reviews.bookinfo.svc", "reviews.bookinfo"]
    );
}

#[test]
fn other_hosts_have_no_short_forms() {
    assert!(short_forms("httpbin.org", "default").is_empty());
    assert!(short_forms("svc.cluster.local", "default").is_empty());
}
