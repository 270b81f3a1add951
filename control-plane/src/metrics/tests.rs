//! The exposition istiod's dashboards and alerts read.

use super::*;
use shared::type_url::{CLUSTER, ENDPOINT, LISTENER, NAME_TABLE, ROUTE, SECRET};

#[test]
fn xds_types_are_labelled_as_istiod_labels_them() {
    assert_eq!(metric_type(CLUSTER), "cds");
    assert_eq!(metric_type(ENDPOINT), "eds");
    assert_eq!(metric_type(LISTENER), "lds");
    assert_eq!(metric_type(ROUTE), "rds");
    assert_eq!(metric_type(SECRET), "sds");
    assert_eq!(metric_type(NAME_TABLE), "nds");
    // istiod labels a type it has no short name for with its URL.
    assert_eq!(metric_type("type.example/Other"), "type.example/Other");
}

#[test]
fn istiod_sums_carry_no_total_suffix() {
    let metrics = Metrics::default();
    metrics
        .pushes
        .get_or_create(&Metrics::type_label(LISTENER))
        .inc();
    metrics.write_timeouts.inc();
    metrics.csr_count.inc();
    let text = metrics.render();
    assert!(text.contains("# TYPE pilot_xds_pushes counter\n"), "{text}");
    assert!(
        text.contains("\npilot_xds_pushes{type=\"lds\"} 1\n"),
        "{text}"
    );
    assert!(text.contains("\npilot_xds_write_timeout 1\n"), "{text}");
    assert!(text.contains("\ncitadel_server_csr_count 1\n"), "{text}");
    assert!(!text.contains("pilot_xds_pushes_total"), "{text}");
}

#[test]
fn a_nack_counts_by_type_and_by_node_and_code() {
    let metrics = Metrics::default();
    // Envoy NACKs with INTERNAL (13).
    metrics.rejected(CLUSTER, "sidecar~10.0.0.1~a.ns~ns.svc.cluster.local", 13);
    metrics.rejected(SECRET, "sidecar~10.0.0.1~a.ns~ns.svc.cluster.local", 13);
    let text = metrics.render();
    assert!(
        text.contains("\npilot_total_xds_rejects{type=\"cds\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("\npilot_total_xds_rejects{type=\"sds\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains(
            "\npilot_xds_cds_reject{node=\"sidecar~10.0.0.1~a.ns~ns.svc.cluster.local\",err=\"Internal\"} 1\n"
        ),
        "{text}"
    );
    // istiod keeps no per-node gauge for SDS.
    assert!(!text.contains("pilot_xds_sds_reject"), "{text}");
}

#[test]
fn push_time_and_convergence_use_istiods_buckets() {
    let metrics = Metrics::default();
    metrics
        .push_time
        .get_or_create(&Metrics::type_label(CLUSTER))
        .observe(0.05);
    metrics.convergence_time.observe(0.2);
    let text = metrics.render();
    assert!(
        text.contains("pilot_xds_push_time_bucket{le=\"0.1\",type=\"cds\"} 1\n")
            || text.contains("pilot_xds_push_time_bucket{type=\"cds\",le=\"0.1\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("pilot_proxy_convergence_time_bucket{le=\"0.5\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("pilot_proxy_convergence_time_bucket{le=\"30.0\"} 1\n"),
        "{text}"
    );
}
