//! Envoy's stats names and formats from the Prometheus exposition.

use super::*;

fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn envoys_tags_go_back_into_the_dotted_name() {
    let cluster = "outbound|443||a.example.com";
    assert_eq!(
        envoy_name(
            "envoy_cluster_upstream_cx_total",
            labels(&[("envoy_cluster_name", cluster)])
        ),
        "cluster.outbound|443||a.example.com.upstream_cx_total"
    );
    assert_eq!(
        envoy_name(
            "envoy_cluster_circuit_breakers_default_rq_open",
            labels(&[("envoy_cluster_name", "c")])
        ),
        "cluster.c.circuit_breakers.default.rq_open"
    );
    assert_eq!(
        envoy_name(
            "envoy_cluster_outlier_detection_ejections_active",
            labels(&[("envoy_cluster_name", "c")])
        ),
        "cluster.c.outlier_detection.ejections_active"
    );
    assert_eq!(
        envoy_name(
            "envoy_cluster_ssl_fail_verify_san",
            labels(&[("envoy_cluster_name", "c")])
        ),
        "cluster.c.ssl.fail_verify_san"
    );
    assert_eq!(
        envoy_name(
            "envoy_http_fault_delays_injected",
            labels(&[("envoy_http_conn_manager_prefix", "outbound_0.0.0.0_80")])
        ),
        "http.outbound_0.0.0.0_80.fault.delays_injected"
    );
    assert_eq!(
        envoy_name("envoy_listener_manager_total_listeners_draining", vec![]),
        "listener_manager.total_listeners_draining"
    );
    assert_eq!(envoy_name("envoy_server_state", vec![]), "server.state");
}

#[test]
fn the_response_code_class_is_a_suffix_of_the_name() {
    // Envoy: cluster.<name>.upstream_rq_2xx, http.<prefix>.downstream_rq_5xx.
    assert_eq!(
        envoy_name(
            "envoy_cluster_upstream_rq_xx",
            labels(&[
                ("envoy_response_code_class", "2"),
                ("envoy_cluster_name", "c")
            ])
        ),
        "cluster.c.upstream_rq_2xx"
    );
    assert_eq!(
        envoy_name(
            "envoy_http_downstream_rq_xx",
            labels(&[
                ("envoy_response_code_class", "5"),
                ("envoy_http_conn_manager_prefix", "p")
            ])
        ),
        "http.p.downstream_rq_5xx"
    );
}

#[test]
fn retried_responses_are_a_retry_scope_with_the_code_as_suffix() {
    // Envoy: cluster.<name>.retry.upstream_rq_503, retry.upstream_rq_5xx,
    // retry.upstream_rq_completed; upstream_rq_retry stays as it is.
    let cluster = || labels(&[("envoy_cluster_name", "c")]);
    assert_eq!(
        envoy_name(
            "envoy_cluster_retry_upstream_rq",
            labels(&[("envoy_response_code", "503"), ("envoy_cluster_name", "c")])
        ),
        "cluster.c.retry.upstream_rq_503"
    );
    assert_eq!(
        envoy_name(
            "envoy_cluster_retry_upstream_rq_xx",
            labels(&[
                ("envoy_response_code_class", "5"),
                ("envoy_cluster_name", "c")
            ])
        ),
        "cluster.c.retry.upstream_rq_5xx"
    );
    assert_eq!(
        envoy_name("envoy_cluster_retry_upstream_rq_completed", cluster()),
        "cluster.c.retry.upstream_rq_completed"
    );
    assert_eq!(
        envoy_name("envoy_cluster_upstream_rq_retry", cluster()),
        "cluster.c.upstream_rq_retry"
    );
    assert_eq!(
        envoy_name("envoy_cluster_retry_or_shadow_abandoned", cluster()),
        "cluster.c.retry_or_shadow_abandoned"
    );
}

#[test]
fn other_labels_are_written_as_istios_stats_names_carry_them() {
    assert_eq!(
        envoy_name(
            "istio_requests_total",
            labels(&[("reporter", "source"), ("response_code", "200")])
        ),
        "reporter=.=source;.;response_code=.=200;.;istio_requests_total"
    );
    assert_eq!(envoy_name("xds_connected", vec![]), "xds_connected");
}

const EXPOSITION: &str = "\
# TYPE envoy_cluster_upstream_rq_total counter
envoy_cluster_upstream_rq_total{envoy_cluster_name=\"b\"} 3
envoy_cluster_upstream_rq_total{envoy_cluster_name=\"a\"} 7
# HELP xds_connected Whether connected.
# TYPE xds_connected gauge
xds_connected 1
# TYPE istio_request_duration_milliseconds histogram
istio_request_duration_milliseconds_bucket{reporter=\"source\",le=\"10\"} 2
istio_request_duration_milliseconds_bucket{reporter=\"source\",le=\"100\"} 4
istio_request_duration_milliseconds_bucket{reporter=\"source\",le=\"+Inf\"} 4
istio_request_duration_milliseconds_sum{reporter=\"source\"} 130
istio_request_duration_milliseconds_count{reporter=\"source\"} 4
# TYPE idle histogram
idle_bucket{le=\"+Inf\"} 0
idle_sum 0
idle_count 0
";

#[test]
fn text_is_sorted_name_colon_value_lines_then_histograms() {
    let stats = parse(EXPOSITION, None);
    let text = text(&stats);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[..3],
        [
            "cluster.a.upstream_rq_total: 7",
            "cluster.b.upstream_rq_total: 3",
            "xds_connected: 1",
        ]
    );
    assert_eq!(lines[3], "idle: No recorded values");
    assert!(
        lines[4].starts_with(
            "reporter=.=source;.;istio_request_duration_milliseconds: P0(nan,0) P25(nan,5) P50(nan,10) P75(nan,55)"
        ),
        "{}",
        lines[4]
    );
    assert!(lines[4].ends_with(" P100(nan,100)"), "{}", lines[4]);
    assert_eq!(lines.len(), 5);
}

#[test]
fn json_lists_name_value_pairs_then_the_histograms() {
    let stats = parse(EXPOSITION, None);
    let json = json(&stats);
    let list = json["stats"].as_array().unwrap();
    assert_eq!(
        list[0],
        json!({"name": "cluster.a.upstream_rq_total", "value": 7})
    );
    let histograms = &list.last().unwrap()["histograms"];
    assert_eq!(
        histograms["supported_quantiles"].as_array().unwrap().len(),
        10
    );
    assert_eq!(
        histograms["computed_quantiles"][1]["name"],
        "reporter=.=source;.;istio_request_duration_milliseconds"
    );
    assert_eq!(
        histograms["computed_quantiles"][1]["values"][2],
        json!({"interval": null, "cumulative": 10.0})
    );
}

#[test]
fn a_filter_keeps_the_matching_names() {
    let filter = Regex::new("^cluster\\.a\\.").unwrap();
    let stats = parse(EXPOSITION, Some(&filter));
    assert_eq!(
        stats.keys().collect::<Vec<_>>(),
        ["cluster.a.upstream_rq_total"]
    );
}

#[test]
fn escaped_label_values_are_read_whole() {
    let stats = parse(
        "m{a=\"x\\\"y\",b=\"p,q\"} 1\nnot a sample\nm2{broken 1\n",
        None,
    );
    assert_eq!(stats.keys().collect::<Vec<_>>(), ["a=.=x\"y;.;b=.=p,q;.;m"]);
}
