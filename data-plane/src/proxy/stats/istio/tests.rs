//! Istio's standard metrics: labels as Istio's stats plugin sets them for a
//! source proxy, and the cap folding unregistered destinations into `other`.

use std::collections::BTreeMap;

use super::*;

fn rendered(stats: &IstioStats) -> String {
    let mut out = String::new();
    stats.render(&mut out);
    out
}

/// One plain HTTP request of 10 ms, 5 bytes up and 20 down.
fn http<'a>(
    destination: Destination<'a>,
    response_code: u16,
    response_flags: &'static str,
    egress_policy: Option<EgressPolicy>,
) -> Request<'a> {
    Request {
        destination,
        peer: Peer::default(),
        protocol: Protocol::Http,
        response_code,
        grpc_status: None,
        response_flags,
        egress_policy,
        duration_ms: 10.0,
        request_bytes: 5,
        response_bytes: 20,
    }
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

/// The labels every series of a proxy in pod `sleep-…` of namespace
/// `default` with `app: sleep`, `version: v1` carries.
const SLEEP: &str = "reporter=\"source\",source_workload=\"sleep\",source_workload_namespace=\"default\",source_principal=\"unknown\",source_app=\"sleep\",source_version=\"v1\",source_cluster=\"Kubernetes\",source_canonical_service=\"sleep\",source_canonical_revision=\"v1\",destination_workload=\"unknown\",destination_workload_namespace=\"unknown\",destination_principal=\"unknown\",destination_app=\"unknown\",destination_version=\"unknown\",destination_service_namespace=\"unknown\",destination_cluster=\"unknown\",destination_canonical_service=\"unknown\",destination_canonical_revision=\"latest\",connection_security_policy=\"unknown\"";

fn sleep_v1() -> SourceWorkload {
    SourceWorkload::of_pod(
        "sleep-5d8f7c9b6-x2x7q",
        "default",
        &labels(&[
            ("app", "sleep"),
            ("version", "v1"),
            ("pod-template-hash", "5d8f7c9b6"),
        ]),
    )
}

#[test]
fn a_request_is_counted_with_istios_labels() {
    let stats = IstioStats::new(&sleep_v1(), 10);
    let destination = Destination::of(Some("outbound|80||httpbin.org"), "httpbin.org", None);
    stats.request(&http(destination, 200, "-", None));
    stats.request(&http(destination, 200, "-", None));
    let blocked = Destination::of(None, "evil.example", Some(EgressPolicy::Blocked));
    stats.request(&http(blocked, 502, "-", Some(EgressPolicy::Blocked)));
    let out = rendered(&stats);
    let series = format!(
        "{SLEEP},destination_service=\"httpbin.org\",destination_service_name=\"httpbin.org\",request_protocol=\"http\",response_code=\"200\",grpc_response_status=\"\",response_flags=\"-\",egress_policy=\"-\""
    );
    assert!(
        out.contains(&format!("\nistio_requests_total{{{series}}} 2\n")),
        "{out}"
    );
    assert!(out.contains(
        "destination_service=\"evil.example\",destination_service_name=\"BlackHoleCluster\",request_protocol=\"http\",response_code=\"502\",grpc_response_status=\"\",response_flags=\"-\",egress_policy=\"blocked\"} 1\n"
    ), "{out}");
    // The distributions, with Envoy's buckets: 10 ms, 5 bytes up, 20 down.
    for line in [
        format!("istio_request_duration_milliseconds_bucket{{{series},le=\"5\"}} 0\n"),
        format!("istio_request_duration_milliseconds_bucket{{{series},le=\"10\"}} 2\n"),
        format!("istio_request_duration_milliseconds_sum{{{series}}} 20\n"),
        format!("istio_request_duration_milliseconds_count{{{series}}} 2\n"),
        format!("istio_request_bytes_bucket{{{series},le=\"5\"}} 2\n"),
        format!("istio_response_bytes_bucket{{{series},le=\"10\"}} 0\n"),
        format!("istio_response_bytes_bucket{{{series},le=\"25\"}} 2\n"),
        format!("istio_response_bytes_bucket{{{series},le=\"+Inf\"}} 2\n"),
    ] {
        assert!(out.contains(&line), "{line}\n{out}");
    }
    assert!(
        out.contains("# TYPE istio_request_duration_milliseconds histogram\n"),
        "{out}"
    );
}

