//! Istio's Mesh dashboard reads the agent's exposition: the PromQL of
//! istio/istio `manifests/addons/dashboards/lib/queries.libsonnet`
//! (`globalRequest`, `globalRequestSuccessRate`, `globalRequest4xx`,
//! `globalRequest5xx`, `httpWorkloads`, `tcpWorkloads`, as
//! `istio-mesh-dashboard.gen.json` renders them), after one HTTP request
//! and one TCP connection, names only metrics and labels the exposition
//! has. The extraction is bounded: a metric is a name followed by `{`;
//! labels are the matchers' keys and the names in `by (...)`.

use std::collections::BTreeSet;

use super::*;

const MESH_DASHBOARD: [&str; 9] = [
    r#"round(sum(rate(istio_requests_total{reporter=~"source|waypoint"}[$__rate_interval])), 0.01)"#,
    r#"sum(rate(istio_requests_total{reporter=~"source|waypoint", response_code!~"5.."}[$__rate_interval])) / sum(rate(istio_requests_total{reporter=~"source|waypoint"}[$__rate_interval]))"#,
    r#"round(sum(rate(istio_requests_total{reporter=~"source|waypoint", response_code=~"4.."}[$__rate_interval])), 0.01)or vector(0)"#,
    r#"round(sum(rate(istio_requests_total{reporter=~"source|waypoint", response_code=~"5.."}[$__rate_interval])), 0.01)or vector(0)"#,
    r#"label_join(sum(rate(istio_requests_total{reporter=~"source|waypoint"}[$__rate_interval])) by (destination_workload, destination_workload_namespace, destination_service), "destination_workload_var", ".", "destination_workload", "destination_workload_namespace")"#,
    r#"label_join(histogram_quantile(0.5, sum(rate(istio_request_duration_milliseconds_bucket{reporter=~"source|waypoint"}[$__rate_interval])) by (le, destination_workload, destination_workload_namespace)), "destination_workload_var", ".", "destination_workload", "destination_workload_namespace")"#,
    r#"label_join(sum(rate(istio_requests_total{reporter=~"source|waypoint", response_code!~"5.."}[$__rate_interval])) by (destination_workload, destination_workload_namespace) / sum(rate(istio_requests_total{reporter=~"source|waypoint"}[$__rate_interval])) by (destination_workload, destination_workload_namespace), "destination_workload_var", ".", "destination_workload", "destination_workload_namespace")"#,
    r#"label_join(sum(rate(istio_tcp_received_bytes_total{reporter=~"source|waypoint"}[$__rate_interval])) by (destination_workload, destination_workload_namespace, destination_service), "destination_workload_var", ".", "destination_workload", "destination_workload_namespace")"#,
    r#"label_join(sum(rate(istio_tcp_sent_bytes_total{reporter=~"source|waypoint"}[$__rate_interval])) by (destination_workload, destination_workload_namespace, destination_service), "destination_workload_var", ".", "destination_workload", "destination_workload_namespace")"#,
];

/// The metric names and label names `query` uses.
fn names(query: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut metrics = BTreeSet::new();
    let mut labels = BTreeSet::new();
    let mut rest = query;
    while let Some(open) = rest.find('{') {
        let before = &rest[..open];
        let start = before.rfind(|c| !ident(c)).map_or(0, |i| i + 1);
        metrics.insert(before[start..].to_string());
        let close = rest[open..].find('}').expect("a closed matcher") + open;
        for matcher in rest[open + 1..close].split(',') {
            let key: String = matcher.trim().chars().take_while(|c| ident(*c)).collect();
            labels.insert(key);
        }
        rest = &rest[close..];
    }
    let mut rest = query;
    while let Some(by) = rest.find("by (") {
        let close = rest[by..].find(')').expect("a closed by") + by;
        for label in rest[by + 4..close].split(',') {
            labels.insert(label.trim().to_string());
        }
        rest = &rest[close..];
    }
    (metrics, labels)
}

#[test]
fn the_extraction_finds_metrics_and_labels() {
    let (metrics, labels) = names(MESH_DASHBOARD[5]);
    assert_eq!(
        metrics.into_iter().collect::<Vec<_>>(),
        ["istio_request_duration_milliseconds_bucket"]
    );
    assert!(
        labels.contains("reporter") && labels.contains("le"),
        "{labels:?}"
    );
    assert!(
        labels.contains("destination_workload_namespace"),
        "{labels:?}"
    );
}

#[test]
fn every_metric_and_label_of_the_mesh_dashboard_is_exposed() {
    let stats = IstioStats::default();
    let destination = Destination::of(Some("outbound|80||httpbin.org"), "httpbin.org", None);
    stats.request(&Request {
        destination,
        peer: Peer::default(),
        protocol: Protocol::Http,
        response_code: 200,
        grpc_status: None,
        response_flags: "-",
        egress_policy: None,
        duration_ms: 3.0,
        request_bytes: 0,
        response_bytes: 10,
    });
    let tcp = Destination::of(Some("outbound|5432||db.example"), "db.example", None);
    stats
        .tcp_opened(tcp, Peer::default(), "-", None)
        .tcp_closed(10, 20);
    let mut out = String::new();
    stats.render(&mut out);
    for query in MESH_DASHBOARD {
        let (metrics, labels) = names(query);
        for metric in &metrics {
            let series: Vec<&str> = out
                .lines()
                .filter(|line| line.starts_with(&format!("{metric}{{")))
                .collect();
            assert!(
                !series.is_empty(),
                "{metric} missing, used by {query}\n{out}"
            );
            for label in &labels {
                assert!(
                    series.iter().all(|s| s.contains(&format!("{{{label}=\""))
                        || s.contains(&format!(",{label}=\""))),
                    "{metric} has no label {label}, used by {query}\n{out}"
                );
            }
        }
    }
}
