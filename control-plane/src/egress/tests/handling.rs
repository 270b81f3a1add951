//! The decision an entry carries and the resource that handled it.

use crate::config::{ConfigSnapshot, load_checked};
use crate::egress::{Decision, decide, handled_by};

#[test]
fn the_mark_decides_and_without_one_the_blackhole_and_block_all_block() {
    assert_eq!(decide(Some("blocked"), "", "block_all"), Decision::Blocked);
    assert_eq!(
        decide(Some("would_block"), "PassthroughCluster", "allow_any"),
        Decision::WouldBlock
    );
    assert_eq!(decide(None, "BlackHoleCluster", ""), Decision::Blocked);
    assert_eq!(decide(Some("-"), "", "block_all"), Decision::Blocked);
    assert_eq!(
        decide(None, "PassthroughCluster", "allow_any"),
        Decision::Allowed
    );
    assert_eq!(
        decide(None, "outbound|80||httpbin.org", "httpbin.org:80"),
        Decision::Allowed
    );
}

pub(super) fn snapshot(yaml: &str) -> ConfigSnapshot {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("config.yaml"), yaml).expect("write");
    let checked = load_checked(dir.path(), None);
    assert!(checked.errors.is_empty(), "{:?}", checked.errors);
    checked.snapshot
}

fn entry(name: &str, namespace: &str, export_to: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  hosts: [httpbin.org]
  exportTo: {export_to}
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  resolution: DNS
---
"
    )
}

#[test]
fn a_service_cluster_is_handled_by_the_service_entry_the_source_sees_its_own_first() {
    let config = snapshot(&format!(
        "{}{}{}",
        entry("httpbin-shared", "mesh", "['*']"),
        entry("httpbin-private", "team", "['.']"),
        entry("httpbin", "default", "['.']"),
    ));
    let cluster = "outbound|80||httpbin.org";
    assert_eq!(
        handled_by(&config, "default", cluster, Decision::Allowed),
        "default/httpbin"
    );
    assert_eq!(
        handled_by(&config, "other", cluster, Decision::Allowed),
        "mesh/httpbin-shared",
        "team's entry is not exported to other"
    );
    assert_eq!(
        handled_by(
            &config,
            "default",
            "outbound|8080||httpbin.org",
            Decision::Allowed
        ),
        "unknown",
        "no ServiceEntry declares that port"
    );
}

#[test]
fn a_kubernetes_service_cluster_is_handled_by_the_service() {
    let config = snapshot(
        "apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: bookinfo}
spec:
  clusterIP: 10.96.0.20
  ports: [{name: http, port: 9080}]
",
    );
    assert_eq!(
        handled_by(
            &config,
            "default",
            "outbound|9080||reviews.bookinfo.svc.cluster.local",
            Decision::Allowed
        ),
        "bookinfo/reviews",
        "a Service is a registry host as a ServiceEntry is"
    );
}

#[test]
fn fall_through_traffic_is_handled_by_its_cluster_and_blocked_local_replies_by_the_blackhole() {
    let config = ConfigSnapshot::default();
    for cluster in ["PassthroughCluster", "BlackHoleCluster"] {
        assert_eq!(
            handled_by(&config, "default", cluster, Decision::Allowed),
            cluster
        );
    }
    assert_eq!(
        handled_by(&config, "default", "", Decision::Blocked),
        "BlackHoleCluster",
        "the block_all route's 502 has no cluster"
    );
    assert_eq!(
        handled_by(&config, "default", "", Decision::Allowed),
        "unknown"
    );
}

#[test]
fn a_cluster_no_service_entry_or_fall_through_names_is_unknown_never_the_proxys_text() {
    let config = ConfigSnapshot::default();
    for cluster in [
        "outbound|80||httpbin.org",
        "my-cluster",
        "\x1b[31mred",
        "envoy_accesslog_service",
    ] {
        assert_eq!(
            handled_by(&config, "default", cluster, Decision::Allowed),
            "unknown",
            "{cluster:?}"
        );
    }
}