#[test]
fn the_source_labels_come_from_the_pods_labels_and_the_node_metadata() {
    let source = sleep_v1();
    assert_eq!(source.app, "sleep");
    assert_eq!(source.version, "v1");
    assert_eq!(source.canonical_service, "sleep");
    assert_eq!(source.canonical_revision, "v1");
    assert_eq!(source.cluster, "Kubernetes");
    // Istio's canonical labels win over app and version.
    let canonical = SourceWorkload::of_pod(
        "web",
        "ns",
        &labels(&[
            ("app", "web"),
            ("service.istio.io/canonical-name", "frontend"),
            ("service.istio.io/canonical-revision", "r7"),
        ]),
    );
    assert_eq!(canonical.canonical_service, "frontend");
    assert_eq!(canonical.canonical_revision, "r7");
    assert_eq!(canonical.version, "unknown");
    // Without labels: the workload name, revision "latest".
    let bare = SourceWorkload::of_pod("job-1", "ns", &labels(&[]))
        .with_metadata(Some("nightly"), Some("east"));
    assert_eq!(bare.workload, "nightly");
    assert_eq!(bare.canonical_service, "nightly");
    assert_eq!(bare.canonical_revision, "latest");
    assert_eq!(bare.app, "unknown");
    assert_eq!(bare.cluster, "east");
}

#[test]
fn a_grpc_request_is_labelled_with_its_status() {
    let stats = IstioStats::default();
    let destination = Destination::of(Some("outbound|443||grpc.example"), "grpc.example", None);
    stats.request(&Request {
        protocol: Protocol::Grpc,
        grpc_status: Some(14),
        ..http(destination, 200, "-", None)
    });
    let out = rendered(&stats);
    assert!(
        out.contains("request_protocol=\"grpc\",response_code=\"200\",grpc_response_status=\"14\",response_flags=\"-\""),
        "{out}"
    );
}

#[test]
fn a_tcp_connection_counts_opened_closed_and_bytes() {
    let stats = IstioStats::default();
    let destination = Destination::of(
        Some("PassthroughCluster"),
        "api.example",
        Some(EgressPolicy::WouldBlock),
    );
    let series = stats.tcp_opened(
        destination,
        Peer::default(),
        "-",
        Some(EgressPolicy::WouldBlock),
    );
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
        stats.request(&http(
            Destination::of(Some("PassthroughCluster"), host, None),
            200,
            "-",
            None,
        ));
    }
    let out = rendered(&stats);
    assert!(out.contains("destination_service=\"a.example\""), "{out}");
    assert!(out.contains("destination_service=\"b.example\""), "{out}");
    assert!(!out.contains("c.example"), "{out}");
    assert!(!out.contains("d.example"), "{out}");
    assert!(
        out.contains("destination_service=\"other\",destination_service_name=\"PassthroughCluster\",request_protocol=\"http\",response_code=\"200\",grpc_response_status=\"\",response_flags=\"-\",egress_policy=\"-\"} 2\n"),
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
    stats.request(&http(admitted, 200, "-", None));
    stats.request(&http(folded, 200, "-", None));
    stats.request(&http(folded, 503, "UF", None));
    stats.request(&http(admitted, 503, "UF", None));
    let out = rendered(&stats);
    assert!(
        out.contains("destination_service=\"a.example\",destination_service_name=\"PassthroughCluster\",request_protocol=\"http\",response_code=\"503\",grpc_response_status=\"\",response_flags=\"UF\",egress_policy=\"-\"} 1\n"),
        "{out}"
    );
    assert!(
        out.contains("destination_service=\"other\",destination_service_name=\"PassthroughCluster\",request_protocol=\"http\",response_code=\"503\",grpc_response_status=\"\",response_flags=\"UF\",egress_policy=\"-\"} 1\n"),
        "{out}"
    );
    assert!(!out.contains("b.example"), "{out}");
}

#[test]
fn registered_destinations_are_never_folded() {
    let stats = IstioStats::new(&SourceWorkload::default(), 0);
    stats.request(&http(
        Destination::of(Some("outbound|443||api.github.com"), "", None),
        200,
        "-",
        None,
    ));
    stats.request(&http(
        Destination::of(Some("PassthroughCluster"), "x.example", None),
        200,
        "-",
        None,
    ));
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
    stats.request(&http(
        Destination::of(None, "a\"b\\c", Some(EgressPolicy::Blocked)),
        502,
        "-",
        Some(EgressPolicy::Blocked),
    ));
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
    stats.request(&http(destination, 404, "NR", None));
    assert!(
        rendered(&stats).contains("destination_service_name=\"unknown\""),
        "{}",
        rendered(&stats)
    );
}

