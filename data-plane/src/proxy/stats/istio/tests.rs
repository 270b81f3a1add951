//! Istio's standard metrics: labels as Istio's stats plugin sets them for a
//! source proxy, and the cap folding unregistered destinations into `other`.

use std::collections::BTreeMap;

use super::*;

fn rendered(stats: &IstioStats) -> String {
    let mut out = String::new();
    stats.render(&mut out);
    out
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn the_source_workload_is_the_deployment_name_of_a_deployment_pod() {
    let source = SourceWorkload::of_pod(
        "sleep-5d8f7c9b6-x2x7q",
        "default",
        &labels(&[("app", "sleep"), ("pod-template-hash", "5d8f7c9b6")]),
    );
    assert_eq!(source.workload, "sleep");
    assert_eq!(source.namespace, "default");
}

#[test]
fn the_workload_name_label_wins_and_a_bare_pod_is_its_own_workload() {
    let named = SourceWorkload::of_pod(
        "sleep-5d8f7c9b6-x2x7q",
        "default",
        &labels(&[
            ("pod-template-hash", "5d8f7c9b6"),
            ("service.istio.io/workload-name", "sleeper"),
        ]),
    );
    assert_eq!(named.workload, "sleeper");
    let bare = SourceWorkload::of_pod("app", "default", &labels(&[("app", "curl")]));
    assert_eq!(bare.workload, "app");
}

#[test]
fn registered_destinations_are_the_service_entry_host() {
    let destination = Destination::of(Some("outbound|443||api.github.com"), "1.2.3.4", None);
    assert_eq!(destination.class, DestinationClass::Registered);
    assert_eq!(destination.service, "api.github.com");
}

#[test]
fn unregistered_destinations_are_what_was_observed_and_their_fall_through_cluster() {
    let passthrough = Destination::of(
        Some("PassthroughCluster"),
        "example.com",
        Some(EgressPolicy::WouldBlock),
    );
    assert_eq!(
        passthrough,
        Destination {
            class: DestinationClass::Passthrough,
            service: "example.com"
        }
    );
    let blocked_http = Destination::of(None, "example.com", Some(EgressPolicy::Blocked));
    assert_eq!(blocked_http.class, DestinationClass::BlackHole);
    let blocked_tcp = Destination::of(Some("BlackHoleCluster"), "10.1.2.3", None);
    assert_eq!(blocked_tcp.class, DestinationClass::BlackHole);
}

#[test]
fn a_request_is_counted_with_istios_labels() {
    let stats = IstioStats::new(
        &SourceWorkload {
            workload: "sleep".into(),
            namespace: "default".into(),
        },
        10,
    );
    let destination = Destination::of(Some("outbound|80||httpbin.org"), "httpbin.org", None);
    stats.request(destination, 200, "-", None);
    stats.request(destination, 200, "-", None);
    let blocked = Destination::of(None, "evil.example", Some(EgressPolicy::Blocked));
    stats.request(blocked, 502, "-", Some(EgressPolicy::Blocked));
    let out = rendered(&stats);
    assert!(out.contains(
        "istio_requests_total{reporter=\"source\",source_workload=\"sleep\",source_workload_namespace=\"default\",destination_service=\"httpbin.org\",destination_service_name=\"httpbin.org\",request_protocol=\"http\",response_code=\"200\",response_flags=\"-\",egress_policy=\"-\"} 2\n"
    ), "{out}");
    assert!(out.contains(
        "destination_service=\"evil.example\",destination_service_name=\"BlackHoleCluster\",request_protocol=\"http\",response_code=\"502\",response_flags=\"-\",egress_policy=\"blocked\"} 1\n"
    ), "{out}");
}

#[test]
fn a_tcp_connection_counts_opened_closed_and_bytes() {
    let stats = IstioStats::default();
    let destination = Destination::of(
        Some("PassthroughCluster"),
        "api.example",
        Some(EgressPolicy::WouldBlock),
    );
    let series = stats.tcp_opened(destination, "-", Some(EgressPolicy::WouldBlock));
    series.tcp_closed(100, 2000);
    let out = rendered(&stats);
    let labels = "destination_service=\"api.example\",destination_service_name=\"PassthroughCluster\",request_protocol=\"tcp\",response_code=\"0\",response_flags=\"-\",egress_policy=\"would_block\"}";
    for (metric, value) in [
        ("istio_tcp_connections_opened_total", 1),
        ("istio_tcp_connections_closed_total", 1),
        ("istio_tcp_received_bytes_total", 100),
        ("istio_tcp_sent_bytes_total", 2000),
    ] {
        assert!(out.contains(&format!("{labels} {value}\n")), "{out}");
        assert!(
            out.lines()
                .any(|l| l.starts_with(metric) && l.ends_with(&format!("{labels} {value}"))),
            "{metric}: {out}"
        );
    }
    assert!(!out.contains("istio_requests_total{"), "{out}");
}

#[test]
fn unregistered_destinations_past_the_cap_are_folded_into_other() {
    let stats = IstioStats::new(&SourceWorkload::default(), 2);
    for host in [
        "a.example",
        "b.example",
        "c.example",
        "d.example",
        "a.example",
    ] {
        stats.request(
            Destination::of(Some("PassthroughCluster"), host, None),
            200,
            "-",
            None,
        );
    }
    let out = rendered(&stats);
    assert!(out.contains("destination_service=\"a.example\""), "{out}");
    assert!(out.contains("destination_service=\"b.example\""), "{out}");
    assert!(!out.contains("c.example"), "{out}");
    assert!(!out.contains("d.example"), "{out}");
    assert!(
        out.contains("destination_service=\"other\",destination_service_name=\"PassthroughCluster\",request_protocol=\"http\",response_code=\"200\",response_flags=\"-\",egress_policy=\"-\"} 2\n"),
        "{out}"
    );
    let a = out.lines().find(|l| l.contains("\"a.example\"")).unwrap();
    assert!(a.ends_with(" 2"), "{a}");
}

#[test]
fn a_destination_admitted_before_the_cap_keeps_its_own_series_after_it() {
    let stats = IstioStats::new(&SourceWorkload::default(), 1);
    let admitted = Destination::of(Some("PassthroughCluster"), "a.example", None);
    let folded = Destination::of(Some("PassthroughCluster"), "b.example", None);
    stats.request(admitted, 200, "-", None);
    stats.request(folded, 200, "-", None);
    stats.request(folded, 503, "UF", None);
    stats.request(admitted, 503, "UF", None);
    let out = rendered(&stats);
    assert!(
        out.contains("destination_service=\"a.example\",destination_service_name=\"PassthroughCluster\",request_protocol=\"http\",response_code=\"503\",response_flags=\"UF\",egress_policy=\"-\"} 1\n"),
        "{out}"
    );
    assert!(
        out.contains("destination_service=\"other\",destination_service_name=\"PassthroughCluster\",request_protocol=\"http\",response_code=\"503\",response_flags=\"UF\",egress_policy=\"-\"} 1\n"),
        "{out}"
    );
    assert!(!out.contains("b.example"), "{out}");
}

#[test]
fn registered_destinations_are_never_folded() {
    let stats = IstioStats::new(&SourceWorkload::default(), 0);
    stats.request(
        Destination::of(Some("outbound|443||api.github.com"), "", None),
        200,
        "-",
        None,
    );
    stats.request(
        Destination::of(Some("PassthroughCluster"), "x.example", None),
        200,
        "-",
        None,
    );
    let out = rendered(&stats);
    assert!(
        out.contains("destination_service=\"api.github.com\""),
        "{out}"
    );
    assert!(out.contains("destination_service=\"other\""), "{out}");
    assert!(!out.contains("x.example"), "{out}");
}

#[test]
fn label_values_are_escaped() {
    let stats = IstioStats::default();
    stats.request(
        Destination::of(None, "a\"b\\c", Some(EgressPolicy::Blocked)),
        502,
        "-",
        Some(EgressPolicy::Blocked),
    );
    assert!(
        rendered(&stats).contains("destination_service=\"a\\\"b\\\\c\""),
        "{}",
        rendered(&stats)
    );
}

#[test]
fn the_observed_http_host_has_no_port() {
    assert_eq!(host("example.com:8080"), "example.com");
    assert_eq!(host("example.com"), "example.com");
    assert_eq!(host("[2001:db8::1]:443"), "[2001:db8::1]");
    assert_eq!(host("2001:db8::1"), "2001:db8::1");
}

#[test]
fn a_local_reply_without_a_cluster_or_mark_is_unknown() {
    let destination = Destination::of(None, "example.com", None);
    assert_eq!(destination.class, DestinationClass::Unknown);
    let stats = IstioStats::default();
    stats.request(destination, 404, "NR", None);
    assert!(
        rendered(&stats).contains("destination_service_name=\"unknown\""),
        "{}",
        rendered(&stats)
    );
}
