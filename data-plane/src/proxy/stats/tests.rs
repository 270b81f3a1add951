//! The cluster and HTTP response counters carry Envoy's tag extraction.

use super::*;

fn rendered(record: impl FnOnce(&Stats)) -> String {
    let stats = Stats::default();
    record(&stats);
    let mut out = String::new();
    stats.render(&mut out);
    out
}

#[test]
fn response_classes_are_envoys_xx_stats_with_the_class_digit() {
    // Envoy: cluster.c.upstream_rq_5xx is
    // envoy_cluster_upstream_rq_xx{envoy_response_code_class="5",…};
    // http.p.downstream_rq_2xx is
    // envoy_http_downstream_rq_xx{envoy_response_code_class="2",…}.
    let out = rendered(|stats| {
        Stats::record_upstream_response(&stats.cluster(&"c".into()), 503);
        Stats::record_downstream_response(&stats.downstream(&"p".into()), 200);
    });
    for line in [
        "# TYPE envoy_cluster_upstream_rq_xx counter\n",
        "envoy_cluster_upstream_rq_xx{envoy_response_code_class=\"5\",envoy_cluster_name=\"c\"} 1\n",
        "envoy_cluster_upstream_rq_xx{envoy_response_code_class=\"2\",envoy_cluster_name=\"c\"} 0\n",
        "envoy_http_downstream_rq_xx{envoy_response_code_class=\"2\",envoy_http_conn_manager_prefix=\"p\"} 1\n",
    ] {
        assert!(out.contains(line), "{line} in {out}");
    }
    assert!(
        !out.contains("envoy_cluster_upstream_rq{envoy_response_code_class"),
        "{out}"
    );
    assert!(!out.contains("xx\""), "a class is its digit alone: {out}");
}

#[test]
fn response_classes_read_back_as_envoys_dotted_names() {
    let out = rendered(|stats| {
        Stats::record_upstream_response(&stats.cluster(&"c".into()), 503);
    });
    let stats = crate::admin::stats_text::parse(&out, None);
    assert_eq!(
        stats.get("cluster.c.upstream_rq_5xx"),
        Some(&crate::admin::stats_text::Stat::Value(1.0))
    );
}

#[test]
fn response_codes_are_envoys_per_code_stats() {
    // Envoy: cluster.c.upstream_rq_503 is
    // envoy_cluster_upstream_rq{envoy_response_code="503",…}, a code
    // having a series once a response had it.
    let out = rendered(|stats| {
        let cluster = stats.cluster(&"c".into());
        Stats::record_upstream_response(&cluster, 503);
        Stats::record_upstream_response(&cluster, 503);
        Stats::record_retried_response(&cluster, 500);
    });
    assert!(
        out.contains(
            "envoy_cluster_upstream_rq{envoy_response_code=\"503\",envoy_cluster_name=\"c\"} 2\n"
        ),
        "{out}"
    );
    assert!(
        !out.contains("envoy_cluster_upstream_rq{envoy_response_code=\"500\""),
        "a retried response is counted under retry. alone: {out}"
    );
    let stats = crate::admin::stats_text::parse(&out, None);
    assert_eq!(
        stats.get("cluster.c.upstream_rq_503"),
        Some(&crate::admin::stats_text::Stat::Value(2.0))
    );
}