/// The egress gateway's workload, as istiod names it on its endpoints.
fn egress_gateway() -> Arc<EndpointWorkload> {
    Arc::new(
        EndpointWorkload::parse("istio-egressgateway;istio-system;istio-egressgateway;;Kubernetes")
            .expect("five parts"),
    )
}

#[test]
fn a_request_to_a_workload_is_labelled_with_its_istio_workload_metadata() {
    let stats = IstioStats::new(&sleep_v1(), 10);
    let destination = Destination::of(
        Some("outbound|80||istio-egressgateway.istio-system.svc.cluster.local"),
        "edition.cnn.com",
        None,
    );
    let gateway = egress_gateway();
    // Each request's host carries its own Arc of the same workload.
    let again = egress_gateway();
    for peer in [&gateway, &again] {
        stats.request(&Request {
            peer: Peer {
                workload: Some(peer),
                principals: None,
            },
            ..http(destination, 200, "-", None)
        });
    }
    stats.request(&http(destination, 200, "-", None));
    let out = rendered(&stats);
    let source = SLEEP.split(",destination_workload=").next().unwrap();
    let series = format!(
        "{source},destination_workload=\"istio-egressgateway\",destination_workload_namespace=\"istio-system\",destination_principal=\"unknown\",destination_app=\"unknown\",destination_version=\"unknown\",destination_service_namespace=\"istio-system\",destination_cluster=\"Kubernetes\",destination_canonical_service=\"istio-egressgateway\",destination_canonical_revision=\"latest\",connection_security_policy=\"unknown\",destination_service=\"istio-egressgateway.istio-system.svc.cluster.local\""
    );
    let counted = out
        .lines()
        .find(|line| line.starts_with(&format!("istio_requests_total{{{series},")))
        .unwrap_or_else(|| panic!("{series}\n{out}"));
    assert!(counted.ends_with("} 2"), "one series for both: {counted}");
    assert!(
        out.contains(&format!("istio_requests_total{{{SLEEP},destination_service=\"istio-egressgateway.istio-system.svc.cluster.local\"")),
        "a host without metadata is its own series, unknown: {out}"
    );
}

#[test]
fn a_tcp_connection_to_a_workload_carries_its_revision_and_cluster() {
    let stats = IstioStats::default();
    let reviews = Arc::new(EndpointWorkload::parse("reviews-v2;shop;reviews;v2;east").unwrap());
    let destination = Destination::of(Some("outbound|9080||reviews.shop"), "reviews.shop", None);
    stats
        .tcp_opened(
            destination,
            Peer {
                workload: Some(&reviews),
                principals: None,
            },
            "-",
            None,
        )
        .tcp_closed(1, 2);
    let out = rendered(&stats);
    assert!(
        out.contains("destination_workload=\"reviews-v2\",destination_workload_namespace=\"shop\",destination_principal=\"unknown\",destination_app=\"unknown\",destination_version=\"unknown\",destination_service_namespace=\"shop\",destination_cluster=\"east\",destination_canonical_service=\"reviews\",destination_canonical_revision=\"v2\","),
        "{out}"
    );
}

#[test]
fn the_identities_on_the_tls_connection_are_the_principals_and_name_the_namespace() {
    let stats = IstioStats::new(&sleep_v1(), 10);
    let destination = Destination::of(
        Some("outbound|443||istio-egressgateway.istio-system.svc.cluster.local"),
        "edition.cnn.com",
        None,
    );
    // The metadata names another namespace: the certificate's wins.
    let gateway = Arc::new(
        EndpointWorkload::parse("istio-egressgateway;elsewhere;istio-egressgateway;;Kubernetes")
            .unwrap(),
    );
    let principals = Arc::new(Principals {
        peer: Some(
            "spiffe://cluster.local/ns/istio-system/sa/istio-egressgateway-service-account".into(),
        ),
        local: Some(Arc::from("spiffe://cluster.local/ns/default/sa/sleep")),
    });
    stats.request(&Request {
        peer: Peer {
            workload: Some(&gateway),
            principals: Some(&principals),
        },
        ..http(destination, 200, "-", None)
    });
    let out = rendered(&stats);
    for label in [
        "source_workload_namespace=\"default\",source_principal=\"spiffe://cluster.local/ns/default/sa/sleep\",source_app=\"sleep\"",
        "destination_workload=\"istio-egressgateway\",destination_workload_namespace=\"istio-system\",destination_principal=\"spiffe://cluster.local/ns/istio-system/sa/istio-egressgateway-service-account\",",
        "destination_service_namespace=\"istio-system\",",
    ] {
        assert!(out.contains(label), "{label}\n{out}");
    }
}
